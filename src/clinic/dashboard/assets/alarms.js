import { connectLive } from './live.js';

/**
 * The alarm lists (/alarms, /patients/:mrn/alarms) kept current from the live feed: after each `alarm` event
 * of a patient the list shows, and after each (re)connection (events missed while away), the page fetches the
 * list again from the server (the container's data-alarm-list URL) and puts it in place of the old one. The
 * server renders the list for the first load and for every update alike, so its order, words, late labels
 * (a late alarm shows the reading's own time) and acknowledge forms (with this session's CSRF token) have one
 * source. It is parsed with DOMParser, which runs no script, from this origin's own escaped rendering; no
 * value of an event reaches the page as HTML. The fetch does not count as activity for the session's idle
 * timeout (the server checks it without touching it). One fetch at a time; events during one cause one more.
 */
const current = () => document.querySelector('[data-alarm-list]');
const first = current();
const source = first?.dataset.alarmList;
const patient = first?.dataset.alarmPatient;

let fetching = false;
let again = false;

async function reload() {
  if (source === undefined) return;
  if (fetching) {
    again = true;
    return;
  }
  fetching = true;
  try {
    do {
      again = false;
      const response = await fetch(source, { headers: { accept: 'text/html' } });
      if (response.status === 401) {
        location.assign('/login');
        return;
      }
      if (!response.ok) continue;
      const fresh = new DOMParser()
        .parseFromString(await response.text(), 'text/html')
        .querySelector('[data-alarm-list]');
      const old = current();
      if (fresh === null || old === null) continue;
      fresh.classList.toggle('stale', !live.isLive());
      old.replaceWith(document.adoptNode(fresh));
      // For tests: when the list was last put in place.
      document.body.dataset.alarmListLoaded = String(Date.now());
    } while (again);
  } finally {
    fetching = false;
  }
}

const live = connectLive({
  onOpen: () => {
    void reload();
  },
  onAlarm: (event) => {
    if (patient === undefined || event.mrn === patient) void reload();
  },
});
