import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { totpCode } from '../../../src/clinic/dashboard/auth/totp.js';
import { PASSWORD } from './rig.js';

/**
 * What the dashboard's browser tests (browser*.test.ts) share: Debian's Chromium, headless, driven by playwright-core, TRUSTING the development CA through its NSS
 * database (the store Chromium on Linux reads, $HOME/.pki/nssdb, written with certutil), with no certificate
 * error ignored, so the `__Host-` cookie and HSTS are exercised as a browser applies them.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const CERTUTIL = '/usr/bin/certutil';
export const haveBrowser = existsSync(CHROMIUM) && existsSync(CERTUTIL);
export const ARTIFACTS = join(import.meta.dirname, '../../../test-artifacts');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Launches Chromium with a home whose NSS database trusts `caFile` (made under `dir`). */
export async function launchTrusting(dir: string, caFile: string): Promise<Browser> {
  const home = join(dir, 'home');
  const nssdb = join(home, '.pki', 'nssdb');
  await mkdir(nssdb, { recursive: true });
  execFileSync(CERTUTIL, ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  execFileSync(CERTUTIL, ['-d', `sql:${nssdb}`, '-A', '-n', 'rpm-dev-ca', '-t', 'C,,', '-i', caFile]);
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    env: { ...process.env, HOME: home },
  });
}

/** Logs in through the pages (password, then the TOTP code of an enrolled user); ends on the tile wall. */
export async function logIn(page: Page, origin: string, username: string, secret: string): Promise<void> {
  await page.goto(`${origin}/login`);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(`${origin}/mfa`);
  await page.fill('#code', totpCode(secret, Date.now()));
  await page.click('button[type=submit]');
  await page.waitForURL(`${origin}/`);
}

/** Collects console messages about the CSP or uncaught errors; a test expects none. */
export function watchConsole(page: Page, into: string[]): void {
  page.on('console', (message) => {
    if (/Content Security Policy|Uncaught|Error/i.test(message.text())) into.push(message.text());
  });
  page.on('pageerror', (error) => into.push(error.message));
}
