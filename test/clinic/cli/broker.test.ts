import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { Children, type ClinicRig, clinicRig, events, waitFor } from './rig.js';

/** `rpm-gateway broker`: the built CLI as a service runs it (dist/; `npm run build` first). */
let root: string;
let rig: ClinicRig;
const children = new Children();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-broker-'));
  rig = await clinicRig(root);
});
afterEach(() => children.killAll());
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('rpm-gateway broker', () => {
  it('--help says what it runs and exits 0', async () => {
    const run = children.spawn(['broker', '--help'], {});
    expect((await run.exited).code).toBe(0);
    expect(run.lines.join('\n')).toMatch(/Usage: rpm-gateway broker \[options\]/);
  });

  it('refuses a configuration error before it creates anything (exit 2, no data directory)', async () => {
    const dir = join(root, 'bad');
    const file = join(root, 'bad.yaml');
    // No broker section, and a certificate that does not exist.
    writeFileSync(
      file,
      `clinic: { name: clinic-test, timeZone: UTC }\npaths: { dataDir: ${dir} }\npki: { ca: ${rig.pki.files.ca}, gatewayCerts: ${rig.gatewayCerts} }\n`,
    );
    const run = children.spawn(['broker', '--config', file], {});
    expect((await run.exited).code).toBe(2);
    expect(run.stderr).toMatch(/needs a broker: section/);
    expect(run.stderr).toMatch(/nothing was started or created/);
    expect(run.lines).toEqual([]);
    expect(existsSync(dir)).toBe(false);

    const badKey = children.spawn(
      ['broker', '--config', rig.config, '--set', `broker.key.file=${join(root, 'no-such.key')}`],
      {},
    );
    expect((await badKey.exited).code).toBe(2);
    expect(badKey.stderr).toMatch(/no-such\.key does not exist/);
    expect(existsSync(rig.dataDir)).toBe(false);
  });

  it('listens, logs and audits TLS refusals and the CRL, and stops on SIGTERM within the deadline', async () => {
    const broker = children.spawn(['broker', '--config', rig.config], {});
    const listening = await waitFor(broker, 'broker.listening');
    expect(listening.service).toBe('broker');
    expect(listening.broker).toBe(`127.0.0.1:${rig.port}`);
    await waitFor(broker, 'broker.crl-loaded');

    // A client without a certificate: refused in the handshake.
    const socket = connect({ host: '127.0.0.1', port: rig.port, rejectUnauthorized: false });
    socket.on('error', () => undefined);
    const refused = await waitFor(broker, 'broker.refused');
    socket.destroy();
    expect(refused).toMatchObject({ stage: 'tls', reason: 'no-certificate' });

    const signalledAt = Date.now();
    broker.child.kill('SIGTERM');
    const { code } = await broker.exited;
    expect(code).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    expect(broker.stderr).toBe('');
    expect(events(broker).map((e) => e.event)).toContain('broker.stopped');

    const audit = new AuditLog(join(rig.dataDir, 'broker-audit.log'));
    expect(audit.verify().torn).toBe(0);
    const types = readFileSync(audit.path, 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { type: string }).type);
    expect(types).toEqual(['broker.crl.loaded', 'broker.started', 'broker.refused.tls', 'broker.stopped']);
    // The queues are on disk where the configuration says (paths.dataDir/broker by default).
    expect(existsSync(join(rig.dataDir, 'broker', 'CURRENT'))).toBe(true);
  });

  it('a broker already running on the queue folder: the second fails to start (exit 1), the first runs on', async () => {
    const first = children.spawn(['broker', '--config', rig.config], {});
    await waitFor(first, 'broker.listening');
    const port = rig.port + 1 > 65_535 ? rig.port - 1 : rig.port + 1;
    const second = children.spawn(['broker', '--config', rig.config, '--set', `broker.port=${port}`], {});
    expect((await second.exited).code).toBe(1);
    expect(events(second).find((e) => e.event === 'broker.start-failed')).toMatchObject({
      code: 'BROKER_PERSISTENCE',
    });
    first.child.kill('SIGINT');
    expect((await first.exited).code).toBe(0);
  });
});
