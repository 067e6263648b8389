import { DecodeError } from '../../errors.js';
import {
  decodeRacp,
  encodeRacp,
  RACP_OP_CODES,
  type RacpFilter,
  type RacpRequest,
} from '../../gatt/glucose.js';
import type { Scheduler, TimerHandle } from '../../util/scheduler.js';
import { BleError } from '../central.js';
import type { VirtualPeripheral } from './virtual-peripheral.js';

/** One stored glucose record: its sequence number, its bytes, and its user-facing time for time filters. */
export interface GlucoseRecord {
  readonly sequenceNumber: number;
  /** Glucose Measurement (0x2A18) value. */
  readonly measurement: Uint8Array;
  /** Glucose Measurement Context (0x2A34) value, sent right after the measurement when present. */
  readonly context?: Uint8Array;
  /** Base Time + Time Offset as ISO local time (what a user-facing-time filter compares). */
  readonly userFacingTime: string;
}

export interface RacpServerOptions {
  readonly measurement?: string;
  readonly context?: string;
  readonly controlPoint?: string;
  /** Gap between records of a report (default 20 ms: about what a meter manages per connection event pair). */
  readonly spacingMs?: number;
  /**
   * The order of a report (default 'storage'). A Glucose Service keeps its records in the order they were
   * made, each new one with the next sequence number (GLS 1.0.1 section 3.1.1.2), and a "report stored
   * records" sends them in that order: Nordic's nRF5 SDK glucose service, for one, adds each record at the end
   * of its database (components/ble/ble_services/ble_gls/ble_gls_db.c, ble_gls_db_record_add) and reports
   * by walking it by index (ble_gls.c), so a memory that spans the 16-bit wrap reports 65520..65535 before
   * 0... 'numeric' sorts by sequence number instead (0.. first), as a meter may: the gateway must hold up
   * either way (src/session/racp-download.ts).
   */
  readonly order?: 'storage' | 'numeric';
}

/** GLS 1.0.1 3.4 response code values the server sends. */
const SUCCESS = 1;
const OP_CODE_NOT_SUPPORTED = 2;
const INVALID_OPERATOR = 3;
const INVALID_OPERAND = 5;
const NO_RECORDS_FOUND = 6;

/**
 * The meter side of the Glucose Service's Record Access Control Point (GLS 1.0.1 3.4): report stored records
 * (all, <=, >=, within range, first, last; by sequence number or user-facing time), report the number of
 * stored records, delete stored records, and abort. Records stay in the meter after a report (a glucose meter's
 * memory is not a queue), so a client resumes an interrupted download with "greater or equal to last + 1".
 */
export class RacpServer {
  private readonly records: GlucoseRecord[] = [];
  private readonly measurement: string;
  private readonly context: string;
  private readonly controlPoint: string;
  private readonly spacingMs: number;
  private readonly order: 'storage' | 'numeric';
  private readonly scheduler: Scheduler;
  private timer: TimerHandle | undefined;
  private inProgress = false;
  /** Numbers report procedures, so that a cancelled one never goes on. */
  private procedure = 0;

  constructor(
    private readonly peripheral: VirtualPeripheral,
    options: RacpServerOptions = {},
  ) {
    this.measurement = options.measurement ?? '2a18';
    this.context = options.context ?? '2a34';
    this.controlPoint = options.controlPoint ?? '2a52';
    this.spacingMs = options.spacingMs ?? 20;
    this.order = options.order ?? 'storage';
    this.scheduler = peripheral.scheduler;
    // A link that ends mid-report ends the procedure; nothing is resent on its own.
    peripheral.addHooks({ onDisconnect: () => this.cancel() });
  }

  add(record: GlucoseRecord): void {
    this.records.push(record);
  }

  /** Forgets every record (the meter's memory was reset); a report under way ends. */
  clear(): void {
    this.cancel();
    this.records.length = 0;
  }

  get stored(): readonly GlucoseRecord[] {
    return this.records;
  }

  /** The onWrite handler of the control point. Throws BleError where GLS answers with an ATT error. */
  handleWrite(value: Uint8Array): undefined {
    if (!this.peripheral.connected) return;
    // GLS 1.0.1 3.4.1: without indications enabled the server answers ATT error 0xFD (CCCD improperly configured).
    if (!this.peripheral.isSubscribed(this.controlPoint)) {
      throw new BleError('BLE_NOT_SUPPORTED', 'enable indications on the RACP before writing to it');
    }
    let request: RacpRequest;
    try {
      const message = decodeRacp(value);
      if (message.opCode === 'number-of-stored-records-response' || message.opCode === 'response-code') {
        return this.respond(value[0] ?? 0, OP_CODE_NOT_SUPPORTED);
      }
      request = message;
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      const op = value[0] ?? 0;
      const known = RACP_OP_CODES[op] !== undefined;
      return this.respond(
        op,
        !known ? OP_CODE_NOT_SUPPORTED : error.offset === 1 ? INVALID_OPERATOR : INVALID_OPERAND,
      );
    }
    if (request.opCode === 'abort-operation') {
      this.cancel();
      return this.respond(3, SUCCESS);
    }
    // GLS 1.0.1 3.4.1: a request while a procedure runs is refused with ATT error 0xFE.
    if (this.inProgress) throw new BleError('BLE_NOT_SUPPORTED', 'RACP procedure already in progress');
    let selected: GlucoseRecord[];
    try {
      selected = this.select(request);
    } catch {
      return this.respond(RACP_OP_CODES.indexOf(request.opCode), INVALID_OPERAND);
    }
    switch (request.opCode) {
      case 'report-number-of-stored-records':
        this.indicate(
          encodeRacp({
            opCode: 'number-of-stored-records-response',
            operator: 'null',
            numberOfRecords: selected.length,
          }),
        );
        return;
      case 'delete-stored-records':
        for (const r of selected) this.records.splice(this.records.indexOf(r), 1);
        return this.respond(2, SUCCESS);
      case 'report-stored-records':
        if (selected.length === 0) return this.respond(1, NO_RECORDS_FOUND);
        this.inProgress = true;
        this.sendFrom(selected, 0);
        return;
    }
  }

  private sendFrom(records: readonly GlucoseRecord[], index: number, procedure = ++this.procedure): void {
    this.timer = this.scheduler.setTimeout(() => {
      this.timer = undefined;
      const record = records[index];
      // A report that was cancelled (the link dropped while a record was being sent) stays over, even when a
      // new report started in the meantime.
      if (procedure !== this.procedure || !this.inProgress || !this.peripheral.connected) return;
      if (record === undefined) {
        this.inProgress = false;
        return this.respond(1, SUCCESS);
      }
      this.peripheral.emit(this.measurement, record.measurement);
      if (record.context && this.peripheral.connected) this.peripheral.emit(this.context, record.context);
      this.sendFrom(records, index + 1, procedure);
    }, this.spacingMs);
  }

  private cancel(): void {
    this.procedure++;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    this.inProgress = false;
  }

  private select(request: RacpRequest): GlucoseRecord[] {
    // `records` is in storage order (oldest first): "first" and "last" are the oldest and the newest record
    // (GLS 1.0.1 section 3.4: operators 0x05 "first record (i.e. oldest record)", 0x06 "last record").
    const all =
      this.order === 'numeric'
        ? [...this.records].sort((a, b) => a.sequenceNumber - b.sequenceNumber)
        : [...this.records];
    switch (request.operator) {
      case 'all':
        return all;
      case 'first':
        return all.slice(0, 1);
      case 'last':
        return all.slice(-1);
      case 'less-or-equal':
      case 'greater-or-equal':
      case 'within-range':
        return all.filter((r) => inFilter(r, request.filter));
      default:
        throw new RangeError(`operator ${request.operator}`);
    }
  }

  /** Indicates a Response Code; returns undefined so a handler can `return this.respond(...)`. */
  private respond(requestOpCode: number, responseCode: number): undefined {
    this.indicate(
      encodeRacp({
        opCode: 'response-code',
        operator: 'null',
        requestOpCode,
        requestOpCodeName: RACP_OP_CODES[requestOpCode],
        responseCode,
        responseCodeName: 'success', // ignored by the encoder, which writes the numeric code
      }),
    );
    return undefined;
  }

  private indicate(value: Uint8Array): void {
    this.peripheral.emit(this.controlPoint, value);
  }
}

function inFilter(record: GlucoseRecord, filter: RacpFilter | undefined): boolean {
  if (filter === undefined) throw new RangeError('no filter');
  if (filter.type === 'sequence-number') {
    return (
      (filter.min === undefined || record.sequenceNumber >= filter.min) &&
      (filter.max === undefined || record.sequenceNumber <= filter.max)
    );
  }
  const min = filter.min?.iso;
  const max = filter.max?.iso;
  if (min === null || max === null) throw new RangeError('a time filter needs known times');
  return (
    (min === undefined || record.userFacingTime >= min) && (max === undefined || record.userFacingTime <= max)
  );
}
