import {
  encodeRacp,
  encodeRacpReportAll,
  type RacpMessage,
  type RacpResponseCode,
} from '../gatt/glucose-racp.js';

/**
 * Where a glucose meter's record download resumes: the sequence number of the last record the store holds
 * (committed with it, src/store/racp-resume.ts) and that record's stable measurement id (src/model/ids.ts:
 * derived from the device, the characteristic, the meter's own timestamp and the record's bytes), its anchor.
 * The anchor is null when the record had no device time (its id would be random, so it proves nothing).
 */
export interface RacpResumePoint {
  readonly sequence: number;
  readonly anchor: string | null;
}

/**
 * Half the 16-bit sequence space: records up to this far after the resume point count as newer (serial number
 * arithmetic as in RFC 1982 section 3.2). A meter holds a few hundred to a few thousand records, far fewer.
 */
const WINDOW = 0x7fff;

/**
 * Whether sequence number `a` is after `b`: RFC 1982 section 3.2 with SERIAL_BITS = 16 (a is after b when it
 * is at most 32767 ahead of b, counting past 65535 to 0).
 */
export function serialAfter(a: number, b: number): boolean {
  const ahead = (a - b) & 0xffff;
  return ahead !== 0 && ahead <= WINDOW;
}

type Phase = 'window' | 'window-after-wrap' | 'all' | 'done';

/**
 * One connection's stored-record download from a glucose meter over the Record Access Control Point (GLS 1.0.1
 * section 3.4), resumed after the last record the store holds. It says which requests to write, which records
 * to deliver, and which delivered record moves the resume point.
 *
 * Sequence numbers are uint16 (GLS 1.0.1 section 3.1.1.2; the GATT Specification Supplement's Glucose
 * Measurement: "Sequence Number, uint16"), one more for each new record. A meter that has made 65,536 records
 * must either stop or start again at 0, and meters in the field do the latter; a meter whose memory was reset
 * (a battery pulled, a factory reset) starts again at a low number whatever it had reached. So "report records
 * greater than or equal to last + 1" (operator 0x03, filter type 0x01) is wrong twice: after 65535 it asks
 * for 0 and gets everything again, and after a reset it asks for numbers the meter will not reach for months.
 *
 * What is asked instead:
 * - No resume point (the device's first download): report all records (01 01).
 * - Otherwise the records within the half of the sequence space that follows the resume point, the resume
 *   point's own record included: "report stored records, within range of" (operator 0x04, filter type 0x01,
 *   GLS 1.0.1 section 3.4) [last, last + 32767]; when that crosses 65535 it is two requests, [last, 65535] and
 *   then [0, the rest], so records after a wrap come in the order they were made.
 * - The first record of that range must be the resume point's own record, with the same id. It is not
 *   delivered again (nor its context). Then:
 *   - it is there and the same: every record after it is new, and is delivered;
 *   - it is there but another record (another time or other bytes under the same number): the meter was reset
 *     and has since made records up to past the old number. Nothing more of the range is delivered, and all
 *     records are asked for;
 *   - the range holds no record at all: the meter's numbers are all below the resume point (a reset with
 *     fewer new records than before) or the meter is empty. All records are asked for ("no records found"
 *     ends it when the meter is empty);
 *   - it is missing but later ones are there: the meter dropped its oldest records (its memory is full); the
 *     later ones are delivered.
 * - A meter that refuses the range request (response code "operator not supported" and the like) is asked for
 *   all records; the outbox then drops the measurements it already holds by their stable ids.
 *
 * Every record a meter reports is delivered once per connection at most, and no record newer than the resume
 * point is skipped. A record's resume point is its last value: the context (0x2A34) when the measurement said
 * one follows, else the measurement (0x2A18); the runtime commits it with that value's outbox row.
 *
 * The resume point never moves past a record not yet delivered, whatever order the meter reports in:
 * - A range request never crosses 65535 (it is split there), so within one the numeric and the serial order
 *   are the same, and a meter reporting in either order (storage order, or sorted by number) reports it
 *   ascending: the point moves with each record.
 * - A "report all" has no such guarantee. A meter keeps its records in the order it made them and reports them
 *   so (oldest first), but one that sorts by number reports a memory spanning the wrap as 0.. before ..65535,
 *   and a point moved to the 10th record delivered would leave the older ones behind for good. So during a
 *   "report all" the point stays where it was (an interrupted one is asked for again from the start), and
 *   only when the meter ends it with "success" does it move, to the newest record delivered (RFC 1982 serial
 *   number arithmetic: the one no other record of the download is after). The session holds back the
 *   report's last record until then to carry it (`holdsBack`, `settled`).
 *   An interrupted "report all" (a device's first download, a meter reset) sends its records again: the
 *   measurements keep their stable ids, and so do their contexts, which the session gives their measurement's
 *   device time (glucose-context.ts); the outbox and the clinic drop both. Only a context the meter sends
 *   without its measurement just before it (never seen from a GLS server that follows the flag) has no time,
 *   a random id, and would be stored again.
 */
export class RacpDownload {
  private phase: Phase;
  private readonly point: RacpResumePoint | undefined;
  /** Records the range requests brought so far (the anchor included), over both halves of a wrap. */
  private seenInRange = 0;
  /** The anchor was found under its number but was another record: the meter was reset. */
  private reset = false;
  /** The sequence number whose context is not delivered (the anchor's). */
  private skipContextOf: number | undefined;
  /** A delivered measurement whose context is still to come: its resume point goes with the context. */
  private awaitingContext: RacpResumePoint | undefined;
  private lastResponse: RacpResponseCode | undefined;
  /** The newest record delivered so far (serially), where a completed "report all" moves the resume point. */
  private newest: RacpResumePoint | undefined;

  constructor(point: RacpResumePoint | undefined) {
    this.point = point;
    this.phase = point === undefined ? 'all' : 'window';
  }

  /** The first request to write. */
  firstRequest(): Uint8Array {
    return this.request();
  }

  /**
   * After the meter's response code ended a request: the next request, or undefined when the download is over.
   * `response` is undefined when the request ended without one (the meter fell silent).
   */
  next(): Uint8Array | undefined {
    const response = this.lastResponse;
    this.lastResponse = undefined;
    if (response === undefined || this.phase === 'done' || this.phase === 'all') {
      this.phase = 'done';
      return undefined;
    }
    if (this.reset || (response !== 'success' && response !== 'no-records-found')) {
      this.phase = 'all';
      return this.request();
    }
    if (this.phase === 'window' && this.crossesWrap()) {
      this.phase = 'window-after-wrap';
      return this.request();
    }
    if (this.seenInRange === 0) {
      this.phase = 'all';
      return this.request();
    }
    this.phase = 'done';
    return undefined;
  }

  /**
   * Whether the session holds back each delivered record of the report until the next one comes or the request
   * ends (a "report all": the resume point moves only at its end, with the last record; see the class comment).
   */
  get holdsBack(): boolean {
    return this.phase === 'all';
  }

  /**
   * Once the current request ended, before next(): the resume point the held-back last record carries, or
   * undefined. Only a "report all" the meter ended with "success" gives one: every record it holds came.
   */
  settled(): RacpResumePoint | undefined {
    return this.phase === 'all' && this.lastResponse === 'success' ? this.newest : undefined;
  }

  /** The meter's RACP indication (decoded): a response code ends the current request. */
  noteControlPoint(message: RacpMessage): void {
    if (message.opCode === 'response-code') this.lastResponse = message.responseCodeName;
  }

  /**
   * A Glucose Measurement (0x2A18) of the report: whether to deliver it, and the resume point it moves to when
   * delivered and no context follows it. `id` is its stable measurement id, or null without a device time.
   */
  measurement(
    sequence: number,
    id: string | null,
    contextFollows: boolean,
  ): { deliver: boolean; progress?: RacpResumePoint } {
    this.awaitingContext = undefined;
    if (this.phase === 'window' || this.phase === 'window-after-wrap') {
      this.seenInRange++;
      if (this.reset) return { deliver: false };
      const point = this.point;
      if (point !== undefined && sequence === point.sequence) {
        if (point.anchor === null || id === null || id === point.anchor) {
          this.skipContextOf = sequence;
          return { deliver: false };
        }
        this.reset = true;
        return { deliver: false };
      }
    }
    const reached: RacpResumePoint = { sequence, anchor: id };
    if (this.newest === undefined || serialAfter(sequence, this.newest.sequence)) this.newest = reached;
    // A "report all" may come in any order: its records move nothing until it ends (settled()).
    if (this.phase === 'all') return { deliver: true };
    if (contextFollows) {
      this.awaitingContext = reached;
      return { deliver: true };
    }
    return { deliver: true, progress: reached };
  }

  /** A Glucose Measurement Context (0x2A34) of the report: whether to deliver it, and the resume point. */
  context(sequence: number): { deliver: boolean; progress?: RacpResumePoint } {
    if (this.reset && this.phase !== 'all') return { deliver: false };
    if (this.skipContextOf === sequence && this.phase !== 'all') return { deliver: false };
    const pending = this.awaitingContext;
    if (pending !== undefined && pending.sequence === sequence) {
      this.awaitingContext = undefined;
      return { deliver: true, progress: pending };
    }
    return { deliver: true };
  }

  private crossesWrap(): boolean {
    return this.point !== undefined && this.point.sequence + WINDOW > 0xffff;
  }

  private request(): Uint8Array {
    const point = this.point;
    if (this.phase === 'all' || point === undefined) return encodeRacpReportAll();
    const from = point.sequence;
    const last = (from + WINDOW) & 0xffff;
    if (this.phase === 'window-after-wrap') return withinRange(0, last);
    return withinRange(from, this.crossesWrap() ? 0xffff : last);
  }
}

/** Report stored records with min <= sequence number <= max (01 04 01 min max; GLS 1.0.1 section 3.4). */
export function withinRange(min: number, max: number): Uint8Array {
  return encodeRacp({
    opCode: 'report-stored-records',
    operator: 'within-range',
    filter: { type: 'sequence-number', min, max },
  });
}
