import type { ConnectionOptions } from 'node:tls';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { mqttsConnection } from '../../pki/index.js';
import type { TlsMaterial } from '../../pki/tls.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../util/scheduler.js';
import { MAX_ENVELOPE_BYTES } from '../../wire/index.js';
import type {
  ClinicStore,
  IncomingGap,
  IncomingMeasurement,
  IncomingRejection,
  IncomingStatus,
  Receipt,
} from '../storage/clinic-store.js';
import { IntakeError } from './errors.js';
import { GatewayInventory, type InventoryEvent } from './gateway-inventory.js';
import { GroupCommitter, type GroupEntry } from './group-commit.js';
import { type Ack, holdPubacks } from './held-pubacks.js';
import { assertTimeZone } from './local-time.js';
import { type IntakeStats, StatsCounter } from './stats.js';
import { judgeAsync, type Refused, type SignerPolicy, type Verified } from './verify.js';
import { hasOffset, ZoneResolver } from './zones.js';

/**
 * The clinic intake (docs/clinic-intake.md): subscribes to every gateway's obs, alert and status topics with a
 * persistent session, judges each message (verify.ts), stores what it holds through a ClinicStore in group
 * commits (group-commit.ts) and sends each message's PUBACK only after the commit holding it has resolved
 * (held-pubacks.ts). A refused message is stored as a rejection in the same commits and acknowledged too, so
 * the broker does not deliver it forever; one whose signer is unknown keeps its bytes (quarantine) and is
 * judged again whenever the gateway inventory changes.
 */
export const DAY_MS = 86_400_000;
export const DEFAULT_GRACE_MS = 7 * DAY_MS;
export const MAX_GRACE_MS = 30 * DAY_MS;
/**
 * Messages judged at once (signatures on the thread pool, libuv's 4 threads by default): enough to keep every
 * core busy, few enough that what waits beyond the committer's memory bounds stays small (at most this many
 * envelopes of at most maxEnvelopeBytes each).
 */
const MAX_JUDGING = 64;

export interface IntakeGroupOptions {
  /** Commit when this many messages wait (default 256). */
  readonly maxMessages?: number;
  /** ... or this many readings, gaps and statuses (default 5,000; a group stops there, group-commit.ts). */
  readonly maxItems?: number;
  /** ... or when the oldest has waited this long (default 10 ms). */
  readonly maxDelayMs?: number;
  /** Memory bound: messages waiting or committing before the intake stops reading (default 4 x maxMessages). */
  readonly maxPendingMessages?: number;
  /**
   * Memory bound in readings, gaps and statuses waiting or committing (default 4 x maxItems): what decoded
   * messages hold, which payload bytes understate about tenfold.
   */
  readonly maxPendingItems?: number;
  /** Memory bound in payload bytes (default 64 MiB). */
  readonly maxPendingBytes?: number;
  /**
   * Commits in flight at once (default 1; group-commit.ts). 3 on PostgreSQL (intake-from-config.ts): a group is
   * sent while the ones before wait for the server. Each message is still acknowledged after its own commit.
   */
  readonly maxConcurrent?: number;
  /** Backoff after a failed commit: base and cap (default 100 ms, 30 s). */
  readonly retryBaseMs?: number;
  readonly retryCapMs?: number;
}

export type IntakeEvent =
  | { readonly type: 'connected'; readonly resumed: boolean }
  | { readonly type: 'disconnected' }
  | { readonly type: 'mqtt-error'; readonly message: string }
  | {
      readonly type: 'rejected';
      readonly code: string;
      readonly message: string;
      readonly gatewayId?: string;
    }
  | {
      readonly type: 'commit-failed';
      readonly attempt: number;
      readonly retryInMs?: number;
      readonly message: string;
    }
  | { readonly type: 'quarantine-released'; readonly count: number }
  | { readonly type: 'quarantine-failed'; readonly message: string }
  | { readonly type: 'bad-time-zone'; readonly gatewayId: string; readonly timeZone: string }
  | { readonly type: 'inventory'; readonly event: InventoryEvent };

export interface ClinicIntakeOptions {
  readonly broker: { readonly host: string; readonly port: number; readonly servername?: string };
  /** The clinic's client certificate and key, and the CA that issued the broker's. */
  readonly tls: TlsMaterial;
  /** `clinic-<name>` or `clinic-<name>-<suffix>` (src/broker/acl.ts). */
  readonly clientId: string;
  /**
   * What to subscribe to. Default: `rpm/v1/+/obs`, `rpm/v1/+/alert`, `rpm/v1/+/status`. With `sharedGroup`
   * (MQTT 5 only) the same filters as `$share/<group>/...`, so several intake processes split one stream.
   */
  readonly subscription?:
    | { readonly topics: readonly string[] }
    | { readonly sharedGroup: string; readonly kinds?: readonly ('obs' | 'alert' | 'status')[] };
  readonly protocolVersion?: 4 | 5;
  readonly store: ClinicStore;
  /** The clinic CA, the folder of issued gateway certificates and the CA's CRL file. */
  readonly gateways: {
    readonly caPem: string | Buffer;
    readonly folder?: string;
    readonly crlFile?: string;
    /** How often lookups look at the folder for changes (default 1000 ms). */
    readonly checkIntervalMs?: number;
  };
  /** Accept messages this long after the signer's notAfter if signed before it (default 7 d, at most 30 d). */
  readonly graceMs?: number;
  readonly maxEnvelopeBytes?: number;
  /** IANA zone for device times without an offset when no assignment of the gateway names one. */
  readonly defaultTimeZone: string;
  /** How long a gateway's assignments (their time zones) are cached (default 60 s). */
  readonly assignmentCacheMs?: number;
  /** How often the inventory is checked for changes to retry quarantined messages (default 5 s). */
  readonly quarantineCheckMs?: number;
  /** Quarantined messages read per retry (default 10,000). */
  readonly quarantineBatch?: number;
  readonly group?: IntakeGroupOptions;
  readonly scheduler?: Scheduler;
  readonly random?: () => number;
  /** MQTT reconnect period (default 1000 ms). */
  readonly reconnectPeriodMs?: number;
  readonly onEvent?: (event: IntakeEvent) => void;
}

/** One message on its way to the database. */
interface Entry extends GroupEntry {
  readonly topic: string;
  readonly receivedAt: number;
  readonly verdict: Verified | Refused;
  readonly payload: Uint8Array;
  readonly ack: Ack | undefined;
  /** Quarantine rows this entry replaces (a retry): released after its commit. */
  readonly releases?: readonly number[];
}

export class ClinicIntake {
  readonly inventory: GatewayInventory;
  private client: MqttClient | undefined;
  private readonly scheduler: Scheduler;
  private readonly committer: GroupCommitter<Entry>;
  private readonly zones: ZoneResolver;
  private readonly policy: SignerPolicy;
  private readonly stats = new StatsCounter();
  private stopping = false;
  private quarantineTimer: TimerHandle | undefined;
  private quarantineVersion = -1;
  private quarantineRun: Promise<void> | undefined;
  private readonly quarantineInFlight = new Set<number>();
  /** Commits in flight at once (group.maxConcurrent). */
  private readonly maxConcurrent: number;
  /** Messages received and being judged: not yet in the committer. */
  private judging = 0;
  private readonly judgedWaiters: (() => void)[] = [];

  constructor(private readonly options: ClinicIntakeOptions) {
    this.scheduler = options.scheduler ?? realScheduler;
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) {
      throw new IntakeError(
        'INTAKE_BAD_OPTIONS',
        `graceMs: expected 0 to ${MAX_GRACE_MS} ms (30 days), got ${graceMs}`,
      );
    }
    this.policy = { graceMs, maxEnvelopeBytes: options.maxEnvelopeBytes ?? MAX_ENVELOPE_BYTES };
    checkSharedSubscription(options);
    assertTimeZone(options.defaultTimeZone, 'defaultTimeZone');
    this.inventory = new GatewayInventory({
      caPem: options.gateways.caPem,
      clock: this.scheduler,
      ...(options.gateways.folder === undefined ? {} : { folder: options.gateways.folder }),
      ...(options.gateways.crlFile === undefined ? {} : { crlFile: options.gateways.crlFile }),
      ...(options.gateways.checkIntervalMs === undefined
        ? {}
        : { checkIntervalMs: options.gateways.checkIntervalMs }),
      onEvent: (event) => {
        if (event.type === 'crl-stale') this.stats.crlStale++;
        this.emit({ type: 'inventory', event });
      },
    });
    this.zones = new ZoneResolver(
      options.store,
      options.defaultTimeZone,
      options.assignmentCacheMs ?? 60_000,
      (gatewayId, timeZone) => this.emit({ type: 'bad-time-zone', gatewayId, timeZone }),
    );
    const group = options.group ?? {};
    const maxMessages = positive(group.maxMessages ?? 256, 'group.maxMessages');
    const maxItems = positive(group.maxItems ?? 5_000, 'group.maxItems');
    this.maxConcurrent = positive(group.maxConcurrent ?? 1, 'group.maxConcurrent');
    this.committer = new GroupCommitter<Entry>(
      {
        scheduler: this.scheduler,
        maxMessages,
        maxItems,
        maxDelayMs: group.maxDelayMs ?? 10,
        maxPendingMessages: positive(group.maxPendingMessages ?? 4 * maxMessages, 'group.maxPendingMessages'),
        maxPendingItems: positive(group.maxPendingItems ?? 4 * maxItems, 'group.maxPendingItems'),
        maxPendingBytes: positive(group.maxPendingBytes ?? 64 * 1024 * 1024, 'group.maxPendingBytes'),
        maxConcurrent: this.maxConcurrent,
        retryBaseMs: group.retryBaseMs ?? 100,
        retryCapMs: group.retryCapMs ?? 30_000,
        ...(options.random === undefined ? {} : { random: options.random }),
      },
      (entries) => this.commit(entries),
      {
        committed: (entries, elapsedMs) => this.acknowledge(entries, elapsedMs),
        failed: (error, attempt, retryInMs) => {
          this.stats.commitFailures++;
          this.emit({
            type: 'commit-failed',
            attempt,
            ...(retryInMs === undefined ? {} : { retryInMs }),
            message: error instanceof Error ? error.message : String(error),
          });
        },
      },
    );
  }

  /** Counts since start, for logs and metrics. */
  snapshot(): IntakeStats {
    return this.stats.snapshot(this.committer.backlog);
  }

  async start(): Promise<void> {
    const { broker, tls } = this.options;
    // Before anything is received: connections opened later would wait behind the first messages' signature
    // checks (PgClinicStore.prepareCommits).
    await this.options.store.prepareCommits?.(this.maxConcurrent);
    const v5 = this.options.protocolVersion === 5;
    const connectOptions: IClientOptions &
      Pick<ConnectionOptions, 'minVersion' | 'checkServerIdentity' | 'ciphers'> = {
      ...mqttsConnection(broker, tls),
      clientId: this.options.clientId,
      protocolVersion: v5 ? 5 : 4,
      // A persistent session: what the broker queued while the intake was away, and every message it had no
      // PUBACK for, is delivered when it is back (MQTT 3.1.1 section 3.1.2.4; MQTT 5 section 3.1.2.11.2).
      clean: false,
      ...(v5 ? { properties: { sessionExpiryInterval: 0xffffffff } } : {}),
      reconnectPeriod: this.options.reconnectPeriodMs ?? 1_000,
      manualConnect: true,
    };
    const client = mqtt.connect(connectOptions);
    holdPubacks(client, (packet, ack) => this.receive(packet, ack));
    let subscribed: ((error: Error | null) => void) | undefined;
    client.on('connect', (connack) => {
      this.emit({ type: 'connected', resumed: connack.sessionPresent });
      // At every connect: a resumed session has the subscriptions already (this is then a no-op), a new one
      // (the broker lost it) gets them again.
      client.subscribe([...this.filters()], { qos: 1 }, (error) => {
        if (error) this.emit({ type: 'mqtt-error', message: error.message });
        subscribed?.(error ?? null);
        subscribed = undefined;
      });
    });
    client.on('close', () => this.emit({ type: 'disconnected' }));
    client.on('error', (error) => this.emit({ type: 'mqtt-error', message: error.message }));
    this.client = client;
    // Started means subscribed: a message published after start() resolved reaches this session.
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => {
        subscribed = undefined;
        client.end(true);
        this.client = undefined;
        reject(error);
      };
      subscribed = (error) => (error ? fail(error) : resolve());
      client.once('error', (error) => {
        if (subscribed) fail(error);
      });
      client.connect();
    });
    this.inventory.refresh();
    this.scheduleQuarantineCheck(0);
  }

  /**
   * A round trip over the intake's own connection (an UNSUBSCRIBE of a filter it never subscribed and its
   * UNSUBACK): when it resolves, the broker has processed everything the intake sent before, PUBACKs included.
   */
  async roundTrip(): Promise<void> {
    if (!this.client) throw new Error('the intake is not started');
    await this.client.unsubscribeAsync('rpm/v1/intake-round-trip/cmd');
  }

  /**
   * Stops reading, commits what was received, sends those PUBACKs and disconnects. A commit failing now is not
   * retried: its messages were not acknowledged, so the broker delivers them again to the next intake.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.quarantineTimer !== undefined) this.scheduler.clearTimeout(this.quarantineTimer);
    await this.quarantineRun;
    await this.allJudged();
    await this.committer.drain();
    const client = this.client;
    this.client = undefined;
    await client?.endAsync();
  }

  private *filters(): Iterable<string> {
    const subscription = this.options.subscription;
    if (subscription && 'topics' in subscription) {
      yield* subscription.topics;
      return;
    }
    const kinds = subscription?.kinds ?? ['obs', 'alert', 'status'];
    for (const kind of kinds) {
      const filter = `rpm/v1/+/${kind}`;
      // MQTT 5 section 4.8.2: $share/{ShareName}/{filter}
      yield subscription ? `$share/${subscription.sharedGroup}/${filter}` : filter;
    }
  }

  /**
   * Called by mqtt.js's input loop for every PUBLISH; resolving lets it read the next packet. The signature is
   * checked on the thread pool (judgeAsync), so up to `MAX_JUDGING` messages are judged at once while the loop
   * reads on; each joins the committer when judged (in the order judged: receivers do not rely on order,
   * docs/wire-format.md). Beyond that many, or while the committer has no room for the ones judged, the loop
   * waits, TCP fills, and the broker keeps the rest. Nothing here acknowledges anything: a PUBACK is still sent
   * only by `acknowledge`, after the commit holding the message.
   */
  private receive(packet: IPublishPacket, ack: Ack | undefined): Promise<void> {
    if (this.stopping) {
      // Not acknowledged and never resolved: the input loop stops here and the broker keeps the message.
      return new Promise<void>(() => {});
    }
    const receivedAt = this.scheduler.now();
    const payload = new Uint8Array(packet.payload as Buffer);
    const topic = packet.topic;
    this.stats.received++;
    return this.admit(this.entry(topic, payload, receivedAt, ack));
  }

  /**
   * Hands an entry being judged to the committer as soon as it is judged. Resolves at once while fewer than
   * MAX_JUDGING entries are being judged and the committer has room, else when this one is in the committer
   * and there is room again; so at most MAX_JUDGING messages are held beyond the committer's own bounds.
   */
  private admit(judged: Promise<Entry>): Promise<void> {
    this.judging++;
    const added = judged.then((entry) => {
      this.judging--;
      if (this.judging === 0) for (const resolve of this.judgedWaiters.splice(0)) resolve();
      return this.committer.add(entry);
    });
    return this.judging < MAX_JUDGING && this.committer.hasRoom() ? Promise.resolve() : added;
  }

  /** Resolves when every message received so far is in the committer. */
  private allJudged(): Promise<void> {
    if (this.judging === 0) return Promise.resolve();
    return new Promise((resolve) => this.judgedWaiters.push(resolve));
  }

  private async entry(
    topic: string,
    payload: Uint8Array,
    receivedAt: number,
    ack: Ack | undefined,
    releases?: readonly number[],
  ): Promise<Entry> {
    const verdict = await judgeAsync(topic, payload, receivedAt, this.inventory, this.policy);
    const items = 'refused' in verdict ? 1 : verdict.kind === 'status' ? 1 : verdict.batch.items.length;
    return {
      topic,
      receivedAt,
      verdict,
      payload,
      ack,
      items: Math.max(items, 1),
      bytes: payload.length,
      ...(releases ? { releases } : {}),
    };
  }

  /** One group commit: everything the entries hold, in one transaction. */
  private async commit(entries: readonly Entry[]): Promise<void> {
    const localTimes = new Set<string>();
    for (const { verdict } of entries) {
      if ('refused' in verdict || verdict.kind === 'status') continue;
      if (verdict.batch.items.some((i) => i.type === 'measurement' && !hasOffset(i.measurement.time))) {
        localTimes.add(verdict.gatewayId);
      }
    }
    await this.zones.prepare(localTimes, this.scheduler.now());

    const measurements: IncomingMeasurement[] = [];
    const gaps: IncomingGap[] = [];
    const statuses: IncomingStatus[] = [];
    const rejections: IncomingRejection[] = [];
    for (const { verdict, topic, receivedAt, payload } of entries) {
      if ('refused' in verdict) {
        rejections.push({
          topic: topic.slice(0, 256),
          code: verdict.refused.code,
          message: verdict.refused.message,
          receivedAt,
          ...(verdict.gatewayId === undefined ? {} : { gatewayId: verdict.gatewayId }),
          ...(verdict.quarantine ? { payload } : {}),
        });
        continue;
      }
      if (verdict.kind === 'status') {
        statuses.push({ status: verdict.status, signerSerial: verdict.signer.serialNumber, receivedAt });
        continue;
      }
      const receipt: Receipt = {
        gatewayId: verdict.gatewayId,
        topic: verdict.kind,
        batchSeq: verdict.batch.seq,
        sentAt: verdict.batch.sentAt,
        signerSerial: verdict.signer.serialNumber,
        receivedAt,
      };
      for (const item of verdict.batch.items) {
        if (item.type === 'gap') {
          gaps.push({ gap: item, receipt });
          continue;
        }
        // The wire decoder checked the date-time syntax, so it resolves; the fallback keeps this total.
        const measuredAt = this.zones.resolve(verdict.gatewayId, item.measurement.time) ?? receivedAt;
        measurements.push({ measurement: item.measurement, measuredAt, receipt });
      }
    }
    const outcome = await this.options.store.commit({ measurements, gaps, statuses, rejections });
    this.stats.recordWrite(outcome, statuses.length, rejections);
    const released = entries.flatMap((e) => e.releases ?? []);
    if (released.length > 0) {
      try {
        await this.options.store.releaseQuarantined(released);
        this.stats.released += released.length;
        this.emit({ type: 'quarantine-released', count: released.length });
      } catch (error) {
        // Committed already: the rows stay quarantined and are judged again (their readings are duplicates).
        this.emit({ type: 'quarantine-failed', message: (error as Error).message });
      }
    }
  }

  private acknowledge(entries: readonly Entry[], elapsedMs: number): void {
    this.stats.recordCommit(entries.length, elapsedMs);
    for (const entry of entries) {
      if ('refused' in entry.verdict && !entry.releases) {
        const { code, message } = entry.verdict.refused;
        this.emit({
          type: 'rejected',
          code,
          message,
          ...(entry.verdict.gatewayId === undefined ? {} : { gatewayId: entry.verdict.gatewayId }),
        });
      }
      if (entry.releases) for (const id of entry.releases) this.quarantineInFlight.delete(id);
      if (!entry.ack) continue;
      if (entry.ack()) this.stats.acksSent++;
      else this.stats.acksDropped++;
    }
  }

  private scheduleQuarantineCheck(delayMs: number): void {
    if (this.stopping) return;
    this.quarantineTimer = this.scheduler.setTimeout(() => {
      this.quarantineTimer = undefined;
      this.inventory.refresh();
      if (this.inventory.version !== this.quarantineVersion && this.quarantineRun === undefined) {
        const version = this.inventory.version;
        this.quarantineRun = this.retryQuarantine()
          .then(
            () => {
              this.quarantineVersion = version;
            },
            (error: unknown) => this.emit({ type: 'quarantine-failed', message: (error as Error).message }),
          )
          .finally(() => {
            this.quarantineRun = undefined;
          });
      }
      this.scheduleQuarantineCheck(this.options.quarantineCheckMs ?? 5_000);
    }, delayMs);
  }

  /**
   * Judges quarantined messages again, each at its original time of receipt (expiry is judged at receipt). Those
   * whose signer is still unknown stay; the others are stored (or refused for good) and released.
   */
  private async retryQuarantine(): Promise<void> {
    const rows = await this.options.store.quarantined(this.options.quarantineBatch ?? 10_000);
    for (const row of rows) {
      if (this.stopping) return;
      if (row.payload === undefined || this.quarantineInFlight.has(row.id)) continue;
      const entry = await this.entry(row.topic, row.payload, row.receivedAt, undefined, [row.id]);
      if ('refused' in entry.verdict && entry.verdict.quarantine) continue;
      this.quarantineInFlight.add(row.id);
      await this.committer.add(entry);
    }
  }

  private emit(event: IntakeEvent): void {
    this.options.onEvent?.(event);
  }
}

/**
 * An MQTT 5 ShareName "MUST NOT contain the characters "/", "+" or "#"" (MQTT 5.0 section 4.8.2); this also
 * refuses white space and more than 64 characters, as the clinic configuration does (src/config/clinic/intake.ts).
 */
const SHARE_NAME = /^[^/+#\s]{1,64}$/;

/**
 * Refuses a shared subscription that a broker would take as something else. A "/" in the group moves the rest
 * into the topic filter (`$share/a/b/rpm/v1/+/obs` is group "a" on the filter `b/rpm/v1/+/obs`, which no gateway
 * publishes to); on MQTT 3.1.1 `$share/...` is an ordinary filter to brokers without the extension (the embedded
 * one included); no kinds means no subscription. In each case the intake would run subscribed to nothing
 * wherever the broker's ACL let the clinic read that filter, while hubs are PUBACKed.
 */
function checkSharedSubscription(options: ClinicIntakeOptions): void {
  const subscription = options.subscription;
  if (subscription === undefined || !('sharedGroup' in subscription)) return;
  if (!SHARE_NAME.test(subscription.sharedGroup)) {
    throw new IntakeError(
      'INTAKE_BAD_OPTIONS',
      'subscription.sharedGroup: expected 1 to 64 characters without "/", "+", "#" or white space (MQTT 5.0 section 4.8.2)',
    );
  }
  if (options.protocolVersion !== 5) {
    throw new IntakeError(
      'INTAKE_BAD_OPTIONS',
      'subscription.sharedGroup needs protocolVersion 5: shared subscriptions are MQTT 5 (section 4.8.2)',
    );
  }
  if (subscription.kinds !== undefined && subscription.kinds.length === 0) {
    throw new IntakeError(
      'INTAKE_BAD_OPTIONS',
      'subscription.kinds: expected at least one of obs, alert, status',
    );
  }
}

function positive(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new IntakeError(
      'INTAKE_BAD_OPTIONS',
      `${what}: expected a whole number of at least 1, got ${value}`,
    );
  }
  return value;
}
