import pg from 'pg';
import type { CommittedEvent } from '../clinic-store.js';

/**
 * The live feed across processes: LISTEN/NOTIFY (PostgreSQL docs, NOTIFY and LISTEN).
 *
 * The committing transaction sends NOTIFY with the ids it inserted. PostgreSQL delivers a notification only
 * when (and if) that transaction commits, so a listener never hears of a reading that was rolled back; it then
 * reads the committed rows by id. A payload must be shorter than 8000 bytes, so the ids of a large commit go
 * in several notifications (chunks), each a complete list of some of the commit's rows; a listener reports
 * each chunk as one event. Notifications of one transaction arrive in the order sent, and those of different
 * transactions in commit order.
 *
 * Each subscription holds its own connection (LISTEN belongs to a session; a pooled connection would be
 * handed to other queries). If that connection drops, the subscription reconnects; commits made while it was
 * away are not replayed (the feed is for live display: a dashboard reloads from the tables after a gap, which
 * `onError` tells it about).
 */
export const FEED_CHANNEL = 'rpm_clinic_committed';

/** Comfortably below the 8000-byte payload limit, leaving room for the JSON framing. */
const MAX_PAYLOAD = 7900;

export interface CommittedIds {
  /** Measurement ids. */
  readonly m: readonly string[];
  /** Gap ids. */
  readonly g: readonly string[];
  /** Status row ids. */
  readonly s: readonly number[];
}

/** The NOTIFY payloads for one commit: JSON, each under the limit. Ids are ASCII (wire format), so length = bytes. */
export function notificationPayloads(ids: CommittedIds): string[] {
  const payloads: string[] = [];
  let chunk = { m: [] as string[], g: [] as string[], s: [] as number[] };
  let size = JSON.stringify(chunk).length;
  const add = <K extends 'm' | 'g' | 's'>(key: K, id: (typeof chunk)[K][number]) => {
    const cost = JSON.stringify(id).length + 1;
    if (size + cost > MAX_PAYLOAD && size > JSON.stringify({ m: [], g: [], s: [] }).length) {
      payloads.push(JSON.stringify(chunk));
      chunk = { m: [], g: [], s: [] };
      size = JSON.stringify(chunk).length;
    }
    (chunk[key] as (typeof id)[]).push(id);
    size += cost;
  };
  for (const id of ids.m) add('m', id);
  for (const id of ids.g) add('g', id);
  for (const id of ids.s) add('s', id);
  if (chunk.m.length + chunk.g.length + chunk.s.length > 0) payloads.push(JSON.stringify(chunk));
  return payloads;
}

/** Reads a payload back; anything else on the channel (sent by hand, by another tool) is ignored. */
export function parsePayload(payload: string | undefined): CommittedIds | undefined {
  if (payload === undefined) return undefined;
  try {
    const value = JSON.parse(payload) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { m, g, s } = value as Record<string, unknown>;
    const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((i) => typeof i === 'string');
    const numbers = (x: unknown): x is number[] =>
      Array.isArray(x) && x.every((i) => Number.isSafeInteger(i));
    if (!strings(m) || !strings(g) || !numbers(s)) return undefined;
    return { m, g, s };
  } catch {
    return undefined;
  }
}

export interface FeedOptions {
  readonly connection: pg.ClientConfig;
  /** Reads the committed rows a notification names. */
  readonly fetch: (ids: CommittedIds) => Promise<CommittedEvent>;
  readonly listener: (event: CommittedEvent) => void;
  /** The feed's connection failed, or the rows of a notification could not be read. */
  readonly onError: (error: unknown) => void;
  /** The listener threw (its own bug: the commit stands, and later events are still told). */
  readonly onListenerError: (error: unknown) => void;
  /** Waits between reconnection attempts. */
  readonly reconnectDelayMs?: number;
}

/** Listens until the returned function is called. Resolves once the first LISTEN is in place. */
export function listen(options: FeedOptions): Promise<() => Promise<void>> {
  return listenChannel({ ...options, channel: FEED_CHANNEL, parse: parsePayload });
}

/**
 * One channel's notifications, as the clinic record's feed above and the alarms' feed
 * (src/clinic/alarms/postgres/pg-alarm-store.ts) use them: each payload parsed (anything unreadable on the
 * channel is ignored), the rows it names fetched, and the listener told, one notification at a time in
 * arrival order, on a connection of its own that reconnects when it drops.
 */
export interface ChannelOptions<P, E> {
  readonly connection: pg.ClientConfig;
  /** A constant channel name (it is an identifier in LISTEN). */
  readonly channel: string;
  readonly parse: (payload: string | undefined) => P | undefined;
  readonly fetch: (payload: P) => Promise<E>;
  readonly listener: (event: E) => void;
  readonly onError: (error: unknown) => void;
  readonly onListenerError: (error: unknown) => void;
  readonly reconnectDelayMs?: number;
}

export async function listenChannel<P, E>(options: ChannelOptions<P, E>): Promise<() => Promise<void>> {
  let stopped = false;
  let client: pg.Client | undefined;
  let delivering: Promise<void> = Promise.resolve();
  let retry: NodeJS.Timeout | undefined;

  const onNotification = (message: pg.Notification) => {
    if (message.channel !== options.channel) return;
    const parsed = options.parse(message.payload);
    if (parsed === undefined) return;
    // One at a time, in arrival order: events reach the listener in commit order.
    delivering = delivering.then(async () => {
      if (stopped) return;
      let event: E;
      try {
        event = await options.fetch(parsed);
      } catch (error) {
        options.onError(error);
        return;
      }
      if (stopped) return;
      try {
        options.listener(event);
      } catch (error) {
        options.onListenerError(error);
      }
    });
  };

  const connect = async (): Promise<void> => {
    const next = new pg.Client(options.connection);
    next.on('notification', onNotification);
    next.on('error', (error) => {
      if (stopped) return;
      options.onError(error);
      reconnectSoon(next);
    });
    next.on('end', () => reconnectSoon(next));
    await next.connect();
    await next.query(`LISTEN ${pg.escapeIdentifier(options.channel)}`);
    if (stopped) {
      await next.end();
      return;
    }
    client = next;
  };

  const reconnectSoon = (lost: pg.Client) => {
    if (stopped || client !== lost) return;
    client = undefined;
    lost.end().catch(() => undefined);
    scheduleConnect();
  };

  const scheduleConnect = () => {
    retry = setTimeout(() => {
      retry = undefined;
      if (stopped) return;
      connect().catch((error) => {
        options.onError(error);
        if (!stopped) scheduleConnect();
      });
    }, options.reconnectDelayMs ?? 1000);
    retry.unref();
  };

  await connect();
  return async () => {
    stopped = true;
    if (retry !== undefined) clearTimeout(retry);
    const current = client;
    client = undefined;
    await current?.end().catch(() => undefined);
    await delivering;
  };
}
