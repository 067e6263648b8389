import { BleError, type Connection } from '../ble/central.js';
import {
  type Driver,
  type FramePattern,
  type SetupAnswer,
  type SetupContext,
  type SetupWrite,
  setupValue,
} from '../drivers/sdk/define-driver.js';
import { DriverError } from '../errors.js';
import { normalizeUuid } from '../gatt/uuid.js';
import type { Scheduler } from '../util/scheduler.js';

/**
 * The driver's setup writes on one connection (SetupWrite in define-driver.ts): a sequence run in order, each
 * step waiting for its expected answer when it declares one (written again on timeout up to its retries), then
 * the repeating writes (keep-alives and polls) on the injected scheduler until the link ends. Consecutive
 * repeating writes of one period repeat together, in order, as one transaction (repeatInOrder).
 *
 * Answers: the session offers every whole frame of a notify/indicate characteristic (every notification on an
 * unframed one) here as well as to the decoder, so a poll's response is both the answer and a reading. A frame
 * the decoder refuses is still offered: an acknowledgement the driver does not decode can answer a step.
 *
 * Failures are BleErrors the session's retry policy knows (retry-policy.ts): BLE_NO_ANSWER when a step (or a
 * poll, that many times in a row) went unanswered, BLE_REFUSED when the device answered with the refusal
 * pattern. Messages name the step by its number and the driver's reason, never the bytes.
 *
 * Values: a write whose value is a function (SetupValue) is computed at each write, the first and every repeat,
 * from the context the session provides (its clock, when synchronised). A value function that fails is a driver
 * bug: the attempt fails with DRIVER_SETUP_VALUE.
 */
export type AnswerVerdict = 'answered' | 'refused' | 'timeout';

interface Waiter {
  readonly characteristic: string;
  readonly answer: SetupAnswer;
  readonly settle: (verdict: AnswerVerdict) => void;
}

/** One connection's setup sequence: make a new one for every connection. */
export class SetupSequence {
  private readonly waiters = new Set<Waiter>();
  private readonly timers = new Set<unknown>();
  private ended = false;

  constructor(
    private readonly scheduler: Scheduler,
    /**
     * A repeating write's answers stopped coming, it was refused, or its value could not be computed: the
     * connection must fail.
     */
    private readonly onFailure: (error: BleError | DriverError) => void,
    /** What a computed value may know at the moment of its write. */
    private readonly context: () => SetupContext,
    private readonly driverId?: string,
  ) {}

  /** Runs the steps in order; resolves when all were written and answered, then starts the repeating ones. */
  async run(connection: Connection, driver: Driver, wanted: () => boolean): Promise<void> {
    const steps = driver.setup ?? [];
    for (const [index, write] of steps.entries()) {
      if (!wanted() || this.ended) return;
      await this.step(connection, write, index + 1, wanted);
    }
    for (const group of repeatingGroups(steps)) {
      if (group.length === 1) {
        const [{ write, number }] = group as [NumberedWrite];
        this.repeat(connection, write, number, wanted);
      } else {
        this.repeatInOrder(connection, group, wanted);
      }
    }
  }

  /** A whole frame (or an unframed notification) arrived on `uuid`: it may answer a waiting write. */
  offer(uuid: string, frame: Uint8Array): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.characteristic !== uuid) continue;
      if (waiter.answer.refused !== undefined && matches(waiter.answer.refused, frame)) {
        waiter.settle('refused');
      } else if (matches(waiter.answer.match, frame)) {
        waiter.settle('answered');
      }
    }
  }

  /** The link ended: no more writes, no more timers; pending waits end as timeouts nobody acts on. */
  clear(): void {
    this.ended = true;
    for (const handle of this.timers) this.scheduler.clearTimeout(handle);
    this.timers.clear();
    for (const waiter of [...this.waiters]) waiter.settle('timeout');
  }

  /** Async so that a value function's failure is a rejection, never a throw out of a timer. */
  private async send(connection: Connection, write: SetupWrite): Promise<void> {
    const value = setupValue(write, this.context(), this.driverId);
    await connection.write(normalizeUuid(write.service), normalizeUuid(write.characteristic), value, {
      withResponse: write.withResponse ?? true,
    });
  }

  private async step(
    connection: Connection,
    write: SetupWrite,
    number: number,
    wanted: () => boolean,
  ): Promise<void> {
    const answer = write.expect;
    if (answer === undefined) {
      await this.send(connection, write);
      return;
    }
    const tries = 1 + (answer.retries ?? 0);
    for (let attempt = 0; attempt < tries; attempt++) {
      // Armed before the write: a device may answer before the write's own response reaches us.
      const verdict = this.await(answer);
      await this.send(connection, write);
      const result = await verdict;
      if (!wanted() || this.ended) return;
      if (result === 'answered') return;
      if (result === 'refused') throw refusedError(write, number);
    }
    throw new BleError(
      'BLE_NO_ANSWER',
      `setup step ${number} (${write.reason}) got no answer within ${answer.timeoutMs} ms, ${tries} ${tries === 1 ? 'try' : 'tries'}`,
    );
  }

  /** A repeating write: every period while wanted; with `expect`, too many unanswered in a row fail the link. */
  private repeat(connection: Connection, write: SetupWrite, number: number, wanted: () => boolean): void {
    const every = write.repeatEveryMs as number;
    const answer = write.expect;
    let misses = 0;
    const tick = () => {
      this.timers.delete(handle);
      if (!wanted() || this.ended) return;
      if (answer !== undefined) {
        void this.await(answer).then((verdict) => {
          if (!wanted() || this.ended) return;
          if (verdict === 'answered') {
            misses = 0;
          } else if (verdict === 'refused') {
            this.fail(refusedError(write, number));
          } else if (++misses > (answer.retries ?? 0)) {
            this.fail(
              new BleError(
                'BLE_NO_ANSWER',
                `repeating setup write ${number} (${write.reason}) went unanswered ${misses} times in a row (${answer.timeoutMs} ms each)`,
              ),
            );
          }
        });
      }
      // A failed write is not acted on here: the link's end (or the missing answer) ends the attempt. A value
      // that cannot be computed will not be computable at the next repeat either.
      void this.send(connection, write).catch((error: unknown) => {
        if (error instanceof DriverError) this.fail(error);
      });
      handle = this.scheduler.setTimeout(tick, every);
      this.timers.add(handle);
    };
    let handle = this.scheduler.setTimeout(tick, every);
    this.timers.add(handle);
  }

  /**
   * Consecutive repeating writes of one period (e.g. start transfer, read, read, end transfer) are one
   * transaction: each period they are written again in order, each waiting for its answer (with its retries)
   * before the next, exactly as in the first run. The next period counts from the end of the previous run, so
   * runs never overlap. A step left unanswered or refused fails the link, as in the first run.
   */
  private repeatInOrder(
    connection: Connection,
    group: readonly NumberedWrite[],
    wanted: () => boolean,
  ): void {
    const every = (group[0] as NumberedWrite).write.repeatEveryMs as number;
    const tick = async () => {
      this.timers.delete(handle);
      for (const { write, number } of group) {
        if (!wanted() || this.ended) return;
        await this.step(connection, write, number, wanted);
      }
      if (!wanted() || this.ended) return;
      handle = this.scheduler.setTimeout(run, every);
      this.timers.add(handle);
    };
    const run = () => {
      tick().catch((error: unknown) => {
        if (error instanceof BleError || error instanceof DriverError) this.fail(error);
        // Any other failure is the write's own (the link going away): its end ends the attempt.
      });
    };
    let handle = this.scheduler.setTimeout(run, every);
    this.timers.add(handle);
  }

  private fail(error: BleError | DriverError): void {
    if (this.ended) return;
    this.clear();
    this.onFailure(error);
  }

  private await(answer: SetupAnswer): Promise<AnswerVerdict> {
    return new Promise((resolve) => {
      let timer: unknown;
      const waiter: Waiter = {
        characteristic: normalizeUuid(answer.characteristic),
        answer,
        settle: (verdict) => {
          if (!this.waiters.delete(waiter)) return;
          this.scheduler.clearTimeout(timer);
          this.timers.delete(timer);
          resolve(verdict);
        },
      };
      this.waiters.add(waiter);
      timer = this.scheduler.setTimeout(() => waiter.settle('timeout'), answer.timeoutMs);
      this.timers.add(timer);
    });
  }
}

interface NumberedWrite {
  readonly write: SetupWrite;
  /** Its place in the driver's setup list, from 1 (messages name steps by it). */
  readonly number: number;
}

/** The repeating writes, grouped: consecutive writes with the same repeatEveryMs form one group. */
function repeatingGroups(steps: readonly SetupWrite[]): NumberedWrite[][] {
  const groups: NumberedWrite[][] = [];
  let previous: number | undefined;
  for (const [index, write] of steps.entries()) {
    const every = write.repeatEveryMs;
    if (every === undefined) {
      previous = undefined;
      continue;
    }
    const last = groups.at(-1);
    if (last !== undefined && every === previous) last.push({ write, number: index + 1 });
    else groups.push([{ write, number: index + 1 }]);
    previous = every;
  }
  return groups;
}

function refusedError(write: SetupWrite, number: number): BleError {
  return new BleError('BLE_REFUSED', `the device refused setup step ${number} (${write.reason})`);
}

/** Whether `frame` is the pattern's: a prefix of bytes (null: any byte), or the predicate's yes. */
export function matches(pattern: FramePattern, frame: Uint8Array): boolean {
  if (typeof pattern === 'function') {
    try {
      return pattern(frame) === true;
    } catch {
      // A driver's predicate that throws on an odd frame has not matched it.
      return false;
    }
  }
  if (frame.length < pattern.length) return false;
  return pattern.every((byte, i) => byte === null || frame[i] === byte);
}
