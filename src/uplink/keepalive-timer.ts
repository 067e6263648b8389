import type { IClientOptions } from 'mqtt';

/** The `{ set, clear }` pair mqtt.js accepts as `timerVariant` (mqtt.js 5 `lib/get-timer.ts`, `Timer`). */
export type MqttTimer = Exclude<NonNullable<IClientOptions['timerVariant']>, string>;

/**
 * The keepalive timer for one mqtt.js client, on ONE Node interval that is refreshed instead of replaced.
 *
 * mqtt.js reschedules its keepalive on every PUBACK it receives (`reschedulePings`, on by default, and right:
 * traffic proves the connection alive, MQTT 3.1.1 section 3.1.2.10): `KeepaliveManager.reschedule()` calls
 * `clear()` then `set()`. With Node's own timers that is a new `Timeout` per acknowledged batch, about one per
 * reading in the live hub, each living until the next PUBACK (around a second) and so often surviving young
 * collections into V8's old generation, where it is garbage that only a major collection frees: the growth
 * docs/runtime.md ("Memory") follows. Being the only timer of its duration, each clear also empties Node's
 * list for that duration, which Node deletes and the next `set` makes again (`lib/internal/timers.js`).
 *
 * Here `clear()` only detaches the callback and unrefs the interval (so a cleared timer never holds the process
 * open), and `set()` with the same period re-arms the same interval with `Timeout.refresh()`, which moves it to
 * the end of its list with a new start time, as a fresh `setInterval` would have (Node docs, timers,
 * `timeout.refresh()`). An interval left cleared fires once more with no callback and is then stopped for good.
 */
export function refreshingTimer(): MqttTimer {
  let interval: NodeJS.Timeout | undefined;
  let periodMs = 0;
  let callback: (() => void) | undefined;
  let current = 0;

  const run = () => {
    if (callback) {
      callback();
      return;
    }
    clearInterval(interval);
    interval = undefined;
  };

  return {
    set: (fn: () => void, ms = 0) => {
      callback = fn;
      if (interval !== undefined && periodMs === ms) {
        interval.ref();
        interval.refresh();
      } else {
        clearInterval(interval);
        periodMs = ms;
        interval = setInterval(run, ms);
      }
      current++;
      return current;
    },
    clear: (id: number) => {
      if (id !== current) return; // an older timer: already replaced by a later set()
      callback = undefined;
      interval?.unref();
    },
  };
}
