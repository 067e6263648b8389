import type { ConnectionOptions } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { mqttsConnection, type TlsMaterial } from '../pki/index.js';
import type { Lane, Outbox, OutboxRecord } from '../store/outbox.js';
import { OrderedRing } from '../util/ordered-ring.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../util/scheduler.js';
import { Backoff, type BackoffPolicy, DEFAULT_BACKOFF } from './backoff.js';
import { OutgoingPackets } from './outgoing-packets.js';

/** Builds the signed payloads (see src/wire): the uplink itself never looks inside them. */
export interface UplinkCodec {
  batch(records: readonly OutboxRecord[], sequence: number, sentAt: number): Uint8Array;
  status(state: 'online' | 'offline', sentAt: number): Uint8Array;
}

export interface UplinkTopics {
  readonly obs: string;
  readonly alert: string;
  readonly status: string;
  readonly cmd: string;
  readonly cmdResult: string;
}

/** One broker endpoint; `servername` is the name its certificate must carry when it is not `host`. */
export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
  readonly servername?: string;
}

export type UplinkEvent =
  | { readonly type: 'connected'; readonly broker: string; readonly attempt: number }
  | {
      readonly type: 'connect-failed';
      readonly broker: string;
      readonly error: string;
      readonly retryInMs: number;
      /** The broker the next attempt goes to (the next in the list after a failure). */
      readonly next: string;
    }
  | {
      readonly type: 'disconnected';
      readonly broker: string;
      readonly reason: string;
      readonly released: number;
      readonly retryInMs: number;
      readonly next: string;
    }
  | { readonly type: 'batch-acked'; readonly lane: Lane; readonly records: number; readonly bytes: number }
  | { readonly type: 'command'; readonly topic: string; readonly bytes: number }
  /** Records that could not be encoded were moved to the outbox quarantine (see Outbox.quarantine). */
  | { readonly type: 'quarantined'; readonly records: number; readonly error: string }
  /** A batch could not be built for a reason not tied to a record (e.g. the signing key); sending paused. */
  | { readonly type: 'batch-failed'; readonly error: string }
  /**
   * stop() finished. `graceful`: the offline status was acknowledged and the connection ended with a
   * DISCONNECT, so the broker discarded the Last Will; otherwise the broker publishes the Will.
   */
  | { readonly type: 'stopped'; readonly graceful: boolean };

export interface UplinkOptions {
  readonly gatewayId: string;
  /**
   * The brokers, in order of preference: the first is tried first; after a failed attempt or a lost connection
   * the next one is, wrapping around, each attempt after the backoff delay. At least one.
   */
  readonly brokers: readonly BrokerAddress[];
  /** 4 = MQTT 3.1.1, 5 = MQTT 5. */
  readonly protocolVersion?: 4 | 5;
  /** Loads CA, certificate and key before every connection attempt. */
  readonly tls: () => Promise<TlsMaterial>;
  readonly outbox: Outbox;
  readonly codec: UplinkCodec;
  readonly topics: UplinkTopics;
  /**
   * Time and timers (the reconnect backoff, the offline-status deadline at stop). Default: real time; a
   * VirtualScheduler runs the reconnect schedule in virtual time. mqtt.js's own connect timeout and keepalive
   * stay on real time: they pace a real socket.
   */
  readonly scheduler?: Scheduler;
  readonly random?: () => number;
  readonly backoff?: BackoffPolicy;
  /** Batches awaiting PUBACK at once. */
  readonly window?: number;
  readonly backlogBatchBytes?: number;
  readonly liveBatchBytes?: number;
  readonly maxBatchRows?: number;
  readonly connectTimeoutMs?: number;
  readonly keepaliveSeconds?: number;
  readonly onEvent?: (event: UplinkEvent) => void;
  /** Downlink messages on the command topic (verified by the caller, see src/wire/commands.ts). */
  readonly onCommand?: (payload: Uint8Array, reply: (result: Uint8Array) => Promise<void>) => void;
}

const LANE_ORDER: readonly Lane[] = ['alert', 'live', 'backlog'];
const URGENT_LANES: readonly Lane[] = ['alert', 'live'];

interface Connection {
  readonly client: MqttClient;
  readonly epoch: number;
  readonly broker: BrokerAddress;
  readonly since: number;
  /**
   * The leases awaiting their PUBACK, by id (the value unused). A ring, not a Set: the connection lives for
   * hours and every batch adds and deletes one, which in a long-lived Set makes old-generation garbage
   * (src/util/ordered-ring.ts).
   */
  readonly leases: OrderedRing<true>;
  inFlight: number;
}

/**
 * The uplink: drains the outbox to the clinic broker over mutual-TLS MQTT.
 *
 * - The outbox is the source of truth: a batch is leased, published with QoS 1, and deleted only when its
 *   PUBACK arrives. When the connection drops, every lease of that connection is returned and the batch goes
 *   out again after the reconnect (the clinic de-duplicates by measurement id). Nothing is kept in mqtt.js's
 *   in-memory queue, which is lost on restart (mqttjs/MQTT.js#398, #607).
 * - Brokers are an ordered failover list: a failed attempt or a lost connection moves to the next broker (wrapping
 *   around), after the same backoff delay, so a clinic's standby broker takes over while the first is down.
 * - Each connection is a new mqtt.js client made from TLS material loaded afresh, so a renewed certificate is
 *   used at the next reconnect without a restart (mqttjs/MQTT.js#916). mqtt.js's fixed-period reconnect is
 *   off; reconnects use exponential backoff with full jitter (backoff.ts).
 * - Adaptive batching: the pump leases lane by lane (alert, live, backlog). A reading appended to an idle
 *   outbox goes out at once in a batch of its own; a backlog drains in batches of up to `backlogBatchBytes`,
 *   with up to `window` batches awaiting PUBACK at a time.
 * - Live readings leave while their append commits: the pump runs for the alert and live lanes inside the
 *   append transaction (Outbox.onStaged), so the trip to the broker overlaps the fsync; the rows are deleted
 *   only on PUBACK, which is handled after the commit. Backlog batches are only leased from committed rows.
 * - TLS: TLS 1.2 minimum, the configured CA as the only trust anchor, certificate and host name
 *   verification always on. There is deliberately no option to turn verification off.
 */
export class Uplink {
  private readonly scheduler: Scheduler;
  private readonly backoff: Backoff;
  private connection: Connection | undefined;
  private epoch = 0;
  private running = false;
  private pumping = false;
  private reconnectTimer: TimerHandle | undefined;
  private unsubscribe: (() => void)[] = [];
  private attempts = 0;
  private pendingAcks: number[] = []; // lease ids
  private ackScheduled = false;
  /** Index into `brokers` of the broker the next attempt goes to. */
  private brokerIndex = 0;

  constructor(private readonly options: UplinkOptions) {
    if (options.brokers.length === 0) throw new RangeError('the uplink needs at least one broker');
    this.scheduler = options.scheduler ?? realScheduler;
    this.backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF, options.random ?? Math.random);
  }

  /** Starts connecting (in the background) and draining; resolves at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = [
      this.options.outbox.onCommitted(() => this.pump()),
      this.options.outbox.onStaged((lanes) => {
        if (lanes.has('alert') || lanes.has('live')) this.pump(URGENT_LANES);
      }),
    ];
    void this.connect();
  }

  /** Publishes the offline status, disconnects cleanly, and returns every lease to the outbox. */
  async stop(): Promise<void> {
    this.running = false;
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.unsubscribe = [];
    if (this.reconnectTimer !== undefined) this.scheduler.clearTimeout(this.reconnectTimer);
    const connection = this.connection;
    if (!connection) return;
    this.connection = undefined;
    let offlineDelivered = false;
    try {
      const offline = this.options.codec.status('offline', this.scheduler.now());
      const acked = await withTimeout(
        connection.client
          .publishAsync(this.options.topics.status, Buffer.from(offline), { qos: 1, retain: true })
          .then(() => true),
        2_000,
        this.scheduler,
      );
      offlineDelivered = acked === true;
    } catch {
      // best effort: the broker publishes the Last Will instead
    }
    // With the offline status delivered, end with a DISCONNECT so the broker discards the Last Will (MQTT
    // 3.1.1 section 3.14.4, MQTT 5 section 3.14.4 with reason 0): otherwise the Will, signed at connect time
    // with that moment's backlog counts, replaces the retained status just sent. mqtt.js's forced end drops the
    // socket without a DISCONNECT, so it is kept for when the status did not get through (the Will is right
    // then) or the broker does not let the connection end in time.
    const ended = offlineDelivered
      ? await withTimeout(
          connection.client.endAsync(false).then(() => true),
          2_000,
          this.scheduler,
        ).catch(() => undefined)
      : undefined;
    if (ended !== true) await connection.client.endAsync(true).catch(() => undefined);
    this.options.onEvent?.({ type: 'stopped', graceful: ended === true });
    this.flushAcks();
    this.releaseLeases(connection);
  }

  get connected(): boolean {
    return this.connection !== undefined;
  }

  /** The broker connected to ("host:port"), or undefined while not connected. */
  get broker(): string | undefined {
    return this.connection ? brokerLabel(this.connection.broker) : undefined;
  }

  /** After a failure: the next broker in the list, wrapping around (ordered failover). */
  private failOver(): string {
    this.brokerIndex = (this.brokerIndex + 1) % this.options.brokers.length;
    return brokerLabel(this.options.brokers[this.brokerIndex] as BrokerAddress);
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    this.attempts++;
    const { topics } = this.options;
    const broker = this.options.brokers[this.brokerIndex] as BrokerAddress;
    let client: MqttClient | undefined;
    try {
      const material = await this.options.tls();
      const will = this.options.codec.status('offline', this.scheduler.now());
      // mqtt.js hands every option to tls.connect(); its type just does not list these two.
      const options: IClientOptions &
        Pick<ConnectionOptions, 'minVersion' | 'checkServerIdentity' | 'ciphers'> = {
        ...mqttsConnection(broker, material),
        protocolVersion: this.options.protocolVersion ?? 4,
        clientId: this.options.gatewayId,
        clean: false,
        reconnectPeriod: 0,
        connectTimeout: this.options.connectTimeoutMs ?? 15_000,
        keepalive: this.options.keepaliveSeconds ?? 30,
        will: { topic: topics.status, payload: Buffer.from(will), qos: 1, retain: true },
        // Not mqtt.js's Map: its table is reallocated in V8's old generation as ids come and go (outgoing-packets.ts).
        outgoingStore: new OutgoingPackets(),
        ...(this.options.protocolVersion === 5
          ? { properties: { sessionExpiryInterval: 7 * 24 * 3600 } }
          : {}),
      };
      client = await mqtt.connectAsync(options);
    } catch (error) {
      client?.end(true);
      const retryInMs = this.backoff.next();
      const next = this.failOver();
      this.options.onEvent?.({
        type: 'connect-failed',
        broker: brokerLabel(broker),
        error: describe(error),
        retryInMs,
        next,
      });
      this.scheduleReconnect(retryInMs);
      return;
    }
    if (!this.running) {
      client.end(true);
      return;
    }
    const connection: Connection = {
      client,
      epoch: ++this.epoch,
      broker,
      since: this.scheduler.now(),
      leases: new OrderedRing<true>(),
      inFlight: 0,
    };
    this.connection = connection;
    client.on('close', () => this.lost(connection, 'connection closed'));
    client.on('error', (error) => this.lost(connection, describe(error)));
    client.on('message', (topic, payload) => {
      if (topic !== topics.cmd || !this.options.onCommand) return;
      this.options.onEvent?.({ type: 'command', topic, bytes: payload.length });
      this.options.onCommand(new Uint8Array(payload), async (result) => {
        await client.publishAsync(topics.cmdResult, Buffer.from(result), { qos: 1 });
      });
    });
    this.options.onEvent?.({
      type: 'connected',
      broker: brokerLabel(broker),
      attempt: this.attempts,
    });
    this.attempts = 0;
    try {
      if (this.options.onCommand) await client.subscribeAsync(topics.cmd, { qos: 1 });
      const online = this.options.codec.status('online', this.scheduler.now());
      await client.publishAsync(topics.status, Buffer.from(online), { qos: 1, retain: true });
    } catch (error) {
      this.lost(connection, describe(error));
      return;
    }
    this.pump();
  }

  private scheduleReconnect(delayMs: number): void {
    if (!this.running) return;
    if (this.reconnectTimer !== undefined) this.scheduler.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.scheduler.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delayMs);
  }

  private lost(connection: Connection, reason: string): void {
    if (this.connection !== connection) return; // already handled
    this.connection = undefined;
    connection.client.removeAllListeners('close');
    connection.client.end(true);
    const released = this.releaseLeases(connection);
    this.backoff.connectionEnded(this.scheduler.now() - connection.since);
    const retryInMs = this.backoff.next();
    const next = this.failOver();
    this.options.onEvent?.({
      type: 'disconnected',
      broker: brokerLabel(connection.broker),
      reason,
      released,
      retryInMs,
      next,
    });
    this.scheduleReconnect(retryInMs);
  }

  /**
   * PUBACKs that arrive in the same event-loop turn are deleted in one transaction (one fsync), as appends are
   * committed together. A PUBACK is never lost by waiting: the rows stay until this commit, and a crash before
   * it only means they are sent again.
   */
  private acknowledge(leaseId: number): void {
    this.pendingAcks.push(leaseId);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => this.flushAcks());
  }

  private flushAcks(): void {
    this.ackScheduled = false;
    const batch = this.pendingAcks;
    this.pendingAcks = [];
    if (batch.length === 0) return;
    try {
      this.options.outbox.ackLeases(batch);
    } catch {
      // the store refused (closed, disk error): the rows stay and go out again; nothing is lost
    }
  }

  private releaseLeases(connection: Connection): number {
    let released = 0;
    for (const lease of connection.leases.keyList()) {
      try {
        released += this.options.outbox.release(lease);
      } catch {
        // the outbox is closed (shutdown): its leases are returned when it opens again
      }
    }
    connection.leases.clear();
    return released;
  }

  /** Fills the PUBACK window from the outbox, lane by lane. Re-entrant calls coalesce. */
  private pump(lanes: readonly Lane[] = LANE_ORDER): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const window = this.options.window ?? 8;
      for (;;) {
        const connection = this.connection;
        if (!connection || connection.inFlight >= window) return;
        if (!this.sendNextBatch(connection, lanes)) return;
      }
    } finally {
      this.pumping = false;
    }
  }

  private sendNextBatch(connection: Connection, lanes: readonly Lane[]): boolean {
    const { outbox, codec, topics } = this.options;
    for (const lane of lanes) {
      const maxBytes =
        lane === 'backlog'
          ? (this.options.backlogBatchBytes ?? 64 * 1024)
          : (this.options.liveBatchBytes ?? 16 * 1024);
      const lease = outbox.lease({ lane, maxRows: this.options.maxBatchRows ?? 1_000, maxBytes });
      if (lease.records.length === 0) continue;
      connection.leases.set(lease.leaseId, true);
      connection.inFlight++;
      let payload: Uint8Array;
      try {
        payload = codec.batch(lease.records, outbox.nextBatchSequence(), this.scheduler.now());
      } catch (error) {
        connection.inFlight--;
        connection.leases.delete(lease.leaseId);
        return this.setAside(lease.leaseId, lease.records, error);
      }
      const topic = lane === 'alert' ? topics.alert : topics.obs;
      connection.client
        .publishAsync(topic, Buffer.from(payload), { qos: 1 })
        .then(() => {
          // A PUBACK that arrives after the connection was replaced belongs to released rows, which will be
          // sent again; acknowledging them now could delete rows another batch has leased.
          if (this.connection !== connection) return;
          connection.leases.delete(lease.leaseId);
          connection.inFlight--;
          this.acknowledge(lease.leaseId);
          this.options.onEvent?.({
            type: 'batch-acked',
            lane,
            records: lease.records.length,
            bytes: payload.length,
          });
          this.pump();
        })
        .catch((error: unknown) => this.lost(connection, `publish failed: ${describe(error)}`));
      sendNow(connection.client);
      return true;
    }
    return false;
  }

  /**
   * A batch that does not encode must not block the queue (it would be leased again and again): find the
   * records that fail on their own, quarantine them (kept, not deleted), and return the rest to pending.
   * True when the pump may go on.
   */
  private setAside(leaseId: number, records: readonly OutboxRecord[], error: unknown): boolean {
    const { outbox, codec } = this.options;
    try {
      // A failure that is not about any record (no signing key, credentials being renewed): an empty batch fails
      // the same way. Then every record is innocent: pause instead of quarantining the whole outbox.
      codec.batch([], 0, this.scheduler.now());
    } catch {
      outbox.release(leaseId);
      this.options.onEvent?.({ type: 'batch-failed', error: describe(error) });
      return false;
    }
    const poisoned = records.filter((record) => {
      try {
        codec.batch([record], 0, this.scheduler.now());
        return false;
      } catch {
        return true;
      }
    });
    outbox.release(leaseId);
    if (poisoned.length === 0) {
      this.options.onEvent?.({ type: 'batch-failed', error: describe(error) });
      return false;
    }
    const moved = outbox.quarantine(
      poisoned.map((r) => r.seq),
      describe(error).slice(0, 200),
    );
    this.options.onEvent?.({ type: 'quarantined', records: moved, error: describe(error) });
    return true;
  }
}

/**
 * mqtt-packet corks the socket while it writes a packet and uncorks it on process.nextTick (writeToStream.js),
 * which runs only after the current synchronous work. For a live batch published inside its append transaction
 * that work is the commit and its fsync, so the packet would wait for the disk after all. Uncorking now sends it
 * before the fsync starts; mqtt-packet's own uncork then finds nothing corked and does nothing.
 */
function sendNow(client: MqttClient): void {
  const stream = client.stream as { writableCorked?: number; uncork?: () => void } | undefined;
  while (stream?.uncork && (stream.writableCorked ?? 0) > 0) stream.uncork();
}

/** How a broker is named in events and logs: "host:port", an IPv6 host in brackets (RFC 3986 section 3.2.2). */
export function brokerLabel(broker: BrokerAddress): string {
  return broker.host.includes(':') ? `[${broker.host}]:${broker.port}` : `${broker.host}:${broker.port}`;
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  const message = (error as Error)?.message ?? String(error);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, scheduler: Scheduler): Promise<T | undefined> {
  let timer: TimerHandle | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = scheduler.setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    scheduler.clearTimeout(timer);
  }
}
