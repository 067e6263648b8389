import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import {
  CrlFile,
  createDevelopmentCa,
  issueGatewayCertificate,
  parseRevocationList,
  revokeCertificate,
} from '../../src/pki/index.js';
import { runCli } from '../support/cli.js';

/**
 * `certs revoke` / `certs crl` and the CRLs they sign, checked by OpenSSL itself (`openssl crl -verify`,
 * `openssl verify -crl_check`): an independent reader of RFC 5280 section 5.
 */
const run = promisify(execFile);
let dir: string;
let caDir: string;
let caPem: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-crl-'));
  caDir = join(dir, 'ca');
  const init = await runCli(['certs', 'init', '--dir', caDir], { env: { RPM_GATEWAY_DATA_DIR: dir } });
  expect(init.code).toBe(0);
  caPem = await readFile(join(caDir, 'ca.crt'), 'utf8');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const cli = (args: string[]) => runCli(['certs', ...args], { env: { RPM_GATEWAY_DATA_DIR: dir } });

async function opensslCrl(file: string): Promise<string> {
  const { stdout, stderr } = await run('openssl', [
    'crl',
    '-in',
    file,
    '-CAfile',
    join(caDir, 'ca.crt'),
    '-noout',
    '-text',
  ]);
  expect(stderr).toMatch(/verify OK/);
  return stdout;
}

async function opensslVerify(certificate: string): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout } = await run('openssl', [
      'verify',
      '-crl_check',
      '-CAfile',
      join(caDir, 'ca.crt'),
      '-CRLfile',
      join(caDir, 'crl.pem'),
      certificate,
    ]);
    return { ok: true, out: stdout };
  } catch (error) {
    const e = error as { stdout: string; stderr: string };
    return { ok: false, out: `${e.stdout}${e.stderr}` };
  }
}

describe('rpm-gateway certs revoke', () => {
  it('signs a v2 CRL OpenSSL verifies, naming the certificate, with a growing CRL number', async () => {
    const audit = join(dir, 'audit.log');
    const first = await cli([
      'revoke',
      join(caDir, 'gateway.crt'),
      '--ca-dir',
      caDir,
      '--reason',
      'keyCompromise',
      '--audit',
      audit,
    ]);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^revoked gateway gw-demo-0001 \(serial [0-9a-f]+, keyCompromise\)/);
    expect(first.stdout).toMatch(/CRL number 1, 1 revoked, next update \S+/);
    const text = await opensslCrl(join(caDir, 'crl.pem'));
    expect(text).toMatch(/Version 2/);
    expect(text).toMatch(/X509v3 CRL Number:\s+1\b/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    expect(text).toMatch(/Key Compromise/);
    const serial = (
      await run('openssl', ['x509', '-in', join(caDir, 'gateway.crt'), '-noout', '-serial'])
    ).stdout
      .trim()
      .replace('serial=', '');
    expect(text).toContain(`Serial Number: ${serial}`);
    // nextUpdate: 30 days by default
    const list = parseRevocationList(
      await readFile(join(caDir, 'crl.pem'), 'utf8'),
      await readFile(join(caDir, 'ca.crt')),
    );
    expect(list.nextUpdate.getTime() - list.thisUpdate.getTime()).toBe(30 * 86_400_000);
    expect(await opensslVerify(join(caDir, 'gateway.crt'))).toMatchObject({
      ok: false,
      out: expect.stringMatching(/certificate revoked/),
    });
    expect(await opensslVerify(join(caDir, 'clinic.crt'))).toMatchObject({ ok: true });

    const second = await cli(['revoke', join(caDir, 'clinic.crt'), '--ca-dir', caDir, '--days', '7']);
    expect(second.stdout).toMatch(/CRL number 2, 2 revoked/);
    expect(await opensslCrl(join(caDir, 'crl.pem'))).toMatch(/X509v3 CRL Number:\s+2\b/);
    expect(await opensslVerify(join(caDir, 'gateway.crt'))).toMatchObject({ ok: false }); // still on it

    const again = await cli(['revoke', join(caDir, 'gateway.crt'), '--ca-dir', caDir]);
    expect(again).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/was already revoked .* is unchanged/),
    });
    expect(await opensslCrl(join(caDir, 'crl.pem'))).toMatch(/X509v3 CRL Number:\s+2\b/);
    expect(new AuditLog(audit).verify().entries).toBe(1);
    expect(await readFile(audit, 'utf8')).toMatch(/"type":"cert\.revoked"/);
  });

  it('refuses a certificate another CA issued, bad reasons and bad --days', async () => {
    const other = await createDevelopmentCa({ commonName: 'someone else' });
    const stranger = await issueGatewayCertificate(other, { gatewayId: 'gw-demo-0001' });
    await writeFile(join(dir, 'stranger.crt'), stranger.certificatePem);
    const refused = await cli(['revoke', join(dir, 'stranger.crt'), '--ca-dir', caDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/PKI_MISMATCH/);
    expect(
      (await cli(['revoke', join(caDir, 'gateway.crt'), '--ca-dir', caDir, '--reason', 'nope'])).code,
    ).toBe(2);
    expect((await cli(['revoke', join(caDir, 'gateway.crt'), '--ca-dir', caDir, '--days', '0'])).code).toBe(
      2,
    );
    expect((await cli(['revoke', join(caDir, 'gateway.crt'), '--ca-dir', caDir, '--days', '999'])).code).toBe(
      2,
    );
    expect((await cli(['revoke', '--ca-dir', caDir])).code).toBe(2);
    expect((await cli(['revoke', join(caDir, 'gateway.crt')])).code).toBe(2);
  });
});

describe('rpm-gateway certs crl', () => {
  it('re-signs the list with the same entries, the next number and a fresh nextUpdate', async () => {
    await cli(['revoke', join(caDir, 'gateway.crt'), '--ca-dir', caDir]);
    const before = parseRevocationList(
      await readFile(join(caDir, 'crl.pem'), 'utf8'),
      await readFile(join(caDir, 'ca.crt')),
    );
    const renewed = await cli(['crl', '--ca-dir', caDir, '--days', '60']);
    expect(renewed.stdout).toMatch(/CRL number 2, 1 revoked/);
    const after = parseRevocationList(
      await readFile(join(caDir, 'crl.pem'), 'utf8'),
      await readFile(join(caDir, 'ca.crt')),
    );
    expect([...after.entries.keys()]).toEqual([...before.entries.keys()]);
    expect(after.nextUpdate.getTime() - after.thisUpdate.getTime()).toBe(60 * 86_400_000);
    expect(await opensslVerify(join(caDir, 'gateway.crt'))).toMatchObject({ ok: false });
  });

  it('signs an empty list when there is none yet', async () => {
    expect((await cli(['crl', '--ca-dir', caDir])).stdout).toMatch(/CRL number 1, 0 revoked/);
    expect(await opensslVerify(join(caDir, 'gateway.crt'))).toMatchObject({ ok: true });
  });
});

describe('parseRevocationList and CrlFile', () => {
  it('refuses a CRL of another CA and an altered one', async () => {
    await cli(['revoke', join(caDir, 'gateway.crt'), '--ca-dir', caDir]);
    const pem = await readFile(join(caDir, 'crl.pem'), 'utf8');
    const other = await createDevelopmentCa({ commonName: 'someone else' });
    expect(() => parseRevocationList(pem, other.certificatePem)).toThrow(
      expect.objectContaining({ code: 'PKI_BAD_CRL' }),
    );
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    // the last digit of thisUpdate's seconds (UTCTime YYMMDDhhmmssZ): still a valid CRL, no longer the signed one
    const at = der.indexOf(Buffer.from([0x17, 0x0d])) + 2 + 11;
    der[at] = (der[at] ?? 0) ^ 0x01;
    expect(() => parseRevocationList(new Uint8Array(der), caPem)).toThrow(/signature does not verify/);
  });

  it('keeps the last good list in force when the file disappears or turns bad, and reports it', async () => {
    const file = join(caDir, 'crl.pem');
    const states: string[] = [];
    const crl = new CrlFile(file, caPem, (state) => states.push(state.status));
    expect(crl.current().status).toBe('absent');
    await revokeCertificate(caDir, await readFile(join(caDir, 'gateway.crt'), 'utf8'), 'superseded');
    expect(crl.list()?.entries.size).toBe(1);
    await writeFile(file, 'not a CRL');
    expect(crl.current()).toMatchObject({ status: 'unusable', list: { number: 1n } });
    await rm(file);
    expect(crl.current()).toMatchObject({ status: 'unusable', list: { number: 1n } });
    expect(crl.list()?.entries.size).toBe(1);
    expect(states).toEqual(['absent', 'loaded', 'unusable', 'unusable']);
  });
});
