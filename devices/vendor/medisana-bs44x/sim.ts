import { defineDeviceModel, type ServiceDefinition } from 'rpm-gateway/sdk/sim';
import { EPOCH_2010_S, encodeBody, encodePerson, encodeWeight } from './medisana-protocol.js';

const SERVICE = '78b2';
const WEIGHT = '8a21';
const BODY = '8a22';
const COMMAND = '8a81';
const PERSON = '8a82';
/** keptenkurk/BS440: the scale keeps the last 30 weighings per person and sends them all at every connection. */
const MEMORY = 30;
/** Spacing of the indications of one dump (each one waits for its confirmation on a real link). */
const DUMP_GAP_MS = 60;

interface Weighing {
  readonly clock: number;
  readonly weightKg: number;
}

/**
 * Medisana BS444 (2010 clock) with one person. It measures when the patient steps on and keeps the weighing;
 * nothing is sent until the hub writes 02 + a clock value to 8A81 (the hub's time, or the fixed trigger while the
 * hub's clock is not synchronised), which sets the clock and makes the scale
 * send the person profile, then every kept weighing as a weight and a body composition indication. A weighing
 * made while a hub listens after that write is sent at once. Body composition follows the simulated patient's
 * weight with textbook approximations (not the scale's undisclosed formula): fat % from BMI (Deurenberg 1991,
 * adult man of 50), water 73 % of the fat-free mass (Pace & Rathbun 1945), muscle and bone shares of it, and
 * daily kcal from Mifflin-St Jeor times 1.5.
 */
export default defineDeviceModel({
  address: 'E4:54:EB:00:01:44',
  name: '0131970144',
  build: (c) => {
    // The scale's clock as a count of seconds since 2010-01-01: true time (plus any clock offset) until set.
    let clockOffsetS = Math.round((c.options.clockOffsetMs ?? 0) / 1000);
    const clockAt = (t: number) => Math.floor(t / 1000) - EPOCH_2010_S + clockOffsetS;
    const memory: Weighing[] = [];
    let triggered = false;
    const heightM = c.subject.profile.heightM;

    const frames = (w: Weighing): [Uint8Array, Uint8Array] => {
      const fat = Math.min(60, Math.max(5, 1.2 * c.subject.bmi(w.weightKg) - 4.7));
      const fatFree = 100 - fat;
      const kcal = Math.round(1.5 * (10 * w.weightKg + 625 * heightM - 5 * 50 + 5));
      return [
        encodeWeight({ weightKg: w.weightKg, time: w.clock, person: 1 }),
        encodeBody({
          time: w.clock,
          person: 1,
          kcal,
          fatPercent: Math.round(fat * 10) / 10,
          waterPercent: Math.round(fatFree * 7.3) / 10,
          musclePercent: Math.round(fatFree * 5) / 10,
          boneKg: Math.round(((w.weightKg * fatFree) / 100) * 0.5) / 10,
        }),
      ];
    };

    const send = (w: Weighing) => {
      const [weight, body] = frames(w);
      p.emit(WEIGHT, weight);
      p.emit(BODY, body);
    };

    const dump = () => {
      let delay = DUMP_GAP_MS;
      c.scheduler.setTimeout(
        () => p.emit(PERSON, encodePerson(1, true, 50, Math.round(heightM * 100))),
        delay,
      );
      for (const w of [...memory]) {
        delay += DUMP_GAP_MS;
        c.scheduler.setTimeout(() => send(w), delay);
      }
    };

    const gatt: ServiceDefinition[] = [
      {
        uuid: SERVICE,
        characteristics: [
          c.measurementChar(WEIGHT, ['indicate']),
          c.measurementChar(BODY, ['indicate']),
          c.measurementChar(PERSON, ['indicate']),
          {
            uuid: COMMAND,
            properties: ['write'],
            onWrite: (value) => {
              if (value.length !== 5 || value[0] !== 0x02) return;
              // The four bytes become the clock (keptenkurk/BS440: the write resyncs the scale's RTC).
              const set = new DataView(value.buffer, value.byteOffset + 1, 4).getUint32(0, true);
              clockOffsetS = set - (Math.floor(c.scheduler.now() / 1000) - EPOCH_2010_S);
              triggered = true;
              dump();
            },
          },
          { uuid: '8a20', properties: ['read'], value: new Uint8Array(2) },
        ],
      },
    ];
    const p = c.peripheral([SERVICE], gatt);
    p.addHooks({
      onDisconnect: () => {
        triggered = false;
      },
    });

    const keep = (w: Weighing) => {
      memory.push(w);
      if (memory.length > MEMORY) memory.shift();
    };

    return {
      peripheral: p,
      measurement: { service: SERVICE, characteristic: WEIGHT },
      streams: false,
      measure: () => {
        const t = c.scheduler.now();
        const w: Weighing = { clock: clockAt(t), weightKg: Math.round(c.subject.weight(t) * 100) / 100 };
        keep(w);
        if (triggered && p.isSubscribed(WEIGHT)) send(w);
      },
      preload: (count, everyMs = 24 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (let i = count - 1; i >= 0; i--) {
          const t = endingAt - i * everyMs;
          keep({ clock: clockAt(t), weightKg: Math.round(c.subject.weight(t) * 100) / 100 });
        }
      },
    };
  },
});
