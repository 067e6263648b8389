import type { Random } from './random.js';

/**
 * Ways a real radio link or firmware mangles a payload, for testing that decoders fail with DecodeError and
 * never with anything else: a notification cut short (MTU or firmware bug), flag bits that disagree with the
 * fields sent, and stray bytes at the end.
 */
export type MalformMode = 'truncate' | 'flip-flags' | 'append';

export const MALFORM_MODES: readonly MalformMode[] = ['truncate', 'flip-flags', 'append'];

/** Optional fault injection for a VirtualPeripheral; every random choice comes from its seeded generator. */
export interface FaultOptions {
  /** Probability, per value the peripheral emits, that it drops the link right after sending it. */
  readonly disconnectProbability?: number;
  /** Probability, per emitted value, that the value is malformed (one of `malformedModes`, chosen at random). */
  readonly malformedProbability?: number;
  readonly malformedModes?: readonly MalformMode[];
}

/** A mangled copy of `value`; the original is never modified. */
export function malform(value: Uint8Array, mode: MalformMode, random: Random): Uint8Array {
  switch (mode) {
    case 'truncate':
      // At least one byte goes; an empty notification is legal on the air and must fail the decoder too.
      return value.slice(0, value.length <= 1 ? 0 : random.int(1, value.length - 1));
    case 'flip-flags': {
      const out = value.slice();
      if (out.length === 0) return out;
      // SIG profiles keep their flags in byte 0 and use the low five bits for field presence and units.
      out[0] = (out[0] as number) ^ (1 << random.int(0, 4));
      return out;
    }
    case 'append': {
      const extra = random.int(1, 4);
      const out = new Uint8Array(value.length + extra);
      out.set(value);
      for (let i = value.length; i < out.length; i++) out[i] = random.int(0, 255);
      return out;
    }
  }
}

/**
 * Where a link drops during an indication (ATT Handle Value Indication, Core Vol 3 Part F 3.4.7.2): the
 * server counts an indication as done only when the client's Handle Value Confirmation arrives.
 *   - 'before-delivery': the link drops before the value reaches the central: nothing arrives, and the device
 *     keeps the record for the next connection.
 *   - 'before-confirmation': the central received (and passed on) the value, but the confirmation never
 *     reached the device, so the device keeps the record and sends it again on the next connection: the
 *     gateway sees the same bytes twice (the stable measurement id makes the second a duplicate).
 */
export type IndicationCut = 'before-delivery' | 'before-confirmation';

/**
 * Ways a real adapter or BlueZ wedges, for the radio watchdog (src/session/radio-watchdog.ts). Each lasts until
 * the adapter is power-cycled, unless injected as persistent (a dead controller that a power cycle cannot fix).
 *   - 'stuck-scan': a scan never ends by itself, neither at its duration nor on abort, and reports nothing
 *     (bluetoothd's discovery state machine stuck; Discovering stays true).
 *   - 'discovery-in-progress': every scan fails at once with BLE_ABORTED, as BlueZ answers StartDiscovery with
 *     org.bluez.Error.InProgress when a discovery it lost track of is still "running".
 *   - 'deaf': scans run their course but see no advertisement, and connects time out (the controller hears
 *     nothing, e.g. after a firmware crash of a combo Wi-Fi/Bluetooth chip).
 */
export type RadioFault = 'stuck-scan' | 'discovery-in-progress' | 'deaf';
