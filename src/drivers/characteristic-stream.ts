import { DecodeError } from '../errors.js';
import type { Reading } from '../model/observation.js';
import type { CharacteristicSpec, DecodeContext, Driver } from './sdk/define-driver.js';
import { createFramer, type Framer } from './sdk/framing.js';

/** What one notification turned into, in stream order: a decoded frame (or whole payload), or an error. */
export type StreamStep =
  | { readonly frame: Uint8Array; readonly readings: readonly Reading[]; readonly error?: undefined }
  | {
      readonly error: DecodeError;
      /** The whole frame the decoder refused (absent for framing errors, which have no whole frame). */
      readonly frame?: Uint8Array;
      readonly readings?: undefined;
    };

/**
 * One connection's decoding of one characteristic, used alike by the hub's sessions, `rpm-gateway decode` and
 * the conformance kit, so the three cannot disagree. A framed characteristic (spec.framing) gets its own framer
 * here (make a new CharacteristicStream per connection: a reconnect must not glue a stale half frame to new
 * bytes); an unframed one decodes each payload whole, as before. Never throws: a decoder failure is a step with
 * an error, and the frames after it are decoded as usual.
 */
export class CharacteristicStream {
  private readonly framer: Framer | undefined;

  constructor(
    private readonly driver: Driver,
    readonly spec: CharacteristicSpec,
  ) {
    this.framer = spec.framing === undefined ? undefined : createFramer(spec.framing);
  }

  get framed(): boolean {
    return this.framer !== undefined;
  }

  /** Bytes held for an unfinished frame. */
  get pending(): number {
    return this.framer?.pending ?? 0;
  }

  push(bytes: Uint8Array, ctx: DecodeContext): StreamStep[] {
    if (!this.framer) return [this.decode(bytes, ctx)];
    return this.framer.push(bytes).map((event) => (event.frame ? this.decode(event.frame, ctx) : event));
  }

  /** The stream ended: frames still recoverable from held bytes, then the error about the unfinished one. */
  end(ctx: DecodeContext): StreamStep[] {
    if (!this.framer) return [];
    return this.framer.end().map((event) => (event.frame ? this.decode(event.frame, ctx) : event));
  }

  private decode(frame: Uint8Array, ctx: DecodeContext): StreamStep {
    try {
      return { frame, readings: this.spec.decode(frame, ctx) };
    } catch (error) {
      if (error instanceof DecodeError) return { error, frame };
      // The driver's own message is not kept: it may quote values.
      return {
        frame,
        error: new DecodeError(
          'DECODE_INVALID_FIELD',
          `driver ${this.driver.id} failed on this payload (a driver bug; please report it)`,
          undefined,
          { cause: error },
        ),
      };
    }
  }
}
