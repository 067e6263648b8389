import { describe, expect, it } from 'vitest';
import { renderPage } from '../../src/patient-page/render.js';
import type { PatientPageSnapshot } from '../../src/patient-page/source.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const DAY = 86_400_000;

const base: PatientPageSnapshot = {
  hubName: 'hub-7',
  devices: [],
  backlog: { pending: { alert: 0, live: 0, backlog: 0 }, oldestPendingAgeMs: null },
  sent: [],
  connection: { state: 'offline', clinic: null, sinceMs: null },
  certificateNotAfterMs: NOW - 1,
  clockSynchronised: false,
};

const render = (s: PatientPageSnapshot) => renderPage(s, { now: NOW, timeZone: 'UTC', refreshSeconds: 60 });

describe('the patient page in plain words', () => {
  it('says what is wrong and what happens to the readings meanwhile', () => {
    const page = render(base);
    expect(page).toContain('<meta http-equiv="refresh" content="60">');
    expect(page).toContain("The hub's clock is not set yet");
    expect(page).toContain(
      'Not connected to your clinic. Your readings are kept safely on the hub and sent when the connection is back.',
    );
    expect(page).toContain("The hub's security certificate expired on 28 Nov 2026, 11:59");
    expect(page).toContain('No devices are set up on this hub yet.');
    expect(page).toContain('Nothing is waiting: everything has reached your clinic.');
    expect(page).toContain('Nothing has been sent since the hub started.');
  });

  it('warns a month before the certificate runs out, and when it cannot be read', () => {
    expect(render({ ...base, certificateNotAfterMs: NOW + 12 * DAY + 1000 })).toContain(
      "The hub's security certificate runs out in 12 days (10 Dec 2026, 12:00).",
    );
    expect(render({ ...base, certificateNotAfterMs: null })).toContain(
      'The hub cannot read its security certificate.',
    );
  });

  it("shows a device's own clock time as written, a missing value as such, and a sleeping device calmly", () => {
    const page = render({
      ...base,
      clockSynchronised: true,
      connection: { state: 'connecting', clinic: 'mqtt.clinic.example', sinceMs: NOW - 30_000 },
      devices: [
        {
          id: 'd1-00000000000000aa',
          label: null,
          profile: 'thermometer',
          model: null,
          state: 'backoff',
          lastSeenMs: NOW - 3 * DAY,
          batteryPercent: null,
          lastReading: {
            time: '2026-11-25T07:15:00',
            observations: [{ code: 'MDC_TEMP_EAR', value: null, unit: 'Cel', invalid: 'nan' }],
          },
        },
      ],
    });
    expect(page).toContain('Trying to reach mqtt.clinic.example, since 28 Nov 2026, 11:59');
    expect(page).toContain('(just now)');
    expect(page).toContain('Last reading, 2026-11-25 07:15 (the device&#39;s clock):');
    expect(page).toContain('<dt>Temperature (ear)</dt><dd>no value</dd>');
    expect(page).toContain('Not connected: switched off, asleep or out of reach.');
    expect(page).toContain('(3 days ago)');
    expect(page).not.toContain('clock is not set');
  });
});
