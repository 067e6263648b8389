/**
 * The states of a device session and every transition between them: the documented diagram, as data, so a
 * test can check that the session takes no other transition and that the tests walk every one of them.
 *
 *   idle -> connecting -> [refreshing-services -> connecting] -> [bonding] -> subscribing
 *        -> [fetching-stored] -> syncing-time -> streaming
 *   lost -> backoff -> [discovered] -> connecting
 *
 *   - connecting: connect, then service discovery. A discovery that looks stale (src/session/gatt-check.ts)
 *     sends an unbonded device through refreshing-services once (the backend's cached attributes are dropped
 *     and the session connects again) and a bonded one to needs-pairing (refreshing would remove its bond).
 *   - bonding: only for a device that needs a bond and has none yet.
 *   - subscribing: reads (features, the device clock), then notifications/indications and driver setup writes.
 *   - fetching-stored: a RACP download (glucose), or the burst of stored records a cuff or scale indicates
 *     right after its CCCD is written (src/session/stored-replay.ts). It comes before syncing-time on purpose:
 *     stored records carry the device clock as it is now (read at connect); a clock written before they are
 *     all delivered would leave a record cut off by a dropped link stamped by a clock that no longer exists.
 *   - syncing-time: writes Current Time, or decides to measure the clock offset instead.
 *   - lost: the link ended while connected (from any state that holds a link); always followed by backoff.
 *   - backoff: waits per error class (src/session/retry-policy.ts), then connects again. With a presence
 *     monitor (src/session/presence.ts) and a device that was not there (not found, gone, lost, unanswered
 *     connect), it also waits for the device's advertisement, and whichever comes first ends the wait.
 *   - discovered: the device's advertisement ended the backoff (a sleeping cuff or scale woke up and advertises
 *     for a short while only); the session connects at once.
 *   - needs-pairing: authentication failed, or a bonded device's cache is stale; waits for start().
 *   - stopped: stop() was called; start() begins again.
 */
export type SessionState =
  | 'idle'
  | 'connecting'
  | 'refreshing-services'
  | 'bonding'
  | 'subscribing'
  | 'syncing-time'
  | 'fetching-stored'
  | 'streaming'
  | 'lost'
  | 'backoff'
  | 'discovered'
  | 'needs-pairing'
  | 'stopped';

/** Every allowed transition, as `from -> to` pairs. */
export const SESSION_TRANSITIONS: ReadonlyMap<SessionState, readonly SessionState[]> = new Map<
  SessionState,
  readonly SessionState[]
>([
  ['idle', ['connecting', 'stopped']],
  [
    'connecting',
    ['refreshing-services', 'bonding', 'subscribing', 'needs-pairing', 'backoff', 'lost', 'stopped'],
  ],
  ['refreshing-services', ['connecting', 'backoff', 'stopped']],
  ['bonding', ['subscribing', 'needs-pairing', 'backoff', 'lost', 'stopped']],
  ['subscribing', ['fetching-stored', 'syncing-time', 'needs-pairing', 'backoff', 'lost', 'stopped']],
  ['fetching-stored', ['syncing-time', 'backoff', 'lost', 'stopped']],
  ['syncing-time', ['streaming', 'backoff', 'lost', 'stopped']],
  ['streaming', ['lost', 'stopped']],
  ['lost', ['backoff']],
  ['backoff', ['connecting', 'discovered', 'stopped']],
  ['discovered', ['connecting', 'stopped']],
  ['needs-pairing', ['connecting', 'stopped']],
  ['stopped', ['connecting']],
]);

/** Whether `from -> to` is in the diagram. */
export function isSessionTransition(from: SessionState, to: SessionState): boolean {
  return SESSION_TRANSITIONS.get(from)?.includes(to) ?? false;
}

/** Every transition as "from->to" strings (for tests that check coverage). */
export function allSessionTransitions(): string[] {
  return [...SESSION_TRANSITIONS].flatMap(([from, targets]) => targets.map((to) => `${from}->${to}`));
}
