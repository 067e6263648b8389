/**
 * The page's live connection: Server-Sent Events from /api/live (HTML Standard section 9.2, EventSource).
 * The page shows its own state, so that "no alarm" never looks like "not connected":
 *  - live: an event (a reading or the server's heartbeat) arrived within dashboard.staleAfter;
 *  - stale: the connection dropped, or nothing arrived for staleAfter; every element marked
 *    [data-stale-watch] gets the class "stale" and the banner says why, until events arrive again.
 * After every (re)connection the page reloads its data (onOpen), so readings committed while it was away are
 * not missing. Times are the browser's clock.
 */
const CHECK_EVERY_MS = 100;

export function connectLive({ onReading = () => {}, onOpen, onAlarm = () => {} }) {
  const body = document.body;
  const banner = document.getElementById('live-state');
  const staleAfter = Number(body.dataset.staleAfter) || 15_000;
  let lastHeard = 0;
  let state = 'connecting';

  const show = (next, text) => {
    if (state !== next) {
      state = next;
      body.dataset.live = next;
      body.dataset.liveSince = String(Date.now());
      for (const el of document.querySelectorAll('[data-stale-watch]')) {
        el.classList.toggle('stale', next !== 'live');
      }
    }
    if (banner && banner.textContent !== text) banner.textContent = text;
  };
  const heard = () => {
    lastHeard = Date.now();
    body.dataset.lastHeard = String(lastHeard);
    if (state !== 'live') {
      show('live', 'Live: values update as readings arrive.');
      onOpen();
    }
  };

  const source = new EventSource('/api/live');
  source.addEventListener('heartbeat', heard);
  source.addEventListener('reading', (event) => {
    const receivedAt = Date.now();
    const data = JSON.parse(event.data);
    // For tests and for anyone checking the delay: when the last reading event arrived, and its commit time.
    body.dataset.lastReadingAt = String(receivedAt);
    body.dataset.lastReadingCommittedAt = String(data.committedAt);
    body.dataset.lastReadingIds = data.points.map((p) => p.id).join(' ');
    heard();
    onReading(data);
  });
  // One stored change of an alarm of a patient this user may see: { mrn, change, alarm, counts }.
  source.addEventListener('alarm', (event) => {
    const data = JSON.parse(event.data);
    // For tests: the last alarm change received, and when.
    body.dataset.lastAlarmAt = String(Date.now());
    body.dataset.lastAlarm = `${data.alarm.id} ${data.change}`;
    heard();
    onAlarm(data);
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      show('stale', 'NOT LIVE: the live feed was refused (your login may have ended). Reload the page.');
    } else {
      show('stale', 'NOT LIVE: the live feed was lost; reconnecting… Values shown may be out of date.');
    }
  });
  setInterval(() => {
    if (state === 'live' && Date.now() - lastHeard > staleAfter) {
      show(
        'stale',
        `NOT LIVE: nothing heard from the live feed for over ${staleAfter / 1000} s. Values shown may be out of date.`,
      );
    }
  }, CHECK_EVERY_MS);
  show('connecting', 'Connecting to the live feed…');
  // Mark the elements present now; pages that add elements later set the class from isLive().
  for (const el of document.querySelectorAll('[data-stale-watch]')) el.classList.add('stale');
  return { isLive: () => state === 'live' };
}
