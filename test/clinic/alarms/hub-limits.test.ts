import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClinicalBroker } from '../../../src/broker/clinical-broker.js';
import { identifyClient } from '../../../src/broker/identify.js';
import { AlarmError } from '../../../src/clinic/alarms/errors.js';
import { type CommandSigner, limitsCommand, limitsConfigSet } from '../../../src/clinic/alarms/hub-limits.js';
import { LimitsPublisher } from '../../../src/clinic/alarms/limits-publisher.js';
import type { AlarmLimit } from '../../../src/clinic/alarms/model.js';
import { DEFAULTS } from '../../../src/config/defaults.js';
import { alertRulesSchema } from '../../../src/config/schema.js';
import { clinicLimitKeys, rulesInForce } from '../../../src/pipeline/alert-config.js';
import { AlertRules } from '../../../src/pipeline/alert-rules.js';
import { checkServerCertificate, createDevelopmentPki, type DevelopmentPki } from '../../../src/pki/index.js';
import { CommandSigners } from '../../../src/uplink/command-signers.js';
import { commandHandler } from '../../../src/uplink/commands.js';
import { realScheduler, VirtualScheduler } from '../../../src/util/scheduler.js';
import {
  type ConfigValue,
  kidForCertificate,
  MemoryReplayCache,
  signCommandResult,
  topicFor,
  verifyCommand,
} from '../../../src/wire/index.js';
import { until } from '../../support/until.js';

/**
 * The limits an admin sets for a patient, as the signed `config` command their hub accepts: checked with the
 * hub's own verification (verifyCommand with the hub's CommandSigners and whitelist) and the hub's own rule
 * building (rulesInForce over its default configuration), then sent over a real TLS broker to the hub's real
 * command handler (src/uplink/commands.ts), whose signed answer the publisher verifies.
 */
const LIMITS: AlarmLimit[] = [
  { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', below: 88, forMs: 120_000, hysteresis: 2, priority: 'high' },
  { code: 'MDC_TEMP_BODY', unit: 'Cel', above: 38.5, forMs: 0, hysteresis: 0.3, priority: 'medium' },
];
const HUB_DEFAULTS = alertRulesSchema.parse((DEFAULTS.alerts as { rules: unknown }).rules);

let dir: string;
let pki: DevelopmentPki;
let signer: CommandSigner;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-alarm-limits-'));
  pki = await createDevelopmentPki(join(dir, 'tls'), { gatewayId: 'gw-limits-1' });
  signer = {
    key: createPrivateKey(pki.pem.clinicKey),
    kid: kidForCertificate(new Uint8Array(new X509Certificate(pki.pem.clinic).raw)),
  };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('limitsConfigSet', () => {
  it('states every field of every limited code, and removes the codes the patient is no longer limited on', () => {
    const set = limitsConfigSet(LIMITS, [
      { code: 'MDC_MASS_BODY_ACTUAL', unit: 'kg', above: 150, forMs: 0, hysteresis: 1, priority: 'low' },
    ]);
    expect(set).toMatchObject({
      'alerts.MDC_PULS_OXIM_SAT_O2.unit': '%',
      'alerts.MDC_PULS_OXIM_SAT_O2.below': 88,
      'alerts.MDC_PULS_OXIM_SAT_O2.above': false,
      'alerts.MDC_PULS_OXIM_SAT_O2.for': '120000ms',
      'alerts.MDC_PULS_OXIM_SAT_O2.hysteresis': 2,
      'alerts.MDC_TEMP_BODY.above': 38.5,
      // Hub defaults the patient's limits leave out, and an earlier limit: removed.
      'alerts.MDC_PRESS_BLD_NONINV_SYS.below': false,
      'alerts.MDC_PRESS_BLD_NONINV_SYS.above': false,
      'alerts.MDC_ECG_HEART_RATE.above': false,
      'alerts.MDC_MASS_BODY_ACTUAL.above': false,
    });
    const allowed = clinicLimitKeys();
    expect(Object.keys(set).every((key) => allowed.has(key))).toBe(true);
  });

  it('refuses limits the hub would refuse, with ALARM_LIMITS_INVALID', () => {
    let error: unknown;
    try {
      limitsConfigSet([{ ...(LIMITS[0] as AlarmLimit), unit: 'furlongs' }]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AlarmError);
    expect((error as AlarmError).code).toBe('ALARM_LIMITS_INVALID');
  });
});

describe('limitsCommand', () => {
  it("passes the hub's own verification, and the hub builds exactly the patient's limits from it", () => {
    const now = Date.now(); // the certificates are valid from now
    const built = limitsCommand({ gatewayId: 'gw-limits-1', limits: LIMITS, now, signer });
    expect(built.topic).toBe('rpm/v1/gw-limits-1/cmd');
    const signers = new CommandSigners({ clinicCa: pki.pem.ca, certificates: [pki.pem.clinic] });
    const command = verifyCommand(built.payload, {
      gatewayId: 'gw-limits-1',
      now,
      resolveClinicKey: signers.resolverAt(now),
      replayCache: new MemoryReplayCache({ now: () => now }),
      allowedConfigKeys: clinicLimitKeys(),
    });
    expect(command.cmd).toBe('config');
    if (command.cmd !== 'config') return;
    const rules = rulesInForce(HUB_DEFAULTS, command.args.set);
    expect(rules.map((r) => [r.rule.id, r.source])).toEqual([
      ['MDC_PULS_OXIM_SAT_O2:below', 'clinic'],
      ['MDC_TEMP_BODY:above', 'clinic'],
    ]);
    // The hub's alert lane now marks what crosses the clinic's limit: 87 % for 2 minutes, not 89 %.
    const judge = new AlertRules(rules.map((r) => r.rule));
    const reading = (value: number, second: number) => ({
      stored: false,
      measurement: {
        id: `m-${second}`,
        deviceId: 'dev-ox-1',
        driver: 'sig/pulse-oximeter@1.0.0',
        characteristic: '2a5f',
        time: new Date(now + second * 1000).toISOString(),
        timeSource: 'gateway' as const,
        deviceTime: null,
        receivedAt: new Date(now + second * 1000).toISOString(),
        kind: 'measurement' as const,
        observations: [{ code: 'MDC_PULS_OXIM_SAT_O2' as const, value, unit: '%' as const }],
        status: [],
        details: {},
      },
    });
    for (let s = 0; s <= 120; s += 10) expect(judge.judge(reading(89, s))).toEqual([]);
    const marks = [];
    for (let s = 130; s <= 250; s += 10) marks.push(...judge.judge(reading(87, s)));
    expect(marks).toEqual([{ rule: 'MDC_PULS_OXIM_SAT_O2:below', late: false }]);
  });
});

describe('LimitsPublisher over the clinical broker to the hub command handler', () => {
  let broker: ClinicalBroker;
  let port: number;
  let clinicClient: MqttClient;
  let hubClient: MqttClient;
  const applied: { [key: string]: ConfigValue }[] = [];
  let whitelist = clinicLimitKeys();

  const connect = (cert: string, key: string, clientId: string) =>
    mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.pem.ca,
      cert,
      key,
      clientId,
      rejectUnauthorized: true,
      checkServerIdentity: checkServerCertificate,
      reconnectPeriod: 0,
    } as mqtt.IClientOptions);

  beforeAll(async () => {
    broker = new ClinicalBroker({
      ca: pki.pem.ca,
      cert: pki.pem.broker,
      key: pki.pem.brokerKey,
      port: 0,
      identify: identifyClient,
    });
    port = (await broker.start()).port;
    clinicClient = await connect(pki.pem.clinic, pki.pem.clinicKey, 'clinic-test-alarm-limits');
    hubClient = await connect(pki.pem.gateway, pki.pem.gatewayKey, pki.gatewayId);
    const gatewayKey = createPrivateKey(pki.pem.gatewayKey);
    const gatewayKid = kidForCertificate(new Uint8Array(new X509Certificate(pki.pem.gateway).raw));
    const handle = commandHandler({
      gatewayId: pki.gatewayId,
      clock: realScheduler,
      signers: new CommandSigners({ clinicCa: pki.pem.ca, certificates: [pki.pem.clinic] }),
      replayCache: new MemoryReplayCache(realScheduler),
      // A whitelist the test can narrow, as an older hub's would be.
      allowedConfigKeys: {
        has: (key: string) => whitelist.has(key),
      } as ReadonlySet<string>,
      notBefore: 0,
      actions: {
        config: async (set) => {
          rulesInForce(HUB_DEFAULTS, set); // what AlertLimits.set checks (throws ALERT_LIMITS_INVALID)
          applied.push(set);
        },
      },
      sign: (result) => signCommandResult(result, gatewayKey, gatewayKid),
    });
    hubClient.on('message', (_topic, payload) => {
      handle(new Uint8Array(payload), async (result) => {
        await hubClient.publishAsync(topicFor(pki.gatewayId, 'cmd/res'), Buffer.from(result), { qos: 1 });
      });
    });
    await hubClient.subscribeAsync(topicFor(pki.gatewayId, 'cmd'), { qos: 1 });
  });
  afterAll(async () => {
    await clinicClient?.endAsync();
    await hubClient?.endAsync();
    await broker?.stop();
  });

  const gatewayPublicKey = () => new X509Certificate(pki.pem.gateway).publicKey;

  it('the hub applies the limits and answers with the keys it applied', async () => {
    const publisher = new LimitsPublisher({
      client: clinicClient,
      signer,
      resolveGatewayKey: gatewayPublicKey,
      scheduler: realScheduler,
    });
    try {
      const keys = await publisher.send(pki.gatewayId, LIMITS);
      expect(keys).toEqual(Object.keys(limitsConfigSet(LIMITS)));
      expect(applied.at(-1)).toEqual(limitsConfigSet(LIMITS));
    } finally {
      publisher.close();
    }
  });

  it('a refusal by the hub is ALARM_HUB_REFUSED with the hub code', async () => {
    whitelist = new Set([...clinicLimitKeys()].filter((key) => !key.startsWith('alerts.MDC_TEMP_BODY.')));
    const publisher = new LimitsPublisher({
      client: clinicClient,
      signer,
      resolveGatewayKey: gatewayPublicKey,
      scheduler: realScheduler,
    });
    try {
      const error = await publisher.send(pki.gatewayId, LIMITS).catch((e: unknown) => e);
      expect((error as AlarmError).code).toBe('ALARM_HUB_REFUSED');
      expect((error as AlarmError).message).toContain('WIRE_CMD_BAD_ARGS');
    } finally {
      whitelist = clinicLimitKeys();
      publisher.close();
    }
  });

  it('no answer within the command lifetime and margin is ALARM_HUB_NO_ANSWER (virtual time)', async () => {
    const scheduler = new VirtualScheduler(Date.now());
    const publisher = new LimitsPublisher({
      client: clinicClient,
      signer,
      resolveGatewayKey: gatewayPublicKey,
      scheduler,
      ttlMs: 30_000,
      marginMs: 5_000,
    });
    try {
      // A hub nobody runs: the command is published, no answer comes.
      const sent = publisher.send('gw-nobody-1', LIMITS);
      const outcome = sent.catch((e: unknown) => e);
      await until('the answer timer', () => scheduler.pending > 0);
      await scheduler.advanceAsync(35_000);
      const error = await outcome;
      expect((error as AlarmError).code).toBe('ALARM_HUB_NO_ANSWER');
    } finally {
      publisher.close();
    }
  });
});
