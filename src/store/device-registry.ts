import { randomBytes } from 'node:crypto';
import { normalizeAddress } from '../ble/address.js';
import { type Clock, systemClock } from '../util/clock.js';
import { DeviceError } from './device-errors.js';
import type { SqliteDatabase } from './encrypted-database.js';
import { StoreError, storeErrorFrom } from './errors.js';

/**
 * The enrolled devices: the only ones the gateway connects to and reads ("a neighbour's sensor is ignored").
 * Rows live in the encrypted store (schema version 3, src/store/migrations.ts), because a device's address is
 * PHI-adjacent: it identifies the patient's device wherever it goes. `Store.open()` (src/store/store.ts) makes
 * the registry on the store's one connection (the store is locked exclusively by one process, so a second
 * connection would only get STORE_LOCKED) and closes it with the store: use after that is STORE_CLOSED.
 *
 * - A device's id is `d1-` + 64 random bits, never derived from the address, so the id that travels with every
 *   reading (and to the clinic) says nothing about the radio identity.
 * - Enrolment is idempotent per address: pairing a known device again keeps its id and enrolment time and
 *   updates its driver, bond state and (when given) label and model.
 * - Forgetting deletes the row (secure_delete zeroes the freed page) and retires the id, which is never handed
 *   out again; readings of the device already in the outbox still go out under that id.
 */
export interface EnrolledDevice {
  readonly id: string;
  /** The backend's handle for the device (a Bluetooth address, upper case, on real stacks). PHI-adjacent. */
  readonly address: string;
  readonly driverId: string;
  /** The driver's profile (DeviceCategory), e.g. 'blood-pressure'. */
  readonly category: string;
  readonly label: string | null;
  /** Manufacturer and model from the Device Information Service, when the device has one. */
  readonly model: string | null;
  readonly bonded: boolean;
  /** Epoch milliseconds. */
  readonly enrolledAt: number;
  readonly updatedAt: number;
  readonly lastSeenAt: number | null;
}

export interface Enrolment {
  readonly address: string;
  readonly driverId: string;
  readonly category: string;
  readonly bonded: boolean;
  /** Kept as it is on re-enrolment when absent; a blank label clears it. */
  readonly label?: string;
  readonly model?: string;
}

export interface DeviceRegistryOptions {
  readonly clock?: Clock;
  /** Makes the random part of new ids (16 lowercase hex digits); injected by tests. */
  readonly randomHex?: () => string;
}

/** Device ids: `d1-` (version 1 of the scheme) + 16 lowercase hex digits. */
export const DEVICE_ID_PATTERN = /^d1-[0-9a-f]{16}$/;

export const MAX_LABEL_LENGTH = 64;
const MAX_ADDRESS_LENGTH = 64;
const MAX_MODEL_LENGTH = 96;
// C0 and C1 control characters, DEL, and the line and paragraph separators: a label is shown in a terminal, and
// an escape sequence in it could rewrite what the operator sees.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

interface Row {
  id: string;
  address: string;
  driver: string;
  category: string;
  label: string | null;
  model: string | null;
  bonded: number;
  enrolled_ms: number;
  updated_ms: number;
  last_seen_ms: number | null;
}

export class DeviceRegistry {
  private readonly clock: Clock;
  private readonly randomHex: () => string;
  private prepared: ReturnType<typeof prepare> | undefined;
  private closed = false;

  constructor(
    private readonly db: SqliteDatabase,
    options: DeviceRegistryOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.randomHex = options.randomHex ?? (() => randomBytes(8).toString('hex'));
  }

  /** Enrols a device, or updates the one already enrolled at this address (same id). */
  enrol(enrolment: Enrolment): { readonly device: EnrolledDevice; readonly created: boolean } {
    const address = storableAddress(enrolment.address);
    const label = enrolment.label === undefined ? undefined : normalizeLabel(enrolment.label);
    const model = enrolment.model === undefined ? undefined : normalizeModel(enrolment.model);
    const s = this.statements();
    const now = this.clock.now();
    return this.write('enrolling a device', () => {
      const existing = s.byAddress.get(address) as Row | undefined;
      if (existing) {
        s.update.run(
          enrolment.driverId,
          enrolment.category,
          enrolment.bonded ? 1 : 0,
          label === undefined ? existing.label : label,
          model === undefined ? existing.model : model,
          now,
          existing.id,
        );
        return { device: toDevice(s.byId.get(existing.id) as Row), created: false };
      }
      const id = this.newId();
      s.insert.run(
        id,
        address,
        enrolment.driverId,
        enrolment.category,
        label ?? null,
        model ?? null,
        enrolment.bonded ? 1 : 0,
        now,
        now,
      );
      return { device: toDevice(s.byId.get(id) as Row), created: true };
    });
  }

  /** Every enrolled device, oldest enrolment first. */
  list(): EnrolledDevice[] {
    return (this.statements().all.all() as Row[]).map(toDevice);
  }

  get(id: string): EnrolledDevice | undefined {
    const row = this.statements().byId.get(id) as Row | undefined;
    return row ? toDevice(row) : undefined;
  }

  /** Like get, but DEVICE_NOT_ENROLLED when there is none. */
  require(id: string): EnrolledDevice {
    const device = this.get(id);
    if (!device) throw notEnrolled(id);
    return device;
  }

  findByAddress(address: string): EnrolledDevice | undefined {
    const row = this.statements().byAddress.get(normalizeAddress(address)) as Row | undefined;
    return row ? toDevice(row) : undefined;
  }

  /** Records that an enrolled device was heard from (for `devices`); unknown ids are ignored. */
  markSeen(id: string, at: number = this.clock.now()): void {
    this.write('recording when a device was seen', () => this.statements().seen.run(at, id));
  }

  /** Removes a device and retires its id; returns what was removed (DEVICE_NOT_ENROLLED when nothing). */
  forget(id: string): EnrolledDevice {
    const s = this.statements();
    return this.write('forgetting a device', () => {
      const row = s.remove.get(id) as Row | undefined;
      if (!row) throw notEnrolled(id);
      s.retire.run(row.id, this.clock.now());
      return toDevice(row);
    });
  }

  /** A fresh id, never one in use or retired (64 random bits make a clash unlikely; this makes it impossible). */
  private newId(): string {
    const s = this.statements();
    for (;;) {
      const hex = this.randomHex();
      if (!/^[0-9a-f]{16}$/.test(hex)) throw new RangeError('randomHex must give 16 lowercase hex digits');
      const id = `d1-${hex}`;
      if (!s.idTaken.get(id, id)) return id;
    }
  }

  private write<T>(what: string, body: () => T): T {
    try {
      return this.db.transaction(body)();
    } catch (error) {
      if (error instanceof DeviceError || error instanceof RangeError) throw error;
      throw storeErrorFrom(error, what);
    }
  }

  /** The store is closing: statements are dropped, and any later use is STORE_CLOSED. */
  close(): void {
    this.closed = true;
    this.prepared = undefined;
  }

  /** Statements are prepared at first use, so constructing a registry touches nothing. */
  private statements(): ReturnType<typeof prepare> {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the device registry is closed');
    if (!this.prepared) {
      try {
        this.prepared = prepare(this.db);
      } catch (error) {
        throw storeErrorFrom(error, 'reading the device registry');
      }
    }
    return this.prepared;
  }
}

const COLUMNS = 'id, address, driver, category, label, model, bonded, enrolled_ms, updated_ms, last_seen_ms';

function prepare(db: SqliteDatabase) {
  return {
    all: db.prepare(`SELECT ${COLUMNS} FROM devices ORDER BY enrolled_ms, id`),
    byId: db.prepare(`SELECT ${COLUMNS} FROM devices WHERE id = ?`),
    byAddress: db.prepare(`SELECT ${COLUMNS} FROM devices WHERE address = ?`),
    insert: db.prepare(
      `INSERT INTO devices (id, address, driver, category, label, model, bonded, enrolled_ms, updated_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    update: db.prepare(
      'UPDATE devices SET driver = ?, category = ?, bonded = ?, label = ?, model = ?, updated_ms = ? WHERE id = ?',
    ),
    seen: db.prepare('UPDATE devices SET last_seen_ms = ? WHERE id = ?'),
    remove: db.prepare(`DELETE FROM devices WHERE id = ? RETURNING ${COLUMNS}`),
    retire: db.prepare('INSERT OR IGNORE INTO retired_device_ids (id, retired_ms) VALUES (?, ?)'),
    idTaken: db
      .prepare(
        'SELECT 1 FROM devices WHERE id = ? UNION ALL SELECT 1 FROM retired_device_ids WHERE id = ? LIMIT 1',
      )
      .pluck(),
  };
}

function toDevice(row: Row): EnrolledDevice {
  return {
    id: row.id,
    address: row.address,
    driverId: row.driver,
    category: row.category,
    label: row.label,
    model: row.model,
    bonded: row.bonded === 1,
    enrolledAt: row.enrolled_ms,
    updatedAt: row.updated_ms,
    lastSeenAt: row.last_seen_ms,
  };
}

/** DEVICE_NOT_ENROLLED for `id`; the value is echoed only when it has the shape of a device id. */
export function notEnrolled(id: string): DeviceError {
  // Only an id-shaped value is echoed: what the user typed may be anything, an address included.
  const message = DEVICE_ID_PATTERN.test(id)
    ? `no enrolled device has the id ${id} (see: rpm-gateway devices)`
    : 'that is not a device id (ids look like d1-0123456789abcdef; see: rpm-gateway devices)';
  return new DeviceError('DEVICE_NOT_ENROLLED', message);
}

/** The stored form (src/ble/address.ts), refused when it cannot be an address of any backend. */
function storableAddress(address: string): string {
  const value = normalizeAddress(address);
  if (value.length === 0 || value.length > MAX_ADDRESS_LENGTH || CONTROL.test(value)) {
    // Never echo the value: it is (or resembles) an address.
    throw new DeviceError('DEVICE_INVALID', 'the device address is empty, too long or not printable');
  }
  return value;
}

/** A label is trimmed; blank clears it; control characters and more than 64 characters are refused. */
export function normalizeLabel(label: string): string | null {
  const value = label.trim();
  if (value.length === 0) return null;
  if (CONTROL.test(value)) throw new DeviceError('DEVICE_INVALID', 'a label cannot hold control characters');
  if ([...value].length > MAX_LABEL_LENGTH) {
    throw new DeviceError('DEVICE_INVALID', `a label has at most ${MAX_LABEL_LENGTH} characters`);
  }
  return value;
}

/** Device Information strings come from the radio: control characters are dropped, the length capped. */
function normalizeModel(model: string): string | null {
  const value = [...model.replace(new RegExp(CONTROL.source, 'g'), '').trim()]
    .slice(0, MAX_MODEL_LENGTH)
    .join('');
  return value.length === 0 ? null : value;
}
