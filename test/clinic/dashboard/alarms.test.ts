import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import { ClinicalBroker } from '../../../src/broker/clinical-broker.js';
import { identifyClient } from '../../../src/broker/identify.js';
import type { AlarmEvent } from '../../../src/clinic/alarms/engine.js';
import { limitsConfigSet } from '../../../src/clinic/alarms/hub-limits.js';
import type { AlarmLimit } from '../../../src/clinic/alarms/model.js';
import { SqliteAlarmStore } from '../../../src/clinic/alarms/sqlite/sqlite-alarm-store.js';
import { buildDashboardApp } from '../../../src/clinic/dashboard/app.js';
import { AlarmService } from '../../../src/clinic/service/alarm-service.js';
import { HubCommandsService } from '../../../src/clinic/service/hub-commands.js';
import { clinicLimitKeys } from '../../../src/pipeline/alert-config.js';
import { checkServerCertificate, createDevelopmentPki, type DevelopmentPki } from '../../../src/pki/index.js';
import { createLog } from '../../../src/runtime/log.js';
import { CommandSigners } from '../../../src/uplink/command-signers.js';
import { commandHandler } from '../../../src/uplink/commands.js';
import { ManualClock } from '../../../src/util/clock.js';
import { realScheduler, VirtualScheduler } from '../../../src/util/scheduler.js';
import {
  type ConfigValue,
  kidForCertificate,
  MemoryReplayCache,
  signCommandResult,
  topicFor,
} from '../../../src/wire/index.js';
import { until } from '../../support/until.js';
import { Browser, MRN_CARED, MRN_OTHER, makeStores, ORIGIN, type Stores, TEST_SETTINGS } from './rig.js';

/**
 * The alarm pages over fastify.inject on the real encrypted SQLite stores, with a real AlarmEngine following
 * the clinic store's live feed: alarms are raised by readings committed to the store, never written by hand.
 * The limits editor sends to the patient's hub as `clinic serve` does (HubCommandsService and its
 * LimitsPublisher, a TLS connection with the clinic's certificate from the development PKI) over the real
 * clinical broker (aedes, mutual TLS, its ACL) to gw-a's real command handler (src/uplink/commands.ts), which
 * verifies the signed command and answers with a signed result.
 */
const KEY = Uint8Array.from(Buffer.from('5a'.repeat(32), 'hex'));
const SPO2_HIGH: AlarmLimit = {
  code: 'MDC_PULS_OXIM_SAT_O2',
  unit: '%',
  below: 90,
  forMs: 0,
  hysteresis: 1,
  priority: 'high',
};

interface AlarmRig extends Stores {
  readonly dir: string;
  readonly app: FastifyInstance;
  readonly clock: ManualClock;
  readonly alarms: AlarmService;
  readonly events: AlarmEvent[];
  /** Commits one SpO2 reading of `value` on gw-a (or `gatewayId`) measured now; waits for the engine's event. */
  low(value: number, gatewayId?: string): Promise<AlarmEvent>;
  close(): Promise<void>;
}

/** The development PKI: the broker's, the clinic's (command signing) and gw-a's certificates. */
let pki: DevelopmentPki;
let pkiDir: string;
let broker: ClinicalBroker;
let brokerPort: number;
/** gw-a, as far as commands go: the config sets its command handler applied, and the keys it accepts. */
let hub: MqttClient;
const applied: { [key: string]: ConfigValue }[] = [];
let hubAccepts: ReadonlySet<string> = clinicLimitKeys();

beforeAll(async () => {
  pkiDir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-alarms-pki-'));
  pki = await createDevelopmentPki(pkiDir, { gatewayId: 'gw-a' });
  // The gateway certificates folder the dashboard verifies the hubs' answers with.
  await mkdir(join(pkiDir, 'gateways'));
  await writeFile(join(pkiDir, 'gateways', 'gw-a.crt'), pki.pem.gateway);
  broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify: identifyClient,
  });
  brokerPort = (await broker.start()).port;
  hub = await mqtt.connectAsync({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: brokerPort,
    servername: 'localhost',
    ca: pki.pem.ca,
    cert: pki.pem.gateway,
    key: pki.pem.gatewayKey,
    clientId: pki.gatewayId,
    rejectUnauthorized: true,
    checkServerIdentity: checkServerCertificate,
    reconnectPeriod: 0,
  } as mqtt.IClientOptions);
  const gatewayKey = createPrivateKey(pki.pem.gatewayKey);
  const gatewayKid = kidForCertificate(new Uint8Array(new X509Certificate(pki.pem.gateway).raw));
  const handle = commandHandler({
    gatewayId: pki.gatewayId,
    clock: realScheduler,
    signers: new CommandSigners({ clinicCa: pki.pem.ca, certificates: [pki.pem.clinic] }),
    replayCache: new MemoryReplayCache(realScheduler),
    // A whitelist a test can narrow, as an older hub's would be.
    allowedConfigKeys: { has: (key: string) => hubAccepts.has(key) } as ReadonlySet<string>,
    notBefore: 0,
    actions: {
      config: async (set) => {
        applied.push(set);
      },
    },
    sign: (result) => signCommandResult(result, gatewayKey, gatewayKid),
  });
  hub.on('message', (_topic, payload) => {
    handle(new Uint8Array(payload), async (result) => {
      await hub.publishAsync(topicFor(pki.gatewayId, 'cmd/res'), Buffer.from(result), { qos: 1 });
    });
  });
  await hub.subscribeAsync(topicFor(pki.gatewayId, 'cmd'), { qos: 1 });
});
afterAll(async () => {
  await hub?.endAsync();
  await broker?.stop();
  if (pkiDir) await rm(pkiDir, { recursive: true, force: true });
});

let seq = 100;
async function startAlarmRig(): Promise<AlarmRig> {
  const dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-alarms-'));
  const clock = new ManualClock();
  const stores = await makeStores(dir, clock);
  const scheduler = new VirtualScheduler(clock.now());
  const alarmStore = await SqliteAlarmStore.open({ path: join(dir, 'clinic.db'), key: KEY });
  const log = createLog({ level: 'silent', redact: true, base: { service: 'dashboard' } });
  const alarms = new AlarmService({ clinic: stores.clinic, alarms: alarmStore, scheduler, log });
  await alarms.start();
  await alarms.setLimits(MRN_CARED, [SPO2_HIGH], 'test');
  await alarms.setLimits(MRN_OTHER, [SPO2_HIGH], 'test');
  const events: AlarmEvent[] = [];
  alarms.subscribe((event) => events.push(event));
  applied.length = 0;
  hubAccepts = clinicLimitKeys();
  const hubCommands = new HubCommandsService({
    broker: {
      url: `mqtts://127.0.0.1:${brokerPort}`,
      host: '127.0.0.1',
      port: brokerPort,
      servername: 'localhost',
    },
    clientId: `clinic-test-cmd-${seq}`,
    tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
    gateways: { caPem: pki.pem.ca, folder: join(pkiDir, 'gateways') },
    scheduler: realScheduler,
    log,
  });
  await hubCommands.start();
  await until('the dashboard connected to the broker', () => hubCommands.connected);
  const rig: AlarmRig = {
    ...stores,
    dir,
    clock,
    alarms,
    events,
    app: undefined as unknown as FastifyInstance,
    low: async (value, gatewayId = 'gw-a') => {
      const n = ++seq;
      const now = clock.now();
      const waiting = new Promise<AlarmEvent>((resolve) => {
        const stop = alarms.subscribe((event) => {
          stop();
          resolve(event);
        });
      });
      await stores.clinic.commit({
        measurements: [
          {
            measurement: spo2Measurement(n, {
              id: `m1-${n.toString(16).padStart(32, '0')}`,
              time: new Date(now).toISOString(),
              receivedAt: new Date(now).toISOString(),
              observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', value, unit: '%' }],
            }),
            measuredAt: now,
            receipt: {
              gatewayId,
              topic: 'obs' as const,
              batchSeq: n,
              sentAt: now,
              signerSerial: '01',
              receivedAt: now,
            },
          },
        ],
        gaps: [],
        statuses: [],
        rejections: [],
      });
      return waiting;
    },
    close: async () => {
      await rig.app.close();
      await hubCommands.stop();
      await alarms.stop();
      await alarmStore.close();
      await stores.staff.close();
      await stores.clinic.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  (rig as { app: FastifyInstance }).app = await buildDashboardApp({
    ...stores,
    clock,
    publicOrigin: ORIGIN,
    ...TEST_SETTINGS,
    alarms: { store: alarmStore, control: alarms, hubCommands },
  });
  return rig;
}

function auditEntries(rig: AlarmRig): { type: string; actor: string; details: Record<string, unknown> }[] {
  return readFileSync(join(rig.dir, 'clinic-audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

let rig: AlarmRig;
beforeEach(async () => {
  rig = await startAlarmRig();
});
afterEach(async () => {
  await rig.close();
});

describe('alarm lists', () => {
  it('a reading below the limit shows on /alarms and the patient list as a high, active alarm, with the escalation banner', async () => {
    const event = await rig.low(84);
    expect(event.type).toBe('raised');
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    const list = await browser.get('/alarms');
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain(`id="alarm-${event.alarm.id}"`);
    expect(list.body).toMatch(/class="alarm alarm-high alarm-active"/);
    expect(list.body).toContain('84 %');
    expect(list.body).toContain('Escalation when nobody is watching is out of scope.');
    expect(list.body).toContain('<link rel="stylesheet" href="/assets/alarms.css">');
    const patient = await browser.get(`/patients/${MRN_CARED}/alarms`);
    expect(patient.statusCode).toBe(200);
    expect(patient.body).toContain(`id="alarm-${event.alarm.id}"`);
    expect(patient.body).toContain('Escalation when nobody is watching is out of scope.');
  });

  it("a clinician sees only the care team's alarms; another patient's alarm page and acknowledgement are 404", async () => {
    const mine = await rig.low(84, 'gw-a');
    const other = await rig.low(83, 'gw-b');
    expect(other.alarm.mrn).toBe(MRN_OTHER);
    const browser = new Browser(rig.app);
    await browser.login('carl', rig.secret, rig.clock.now());
    const list = await browser.get('/alarms');
    expect(list.body).toContain(`id="alarm-${mine.alarm.id}"`);
    expect(list.body).not.toContain(`id="alarm-${other.alarm.id}"`);
    const page = await browser.get(`/patients/${MRN_OTHER}/alarms`);
    const missing = await browser.get('/patients/MRN-NOBODY/alarms');
    expect(page.statusCode).toBe(404);
    expect(page.body).toBe(missing.body);
    const ack = await browser.post(`/alarms/${other.alarm.id}/ack`, { _csrf: Browser.csrfOf(list) });
    const ackMissing = await browser.post('/alarms/999999/ack', { _csrf: Browser.csrfOf(list) });
    expect(ack.statusCode).toBe(404);
    expect(ack.body).toBe(ackMissing.body);
    expect((await rig.alarms.limitsOf(MRN_OTHER)).length).toBe(1);
    const stored = await SqliteAlarmStore.open({ path: join(rig.dir, 'clinic.db'), key: KEY });
    try {
      expect((await stored.alarm(other.alarm.id))?.acknowledgedBy).toBeUndefined();
    } finally {
      await stored.close();
    }
  });
});

describe('the lists the live pages fetch again', () => {
  it("answers the care team's alarms only, a hidden patient as a missing one, and never extends the session", async () => {
    const mine = await rig.low(84, 'gw-a');
    const other = await rig.low(83, 'gw-b');
    const browser = new Browser(rig.app);
    await browser.login('carl', rig.secret, rig.clock.now());
    // The live pages: their list carries where to fetch it again, and the page's script.
    const page = await browser.get('/alarms');
    expect(page.body).toContain('data-alarm-list="/alarms/list"');
    expect(page.body).toContain('<script type="module" src="/assets/alarms.js"></script>');
    expect(page.body).toContain('id="live-state"');
    expect((await browser.get(`/patients/${MRN_CARED}/alarms`)).body).toContain(
      `data-alarm-list="/patients/${MRN_CARED}/alarms/list" data-stale-watch data-alarm-patient="${MRN_CARED}"`,
    );

    const list = await browser.get('/alarms/list');
    expect(list.statusCode).toBe(200);
    expect(list.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(list.headers['cache-control']).toBe('no-store');
    expect(list.body).toMatch(/^<div class="alarm-list" data-alarm-list="\/alarms\/list"/);
    expect(list.body).toContain(`id="alarm-${mine.alarm.id}"`);
    expect(list.body).not.toContain(`id="alarm-${other.alarm.id}"`);
    expect(list.body).toContain(`name="_csrf" value="${Browser.csrfOf(page)}"`);
    const patient = await browser.get(`/patients/${MRN_CARED}/alarms/list`);
    expect(patient.body).toContain(`id="alarm-${mine.alarm.id}"`);
    const hidden = await browser.get(`/patients/${MRN_OTHER}/alarms/list`);
    const missing = await browser.get('/patients/MRN-NOBODY/alarms/list');
    expect([hidden.statusCode, missing.statusCode]).toEqual([404, 404]);
    expect(hidden.body).toBe(missing.body);

    // Fetched by a page on its own, not by the user: no activity. Just before the idle timeout a fetch
    // succeeds; past the timeout (counted from the last page, not that fetch) the session has ended.
    rig.clock.advance(TEST_SETTINGS.session.idleMs - 1000);
    expect((await browser.get('/alarms/list')).statusCode).toBe(200);
    rig.clock.advance(2000);
    expect((await browser.get('/alarms/list')).statusCode).toBe(401);
    expect((await new Browser(rig.app).get('/alarms/list')).statusCode).toBe(401);
  });
});

describe('acknowledge', () => {
  it('without the CSRF token: refused, nothing recorded; with it: who and when, audited, the event told', async () => {
    const { alarm } = await rig.low(84);
    const browser = new Browser(rig.app);
    await browser.login('carl', rig.secret, rig.clock.now());
    const list = await browser.get('/alarms');
    const forged = await browser.post(`/alarms/${alarm.id}/ack`, {});
    expect(forged.statusCode).toBe(403);
    const wrong = await browser.post(`/alarms/${alarm.id}/ack`, { _csrf: 'not-the-token' });
    expect(wrong.statusCode).toBe(403);
    const otherOrigin = await browser.post(
      `/alarms/${alarm.id}/ack`,
      { _csrf: Browser.csrfOf(list) },
      { origin: 'https://evil.example' },
    );
    expect(otherOrigin.statusCode).toBe(403);
    expect(auditEntries(rig).some((e) => e.type === 'alarm.acknowledged')).toBe(false);
    expect(rig.events.some((e) => e.type === 'acknowledged')).toBe(false);

    rig.clock.advance(5_000);
    const ok = await browser.post(`/alarms/${alarm.id}/ack`, {
      _csrf: Browser.csrfOf(list),
      return: '/alarms',
    });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/alarms');
    const acknowledged = rig.events.find((e) => e.type === 'acknowledged');
    expect(acknowledged?.alarm.acknowledgedBy).toBe('carl');
    const entry = auditEntries(rig).find((e) => e.type === 'alarm.acknowledged');
    expect(entry?.actor).toBe('carl');
    expect(entry?.details).toMatchObject({
      alarmId: alarm.id,
      mrn: MRN_CARED,
      priority: 'high',
      first: true,
    });
    const after = await browser.get('/alarms');
    expect(after.body).toContain('Acknowledged by carl');
  });

  it('a return address outside the alarm pages is not followed (no open redirect)', async () => {
    const { alarm } = await rig.low(84);
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    const list = await browser.get('/alarms');
    const response = await browser.post(`/alarms/${alarm.id}/ack`, {
      _csrf: Browser.csrfOf(list),
      return: 'https://evil.example/alarms',
    });
    expect(response.headers.location).toBe('/alarms');
  });
});

describe('late alarms', () => {
  it('a back-filled reading below the limit is shown late with its measurement time, never as current', async () => {
    const n = ++seq;
    const now = rig.clock.now();
    const measuredAt = now - 3 * 3_600_000;
    const raised = new Promise<AlarmEvent>((resolve) => {
      const stop = rig.alarms.subscribe((event) => {
        stop();
        resolve(event);
      });
    });
    await rig.clinic.commit({
      measurements: [
        {
          measurement: spo2Measurement(n, {
            time: new Date(measuredAt).toISOString(),
            receivedAt: new Date(measuredAt).toISOString(),
            observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', value: 82, unit: '%' }],
          }),
          measuredAt,
          receipt: {
            gatewayId: 'gw-a',
            topic: 'obs' as const,
            batchSeq: n,
            sentAt: now,
            signerSerial: '01',
            receivedAt: now,
          },
        },
      ],
      gaps: [],
      statuses: [],
      rejections: [],
    });
    const { alarm } = await raised;
    expect(alarm.late).toBe(true);
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    const list = await browser.get('/alarms');
    const row = new RegExp(
      `<tr class="alarm alarm-high alarm-latched alarm-late" id="alarm-${alarm.id}"[\\s\\S]*?</tr>`,
    ).exec(list.body)?.[0];
    expect(row).toBeDefined();
    expect(row).toContain('<span class="alarm-late-label">Late</span> measured');
    expect(row).toContain('(3 hours ago)');
    expect(row).not.toContain('just now');
  });
});

describe('limits editor', () => {
  const form = (csrf: string, below: string) => ({
    _csrf: csrf,
    rows: '1',
    'code.0': 'MDC_PULS_OXIM_SAT_O2',
    'unit.0': '%',
    'on.0': 'on',
    'below.0': below,
    'above.0': '',
    'for.0': '30',
    'hysteresis.0': '2',
    'priority.0': 'high',
  });

  it('is for admins only: a clinician of the care team gets 403 on GET and POST, nothing changes', async () => {
    const browser = new Browser(rig.app);
    await browser.login('carl', rig.secret, rig.clock.now());
    const page = await browser.get(`/patients/${MRN_CARED}/limits`);
    expect(page.statusCode).toBe(403);
    const list = await browser.get('/alarms');
    const post = await browser.post(`/patients/${MRN_CARED}/limits`, form(Browser.csrfOf(list), '85'));
    expect(post.statusCode).toBe(403);
    expect((await rig.alarms.limitsOf(MRN_CARED))[0]?.below).toBe(90);
    // A patient outside the care team is the usual 404.
    expect((await browser.get(`/patients/${MRN_OTHER}/limits`)).statusCode).toBe(404);
    // Nothing went to the hub: the first command it gets is the one an admin's save sends afterwards.
    const admin = new Browser(rig.app);
    await admin.login('alice', rig.secret, rig.clock.now());
    const editor = await admin.get(`/patients/${MRN_CARED}/limits`);
    const saved = await admin.post(`/patients/${MRN_CARED}/limits`, form(Browser.csrfOf(editor), '87'));
    expect(saved.body).toContain('Hub gw-a applied the limits.');
    expect(applied.map((set) => set['alerts.MDC_PULS_OXIM_SAT_O2.below'])).toEqual([87]);
  });

  it('an admin saves: validated, stored, audited, sent to the hub, and the outcome shown', async () => {
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    const page = await browser.get(`/patients/${MRN_CARED}/limits`);
    expect(page.statusCode).toBe(200);
    const csrf = Browser.csrfOf(page);
    expect(
      (await browser.post(`/patients/${MRN_CARED}/limits`, { ...form(csrf, '85'), _csrf: 'x' })).statusCode,
    ).toBe(403);
    const bad = await browser.post(`/patients/${MRN_CARED}/limits`, form(csrf, '0x10'));
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('MDC_PULS_OXIM_SAT_O2 below: not a number');
    // The hub's own rule schema judges the set: below must be under above.
    const crossed = await browser.post(`/patients/${MRN_CARED}/limits`, {
      ...form(csrf, '95'),
      'above.0': '90',
    });
    expect(crossed.statusCode).toBe(400);
    expect(crossed.body).toContain('limits refused: MDC_PULS_OXIM_SAT_O2');

    const saved = await browser.post(`/patients/${MRN_CARED}/limits`, form(csrf, '85'));
    expect(saved.statusCode).toBe(200);
    expect(saved.body).toContain('Hub gw-a applied the limits.');
    const limits = await rig.alarms.limitsOf(MRN_CARED);
    expect(limits).toEqual([{ ...SPO2_HIGH, below: 85, forMs: 30_000, hysteresis: 2 }]);
    // The hub verified the signed command and applied exactly this set (the refused forms sent nothing: this
    // is the first command it got).
    expect(applied).toEqual([limitsConfigSet(limits, [SPO2_HIGH])]);
    const entries = auditEntries(rig);
    const set = entries.find((e) => e.type === 'alarm.limits-set');
    expect(set?.actor).toBe('alice');
    expect(set?.details).toMatchObject({
      mrn: MRN_CARED,
      limits: [{ code: 'MDC_PULS_OXIM_SAT_O2', below: 85 }],
    });
    await expect
      .poll(() => auditEntries(rig).find((e) => e.type === 'alarm.limits-sent')?.details)
      .toMatchObject({
        mrn: MRN_CARED,
        gatewayId: 'gw-a',
        outcome: 'applied',
      });
  });

  it('a hub that refuses is shown as refused; the clinic keeps the new limits', async () => {
    // An older hub that does not take SpO2 limits from the clinic: its command handler refuses the command.
    hubAccepts = new Set(
      [...clinicLimitKeys()].filter((key) => !key.startsWith('alerts.MDC_PULS_OXIM_SAT_O2.')),
    );
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    const page = await browser.get(`/patients/${MRN_CARED}/limits`);
    const saved = await browser.post(`/patients/${MRN_CARED}/limits`, form(Browser.csrfOf(page), '88'));
    expect(saved.body).toContain('hub gw-a refused the limits: WIRE_CMD_BAD_ARGS');
    expect((await rig.alarms.limitsOf(MRN_CARED))[0]?.below).toBe(88);
  });
});
