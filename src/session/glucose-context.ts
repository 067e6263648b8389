import type { Reading } from '../model/observation.js';

/** Glucose Measurement and Glucose Measurement Context (GLS 1.0.1 sections 3.1 and 3.2). */
export const GLUCOSE_MEASUREMENT = '2a18';
export const GLUCOSE_CONTEXT = '2a34';

/**
 * Pairs a Glucose Measurement Context (0x2A34) with its Glucose Measurement (0x2A18) on one connection, so the
 * context reading carries the measurement's device time.
 *
 * Why: a context has no time of its own (GATT Specification Supplement, Glucose Measurement Context: Flags,
 * Sequence Number, then optional fields; its Sequence Number "contains the sequence number of the corresponding
 * Glucose Measurement"). Without a device time its measurement id is random (src/model/ids.ts), so a context a
 * meter sends again (an interrupted "report all" is asked for again from the start, racp-download.ts) would be
 * stored and delivered twice. With its measurement's time the id is stable, and the outbox and the clinic drop
 * the re-sent one as they drop the re-sent measurement. The reading is about that measurement, so its `time`
 * is the measurement's (docs/wire-format.md, `time` and `dtime`).
 *
 * The rule: the measurement comes first. Its Flags bit 4, "Context Information Follows" (GATT Specification
 * Supplement, Glucose Measurement; nRF5 SDK ble_gls.h BLE_GLS_MEAS_FLAG_CONTEXT_INFO), announces the context
 * that follows it with the same sequence number. So a context is paired with the last measurement of the
 * connection when their sequence numbers are equal. A context whose
 * measurement was not seen (out of order, after a measurement the gateway could not decode, or a meter that
 * sends contexts alone) is left as it is: no time, a random id, as before.
 */
export class GlucoseContextPairing {
  /** The last Glucose Measurement of this connection, or undefined (none yet, or it could not be decoded). */
  private last: { readonly sequence: number; readonly time: string } | undefined;

  /** A new connection, or a measurement that could not be decoded: nothing to pair with. */
  forget(): void {
    this.last = undefined;
  }

  /** A decoded Glucose Measurement: the context that follows it, with its sequence number, takes its time. */
  noteMeasurement(reading: Reading): void {
    const sequence = reading.details?.['sequenceNumber'];
    this.last =
      typeof sequence === 'number' && reading.time !== null ? { sequence, time: reading.time } : undefined;
  }

  /**
   * A decoded Glucose Measurement Context: with its measurement's device time when it follows it, else as it
   * is. `paired` says which (a paired context's time is the measurement's, not a reading of the device clock).
   */
  pair(reading: Reading): { reading: Reading; paired: boolean } {
    const sequence = reading.details?.['sequenceNumber'];
    const last = this.last;
    if (reading.time !== null || last === undefined || sequence !== last.sequence) {
      return { reading, paired: false };
    }
    return { reading: { ...reading, time: last.time }, paired: true };
  }
}
