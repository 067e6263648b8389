import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { runCli } from '../support/cli.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-cli-certs-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const cli = (args: string[]) => runCli(args, { env: { RPM_GATEWAY_DATA_DIR: dir } });

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const DEV_FILES = [
  'broker.crt',
  'broker.key',
  'ca.crt',
  'ca.key',
  'clinic.crt',
  'clinic.key',
  'gateway.crt',
  'gateway.key',
];

describe('rpm-gateway certs', () => {
  it('has help for the command and for each action, and is listed by rpm-gateway --help', async () => {
    expect((await cli(['--help'])).stdout).toMatch(/certs\s+development CA/);
    expect((await cli(['certs', '--help'])).stdout).toMatch(
      /Usage: rpm-gateway certs <init\|csr\|sign\|check\|revoke\|crl>/,
    );
    for (const action of ['init', 'csr', 'sign', 'check', 'revoke', 'crl']) {
      const result = await cli(['certs', action, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: rpm-gateway certs ${action}`));
    }
  });

  it('reports usage mistakes with exit status 2', async () => {
    expect((await cli(['certs'])).code).toBe(2);
    expect((await cli(['certs', 'bogus'])).code).toBe(2);
    expect((await cli(['certs', 'init', '--dir', dir, '--days', '0'])).code).toBe(2);
    expect((await cli(['certs', 'init', '--nope'])).code).toBe(2);
    expect((await cli(['certs', 'csr'])).code).toBe(2);
    expect((await cli(['certs', 'sign', '--ca-dir', dir])).code).toBe(2);
    expect((await cli(['certs', 'sign', '--ca-dir', dir, '--csr', 'x', '--role', 'server'])).code).toBe(2);
    expect((await cli(['certs', 'check'])).code).toBe(2);
    expect((await cli(['certs', 'check', 'x.crt', '--now', 'yesterday'])).code).toBe(2);
  });

  it('init writes the development CA and three leaf certificates, keys 0600, certificates 0644', async () => {
    const out = join(dir, 'certs', 'dev');
    const audit = join(dir, 'audit.log');
    const result = await cli([
      'certs',
      'init',
      '--dir',
      out,
      '--server-name',
      'broker.local',
      '--server-ip',
      '10.1.2.3',
      '--gateway-id',
      'gw-test-0001',
      '--audit',
      audit,
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/WARNING: this is a DEVELOPMENT CA.*never ship it/);
    expect((await readdir(out)).sort()).toEqual(DEV_FILES);
    for (const file of DEV_FILES) {
      expect(await mode(join(out, file))).toBe(file.endsWith('.key') ? 0o600 : 0o644);
      expect(result.stdout).toContain(join(out, file));
    }
    const ca = new NodeX509(await readFile(join(out, 'ca.crt')));
    for (const leaf of ['broker', 'clinic', 'gateway']) {
      const cert = new NodeX509(await readFile(join(out, `${leaf}.crt`)));
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.checkIssued(ca)).toBe(true);
    }
    const broker = new NodeX509(await readFile(join(out, 'broker.crt')));
    expect(broker.subjectAltName).toBe(
      'DNS:localhost, DNS:broker.local, IP Address:127.0.0.1, IP Address:10.1.2.3',
    );
    expect(new NodeX509(await readFile(join(out, 'gateway.crt'))).subject).toBe(
      'OU=gateway\nCN=gw-test-0001',
    );
    expect(new AuditLog(audit).verify().entries).toBe(4);
    expect(await readFile(audit, 'utf8')).toMatch(/"type":"cert.issued".*"id":"gw-test-0001"/);
  });

  it('init never replaces existing keys without --force, and checks names before writing anything', async () => {
    expect((await cli(['certs', 'init', '--dir', dir, '--gateway-id', 'Bad/Id'])).stderr).toMatch(
      /PKI_INVALID_ID/,
    );
    expect(await readdir(dir)).toEqual([]);
    expect((await cli(['certs', 'init', '--dir', dir])).code).toBe(0);
    const caKey = await readFile(join(dir, 'ca.key'), 'utf8');
    const again = await cli(['certs', 'init', '--dir', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to replace keys \(use --force\) \[PKI_EXISTS\]/);
    expect(await readFile(join(dir, 'ca.key'), 'utf8')).toBe(caKey);
    expect((await cli(['certs', 'init', '--dir', dir, '--force'])).code).toBe(0);
    expect(await readFile(join(dir, 'ca.key'), 'utf8')).not.toBe(caKey);
    expect(await mode(join(dir, 'ca.key'))).toBe(0o600);
  });

  it('csr on the hub, sign at the clinic, check: the enrolment flow end to end', async () => {
    const caDir = join(dir, 'clinic-ca');
    expect((await cli(['certs', 'init', '--dir', caDir])).code).toBe(0);
    const csr = await cli(['certs', 'csr', '--gateway-id', 'gw-0042']);
    expect(csr.code).toBe(0);
    const hub = join(dir, 'tls'); // <data-dir>/tls by default
    expect(await mode(join(hub, 'gateway.key'))).toBe(0o600);
    expect(await readFile(join(hub, 'gateway.csr'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    expect((await cli(['certs', 'csr', '--gateway-id', 'gw-0042'])).stderr).toMatch(/PKI_EXISTS/);

    const audit = join(dir, 'clinic-audit.log');
    const sign = await cli([
      'certs',
      'sign',
      '--ca-dir',
      caDir,
      '--csr',
      join(hub, 'gateway.csr'),
      '--days',
      '90',
      '--audit',
      audit,
    ]);
    expect(sign.code).toBe(0);
    expect(sign.stdout).toMatch(/issued a gateway certificate for gw-0042: .*gateway\.crt/);
    // The operator compares the public key fingerprint the hub printed with the one the CA signed.
    const fingerprint = /public key SHA-256: ([0-9a-f]{64})/;
    expect(sign.stdout.match(fingerprint)?.[1]).toBe(csr.stdout.match(fingerprint)?.[1]);
    const cert = new NodeX509(await readFile(join(hub, 'gateway.crt')));
    const { createPrivateKey } = await import('node:crypto');
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(join(hub, 'gateway.key'))))).toBe(true);
    expect(await mode(join(hub, 'gateway.crt'))).toBe(0o644);
    expect(new AuditLog(audit).verify().entries).toBe(1);

    const check = await cli(['certs', 'check', join(hub, 'gateway.crt'), join(caDir, 'broker.crt')]);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/gateway\.crt: gateway gw-0042 {2}ok, expires .* \((89|90) days left\)/);
    expect(check.stdout).toMatch(/broker\.crt: server localhost {2}ok/);
  });

  it('check exits 1 for an expired or not yet valid certificate; expiring is only a warning', async () => {
    expect((await cli(['certs', 'init', '--dir', dir, '--days', '40'])).code).toBe(0);
    const file = join(dir, 'gateway.crt');
    const day = 86_400_000;
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const expiring = await cli(['certs', 'check', file, '--now', at(20 * day)]);
    expect([expiring.code, expiring.stdout]).toEqual([0, expect.stringMatching(/expiring, expires/)]);
    const expired = await cli(['certs', 'check', file, '--now', at(41 * day)]);
    expect([expired.code, expired.stdout]).toEqual([1, expect.stringMatching(/expired, expired/)]);
    const early = await cli(['certs', 'check', file, '--now', at(-day)]);
    expect([early.code, early.stdout]).toEqual([1, expect.stringMatching(/not-yet-valid, valid from/)]);
    const json = await cli(['certs', 'check', file, '--json', '--warn-days', '60']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      role: 'gateway',
      id: 'gw-demo-0001',
      status: 'expiring',
    });
    const missing = await cli(['certs', 'check', join(dir, 'nope.crt'), file]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.crt: cannot read .* \[PKI_IO\]/);
    expect(missing.stdout).toMatch(/gateway\.crt: gateway gw-demo-0001/);
  });

  it('sign refuses a CA key readable by others, and a tampered request', async () => {
    expect((await cli(['certs', 'init', '--dir', dir])).code).toBe(0);
    expect((await cli(['certs', 'csr', '--gateway-id', 'gw-0043', '--dir', join(dir, 'hub')])).code).toBe(0);
    const csrFile = join(dir, 'hub', 'gateway.csr');
    await chmod(join(dir, 'ca.key'), 0o644);
    const loose = await cli(['certs', 'sign', '--ca-dir', dir, '--csr', csrFile]);
    expect([loose.code, loose.stderr]).toEqual([
      1,
      expect.stringMatching(/chmod 600.*\[PKI_KEY_PERMISSIONS\]/),
    ]);
    await chmod(join(dir, 'ca.key'), 0o600);
    const pem = await readFile(csrFile, 'utf8');
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const tampered = Buffer.from(der.toString('latin1').replaceAll('gw-0043', 'gw-0666'), 'latin1');
    const tamperedFile = join(dir, 'tampered.csr');
    await writeFile(
      tamperedFile,
      `-----BEGIN CERTIFICATE REQUEST-----\n${tampered.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`,
    );
    const bad = await cli(['certs', 'sign', '--ca-dir', dir, '--csr', tamperedFile]);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/does not verify.*\[PKI_BAD_CSR\]/)]);
    expect(await readdir(dir)).not.toContain('tampered.crt');
  });

  it('sign refuses a validity beyond 825 days (or not a whole number) as a usage error, and writes nothing', async () => {
    expect((await cli(['certs', 'init', '--dir', dir])).code).toBe(0);
    expect((await cli(['certs', 'csr', '--gateway-id', 'gw-0044', '--dir', join(dir, 'hub')])).code).toBe(0);
    const csrFile = join(dir, 'hub', 'gateway.csr');
    for (const days of ['99999999', '826', '0', '-5', '1.5', 'ten']) {
      const result = await cli(['certs', 'sign', '--ca-dir', dir, '--csr', csrFile, '--days', days]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `rpm-gateway certs: sign: --days must be a whole number from 1 to 825 (got "${days}")\n\nUsage: rpm-gateway certs sign`,
      );
      expect(await readdir(join(dir, 'hub'))).not.toContain('gateway.crt');
    }
    const init = await cli(['certs', 'init', '--dir', join(dir, 'other'), '--days', '99999999']);
    expect(init.code).toBe(2);
    expect(await readdir(dir)).not.toContain('other');
    const longest = await cli(['certs', 'sign', '--ca-dir', dir, '--csr', csrFile, '--days', '825']);
    expect(longest.code).toBe(0);
    const text = execFileSync(
      'openssl',
      ['x509', '-noout', '-text', '-in', join(dir, 'hub', 'gateway.crt')],
      {
        encoding: 'utf8',
      },
    );
    expect(text).toMatch(/Not After : /);
    expect(text).not.toMatch(/Bad time value/);
  });

  it('check refuses a certificate whose outer DER length was altered, as OpenSSL does', async () => {
    expect((await cli(['certs', 'init', '--dir', dir])).code).toBe(0);
    const pem = await readFile(join(dir, 'gateway.crt'), 'utf8');
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    expect(der.subarray(0, 2)).toEqual(Buffer.from([0x30, 0x82])); // SEQUENCE, two length octets
    const length = der.readUInt16BE(2);
    const withLength = (bytes: Buffer, value: number) => {
      const copy = Buffer.from(bytes);
      copy.writeUInt16BE(value, 2);
      return copy;
    };
    const altered = {
      shorter: withLength(der, length - 1),
      longer: withLength(der, length + 1),
      'longer, padded': withLength(Buffer.concat([der, Buffer.from([0])]), length + 1),
      'shorter, cut': withLength(der.subarray(0, -1), length - 1),
    };
    for (const [name, bytes] of Object.entries(altered)) {
      const derFile = join(dir, `${name}.der`);
      await writeFile(derFile, bytes);
      const byOpenSsl = spawnSync('openssl', ['x509', '-inform', 'DER', '-in', derFile, '-noout']);
      expect(byOpenSsl.status, `openssl on ${name}`).not.toBe(0);
      const pemFile = join(dir, `${name}.crt`);
      await writeFile(
        pemFile,
        `-----BEGIN CERTIFICATE-----\n${bytes.toString('base64')}\n-----END CERTIFICATE-----\n`,
      );
      const check = await cli(['certs', 'check', pemFile]);
      expect([name, check.code, check.stdout]).toEqual([name, 1, '']);
      expect(check.stderr).toMatch(
        /is not a (valid DER|readable) X\.509 certificate.*\[PKI_BAD_CERTIFICATE\]/,
      );
    }
    // Bytes after the certificate, and a long-form outer length, are not DER (RFC 5280 4.1, X.690 10.1).
    for (const bytes of [
      Buffer.concat([der, Buffer.from([0, 0])]),
      Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)]),
    ]) {
      const file = join(dir, 'not-der.crt');
      await writeFile(
        file,
        `-----BEGIN CERTIFICATE-----\n${bytes.toString('base64')}\n-----END CERTIFICATE-----\n`,
      );
      expect((await cli(['certs', 'check', file])).stderr).toMatch(
        /not a valid DER X\.509.*\[PKI_BAD_CERTIFICATE\]/,
      );
    }
    expect((await cli(['certs', 'check', join(dir, 'gateway.crt')])).code).toBe(0);
  });
});
