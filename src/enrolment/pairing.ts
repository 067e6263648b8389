import { normalizeAddress } from '../ble/address.js';
import { type Advertisement, BleError, type CentralPort, type Connection } from '../ble/central.js';
import type { DriverRegistry } from '../drivers/registry.js';
import type { Driver } from '../drivers/sdk/define-driver.js';
import { normalizeUuid } from '../gatt/uuid.js';
import { DeviceError } from '../store/device-errors.js';
import type { EnrolledDevice } from '../store/device-registry.js';

/**
 * The radio half of enrolment (src/enrolment/workflow.ts drives it): find the supported devices nearby, then
 * connect to the chosen one, bond when it needs it, and check it answers as its driver expects. Addresses stay
 * in the returned objects (in memory, for this run); nothing here prints or logs one.
 */
export interface Candidate {
  /** 1-based position in the list the user picks from. */
  readonly number: number;
  readonly driver: Driver;
  /** In memory only: used to connect, and to enrol the one device the user picks. */
  readonly address: string;
  readonly rssi?: number;
  /** Set when this device is enrolled already. */
  readonly enrolled?: EnrolledDevice;
}

/**
 * Scans for `durationMs` and returns the devices a bundled driver supports, numbered by profile, then driver,
 * then address (never shown), so the same devices get the same numbers whatever order they advertised in and
 * however their signal strength wavered. `scan` and `pair` both number with this, so a number read off one is
 * the same device in the other. Everything else that advertises is dropped as it is heard: not kept, not
 * counted, not logged.
 */
export async function findCandidates(
  central: CentralPort,
  registry: DriverRegistry,
  durationMs: number,
  enrolledAt: (address: string) => EnrolledDevice | undefined,
): Promise<Candidate[]> {
  const seen = new Map<string, { driver: Driver; rssi?: number }>();
  await central.scan({ durationMs }, (ad: Advertisement) => {
    const driver = registry.match({
      services: ad.services,
      ...(ad.name === undefined ? {} : { name: ad.name }),
      manufacturerIds: [...ad.manufacturerData.keys()],
    });
    if (!driver) return;
    const address = normalizeAddress(ad.address);
    const known = seen.get(address);
    if (known) {
      if (ad.rssi !== undefined) known.rssi = ad.rssi;
      return;
    }
    seen.set(address, { driver, ...(ad.rssi === undefined ? {} : { rssi: ad.rssi }) });
  });
  // Plain code-unit comparisons, not localeCompare: the order must not depend on the hub's locale.
  const compare = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  const sorted = [...seen.entries()].sort(
    ([addressA, a], [addressB, b]) =>
      compare(a.driver.category, b.driver.category) ||
      compare(a.driver.id, b.driver.id) ||
      compare(addressA, addressB),
  );
  return sorted.map(([address, { driver, rssi }], index) => {
    const enrolled = enrolledAt(address);
    return {
      number: index + 1,
      driver,
      address,
      ...(rssi === undefined ? {} : { rssi }),
      ...(enrolled ? { enrolled } : {}),
    };
  });
}

/**
 * Profiles whose specification makes bonding mandatory, so the gateway bonds before touching anything:
 * the Glucose Profile (GLP 1.0.1, Security Considerations) has the sensor bond and every Glucose Service
 * characteristic require an encrypted link (LE Security Mode 1, level 2 or 3). Other profiles leave it to the
 * device; those that protect their characteristics answer "Insufficient Authentication" or "Insufficient
 * Encryption" (ATT error codes 0x05 and 0x0F, Core 5.4 Vol 3 Part F 3.4.1.1), and the gateway bonds then.
 */
const PROFILES_THAT_BOND: ReadonlySet<string> = new Set(['glucose-meter']);

export function profileRequiresBonding(driver: Driver): boolean {
  return PROFILES_THAT_BOND.has(driver.category);
}

/** Device Information Service (DIS 1.1): manufacturer and model are read; they do not identify the unit. */
const DEVICE_INFORMATION = '180a';
const MANUFACTURER_NAME = '2a29';
const MODEL_NUMBER = '2a24';
/** Serial Number (2A25) and System ID (2A23) identify the one unit (PHI-adjacent, like the address): not read. */
const NOT_READ: ReadonlySet<string> = new Set(['2a25', '2a23']);

export type PairingStep = 'connecting' | 'bonding' | 'checking';

export interface PairingOptions {
  readonly timeoutMs: number;
  /** Bond even if neither the profile nor the device asks for it (`pair --bond`). */
  readonly forceBond?: boolean;
  /** Progress, for whoever watches ("connecting", "bonding", "checking"). */
  readonly onStep?: (step: PairingStep) => void;
}

export interface PairingResult {
  /** The adapter holds a bond with the device after pairing. */
  readonly bonded: boolean;
  /** A bond was made in this run (not one the adapter already had). */
  readonly bondedNow: boolean;
  /** Manufacturer and model from the Device Information Service, when present. */
  readonly model?: string;
}

/**
 * Connects, bonds when the profile, the user or the device asks for it, and checks the device: every
 * characteristic the driver requires is there, and the driver's readable characteristics answer. Nothing is
 * subscribed to: a cuff that indicates its stored readings on subscription would hand them over (and may
 * delete them) before the device is enrolled, and they would be lost. Always disconnects.
 */
export async function pairWith(
  central: CentralPort,
  candidate: Candidate,
  options: PairingOptions,
): Promise<PairingResult> {
  const { driver } = candidate;
  options.onStep?.('connecting');
  const connection = await central.connect(candidate.address, { timeoutMs: options.timeoutMs });
  let bondedNow = false;
  const bond = async () => {
    if (connection.bonded) return;
    options.onStep?.('bonding');
    await connection.bond();
    bondedNow = true;
  };
  try {
    if (options.forceBond || profileRequiresBonding(driver)) await bond();
    options.onStep?.('checking');
    const present = await characteristicsOf(connection);
    for (const spec of driver.characteristics) {
      if (spec.optional || present.has(normalizeUuid(spec.uuid))) continue;
      throw new DeviceError(
        'DEVICE_CHECK_FAILED',
        `the device lacks ${spec.name}, which ${driver.id} needs: is it the device you meant?`,
      );
    }
    const readable = driver.characteristics.filter((spec) => {
      const uuid = normalizeUuid(spec.uuid);
      return spec.access === 'read' && !NOT_READ.has(uuid) && present.get(uuid)?.properties.includes('read');
    });
    const values = new Map<string, Uint8Array>();
    for (const spec of readable) {
      const uuid = normalizeUuid(spec.uuid);
      const service = normalizeUuid(spec.service);
      values.set(uuid, await readBondingIfAsked(connection, service, uuid, bond));
    }
    for (const uuid of [MANUFACTURER_NAME, MODEL_NUMBER]) {
      if (values.has(uuid) || present.get(uuid)?.service !== DEVICE_INFORMATION) continue;
      values.set(uuid, await readBondingIfAsked(connection, DEVICE_INFORMATION, uuid, bond));
    }
    const model = [MANUFACTURER_NAME, MODEL_NUMBER]
      .map((uuid) => text(values.get(uuid)))
      .filter((part) => part.length > 0)
      .join(' ');
    return { bonded: connection.bonded, bondedNow, ...(model ? { model } : {}) };
  } finally {
    await connection.disconnect().catch(() => undefined);
  }
}

async function characteristicsOf(
  connection: Connection,
): Promise<Map<string, { service: string; properties: readonly string[] }>> {
  const present = new Map<string, { service: string; properties: readonly string[] }>();
  for (const service of await connection.discover()) {
    for (const c of service.characteristics) {
      present.set(normalizeUuid(c.uuid), { service: normalizeUuid(service.uuid), properties: c.properties });
    }
  }
  return present;
}

/** Reads; a device that refuses for want of an encrypted link gets bonded (once) and asked again. */
async function readBondingIfAsked(
  connection: Connection,
  service: string,
  characteristic: string,
  bond: () => Promise<void>,
): Promise<Uint8Array> {
  try {
    return await connection.read(service, characteristic);
  } catch (error) {
    if (!(error instanceof BleError) || error.code !== 'BLE_AUTH_FAILED' || connection.bonded) throw error;
    await bond();
    return connection.read(service, characteristic);
  }
}

/** A DIS string as UTF-8; the registry drops its control characters (and NUL padding) when it stores it. */
function text(bytes: Uint8Array | undefined): string {
  return bytes ? new TextDecoder('utf-8', { fatal: false }).decode(bytes).trim() : '';
}
