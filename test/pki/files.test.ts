import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  type CertificateEvent,
  CertificateWatcher,
  createDevelopmentCa,
  GatewayCredentials,
  type IssuedCredentials,
  issueGatewayCertificate,
  loadTlsCredentials,
  type TlsFiles,
  writeCertificateFile,
  writePrivateKeyFile,
} from '../../src/pki/index.js';
import { DAY, testClock } from './pki-fixtures.js';

let dir: string;
let ca: CertificateAuthority;
let gateway: IssuedCredentials;
const clock = testClock();

beforeAll(async () => {
  ca = await createDevelopmentCa({ clock });
  gateway = await issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001', validityDays: 100 });
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-pki-'));
  clock.set(testClock().now());
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

async function install(material: IssuedCredentials = gateway): Promise<TlsFiles> {
  const files = {
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'gateway.crt'),
    keyFile: join(dir, 'gateway.key'),
  };
  await writeCertificateFile(files.caFile, ca.certificatePem);
  await writeCertificateFile(files.certFile, material.certificatePem);
  await writePrivateKeyFile(files.keyFile, material.privateKeyPem, { force: true });
  return files;
}

describe('key and certificate files', () => {
  it('keys are 0600 and certificates 0644, whatever the umask', async () => {
    const previous = process.umask(0o077);
    try {
      await writePrivateKeyFile(join(dir, 'a.key'), gateway.privateKeyPem);
      await writeCertificateFile(join(dir, 'a.crt'), gateway.certificatePem);
    } finally {
      process.umask(previous);
    }
    const loose = process.umask(0o000);
    try {
      await writePrivateKeyFile(join(dir, 'b.key'), gateway.privateKeyPem);
      await writePrivateKeyFile(join(dir, 'b.key'), gateway.privateKeyPem, { force: true });
    } finally {
      process.umask(loose);
    }
    expect(await mode(join(dir, 'a.key'))).toBe(0o600);
    expect(await mode(join(dir, 'b.key'))).toBe(0o600);
    expect(await mode(join(dir, 'a.crt'))).toBe(0o644);
    expect(await readFile(join(dir, 'a.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('never overwrites a key without force; with force it replaces it whole and leaves no temporary file', async () => {
    const path = join(dir, 'gateway.key');
    await writePrivateKeyFile(path, 'first');
    await expect(writePrivateKeyFile(path, 'second')).rejects.toMatchObject({ code: 'PKI_EXISTS' });
    expect(await readFile(path, 'utf8')).toBe('first');
    await writePrivateKeyFile(path, 'third', { force: true });
    expect(await readFile(path, 'utf8')).toBe('third');
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(dir)).toEqual(['gateway.key']);
  });

  it('reports an unwritable place as PKI_IO', async () => {
    await writeFile(join(dir, 'not-a-dir'), '');
    await expect(writePrivateKeyFile(join(dir, 'not-a-dir', 'x.key'), 'k')).rejects.toMatchObject({
      code: 'PKI_IO',
    });
  });
});

describe('loadTlsCredentials', () => {
  it('returns PEM ca/cert/key ready for tls, with the identity and expiry', async () => {
    const files = await install();
    const credentials = await loadTlsCredentials(files, { clock });
    expect(credentials.cert).toBe(gateway.certificatePem);
    expect(credentials.key).toBe(gateway.privateKeyPem);
    expect(credentials.ca).toBe(ca.certificatePem);
    expect(credentials.identity).toMatchObject({ role: 'gateway', id: 'gw-demo-0001' });
    expect(credentials.expiry).toMatchObject({ status: 'ok', daysLeft: 100 });
  });

  it('accepts a certificate file that carries its chain (leaf first), as a production CA delivers it', async () => {
    const files = await install();
    await writeCertificateFile(files.certFile, `${gateway.certificatePem}${ca.certificatePem}`);
    const credentials = await loadTlsCredentials(files, { clock });
    expect(credentials.identity).toMatchObject({ role: 'gateway', id: 'gw-demo-0001' });
    expect(credentials.cert).toContain(ca.certificatePem.trim());
  });

  it.each([0o644, 0o640, 0o604, 0o660])('refuses a key file of mode %o (PKI_KEY_PERMISSIONS)', async (m) => {
    const files = await install();
    await chmod(files.keyFile, m);
    await expect(loadTlsCredentials(files, { clock })).rejects.toMatchObject({
      code: 'PKI_KEY_PERMISSIONS',
      message: expect.stringContaining('chmod 600'),
    });
  });

  it('accepts a 0400 key', async () => {
    const files = await install();
    await chmod(files.keyFile, 0o400);
    await expect(loadTlsCredentials(files, { clock })).resolves.toMatchObject({
      identity: { role: 'gateway' },
    });
  });

  it('refuses a certificate that does not match the key (PKI_MISMATCH)', async () => {
    const files = await install();
    const other = await issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001' });
    await writeCertificateFile(files.certFile, other.certificatePem);
    await expect(loadTlsCredentials(files, { clock })).rejects.toMatchObject({ code: 'PKI_MISMATCH' });
  });

  it('refuses an expired or not yet valid certificate, and flags an expiring one', async () => {
    const files = await install();
    clock.advance(100 * DAY + 1000);
    await expect(loadTlsCredentials(files, { clock })).rejects.toMatchObject({ code: 'PKI_EXPIRED' });
    clock.set(testClock().now() - DAY);
    await expect(loadTlsCredentials(files, { clock })).rejects.toMatchObject({ code: 'PKI_NOT_YET_VALID' });
    clock.set(testClock().now() + 80 * DAY);
    expect((await loadTlsCredentials(files, { clock })).expiry).toMatchObject({
      status: 'expiring',
      daysLeft: 20,
    });
  });

  it('names missing or malformed files: PKI_IO, PKI_BAD_KEY, PKI_BAD_CERTIFICATE', async () => {
    const files = await install();
    await expect(
      loadTlsCredentials({ ...files, certFile: join(dir, 'missing.crt') }, { clock }),
    ).rejects.toMatchObject({ code: 'PKI_IO' });
    await expect(
      loadTlsCredentials({ ...files, keyFile: join(dir, 'missing.key') }, { clock }),
    ).rejects.toMatchObject({ code: 'PKI_IO' });
    await writePrivateKeyFile(join(dir, 'bad.key'), 'not a key');
    await expect(
      loadTlsCredentials({ ...files, keyFile: join(dir, 'bad.key') }, { clock }),
    ).rejects.toMatchObject({
      code: 'PKI_BAD_KEY',
    });
    await writeCertificateFile(join(dir, 'bad.crt'), 'not a certificate');
    await expect(
      loadTlsCredentials({ ...files, certFile: join(dir, 'bad.crt') }, { clock }),
    ).rejects.toMatchObject({
      code: 'PKI_BAD_CERTIFICATE',
    });
    await expect(
      loadTlsCredentials({ ...files, caFile: join(dir, 'bad.crt') }, { clock }),
    ).rejects.toMatchObject({
      code: 'PKI_BAD_CERTIFICATE',
    });
  });
});

describe('CertificateWatcher', () => {
  it('re-reads the files at every load, so a renewed certificate is used at the next reconnect', async () => {
    const files = await install();
    const events: CertificateEvent[] = [];
    const watcher = new CertificateWatcher(files, { clock, onEvent: (e) => events.push(e) });
    const first = await watcher.load();
    expect(events.map((e) => e.type)).toEqual(['loaded']);
    await watcher.load();
    expect(events.map((e) => e.type)).toEqual(['loaded']);

    // 80 days on: expiring, told once.
    clock.advance(80 * DAY);
    await watcher.load();
    await watcher.load();
    expect(events.map((e) => e.type)).toEqual(['loaded', 'expiring']);

    // The renewal lands on disk (new key and certificate); the next load picks it up.
    const renewed = await issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001' });
    await install(renewed);
    const second = await watcher.load();
    expect(second.cert).toBe(renewed.certificatePem);
    expect(second.identity.sha256).not.toBe(first.identity.sha256);
    expect(events.at(-1)).toMatchObject({ type: 'changed', previous: { sha256: first.identity.sha256 } });
    expect(watcher.current?.sha256).toBe(second.identity.sha256);
  });

  it('throws load errors for the caller to retry, keeping the last good identity', async () => {
    const files = await install();
    const watcher = new CertificateWatcher(files, { clock });
    const good = await watcher.load();
    await chmod(files.keyFile, 0o644);
    await expect(watcher.load()).rejects.toMatchObject({ code: 'PKI_KEY_PERMISSIONS' });
    expect(watcher.current?.sha256).toBe(good.identity.sha256);
  });
});

describe('GatewayCredentials', () => {
  it('gives the TLS material and the signing key from the same files, both renewed at the next load', async () => {
    const files = await install();
    const credentials = new GatewayCredentials(files, { clock });
    expect(() => credentials.signing()).toThrow(expect.objectContaining({ code: 'PKI_BAD_KEY' }));
    const tls = await credentials.load();
    const first = credentials.signing();
    expect(Buffer.from(first.certificateDer).equals(new X509Certificate(tls.cert).raw)).toBe(true);
    expect(first.key.export({ format: 'pem', type: 'pkcs8' })).toBe(
      createPrivateKey(tls.key).export({ format: 'pem', type: 'pkcs8' }),
    );

    const renewed = await issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001' });
    await install(renewed);
    expect(credentials.signing()).toBe(first); // nothing changes until the next load (a reconnect)
    const next = await credentials.load();
    expect(next.cert).toBe(renewed.certificatePem);
    const signing = credentials.signing();
    expect(Buffer.from(signing.certificateDer).equals(new X509Certificate(renewed.certificatePem).raw)).toBe(
      true,
    );
    expect(signing.expiresAt).toBe(Date.parse(new X509Certificate(renewed.certificatePem).validTo));
    expect(credentials.current?.identity.sha256).toBe(next.identity.sha256);
  });

  it('keeps the last good signing material when a load fails', async () => {
    const files = await install();
    const credentials = new GatewayCredentials(files, { clock });
    await credentials.load();
    const good = credentials.signing();
    await chmod(files.keyFile, 0o644);
    await expect(credentials.load()).rejects.toMatchObject({ code: 'PKI_KEY_PERMISSIONS' });
    expect(credentials.signing()).toBe(good);
  });
});
