import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signRevocationList } from '../../../src/pki/crl.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../../src/pki/dev-pki.js';
import { freePort } from '../../runtime/hub-rig.js';
import { type CliProcess, spawnCli } from '../../support/cli-process.js';
import { until } from '../../support/until.js';

/**
 * The clinic's commands as an administrator runs them: the built CLI (dist/) as child processes, a real
 * development PKI, a configuration file written as config/clinic.example.yaml shows it.
 */
export const CLINIC_NAME = 'clinic-test'; // the dev PKI's clinic certificate (src/pki/dev-pki.ts)

export interface ClinicRig {
  readonly root: string;
  readonly pki: DevelopmentPki;
  readonly gatewayCerts: string;
  readonly crl: string;
  readonly port: number;
  readonly dataDir: string;
  readonly config: string;
}

/**
 * A PKI with an empty CRL, a free port and a configuration with broker:, intake: and an SQLite database in
 * `root`/data.
 */
export async function clinicRig(root: string, extra = ''): Promise<ClinicRig> {
  const pki = await createDevelopmentPki(join(root, 'pki'), { clinicName: CLINIC_NAME });
  // The signers' inventory: the dev PKI's gateway; tests add their fleets (writeFleetCertificates).
  const gatewayCerts = join(root, 'gateways');
  mkdirSync(gatewayCerts, { recursive: true });
  writeFileSync(join(gatewayCerts, 'gateway.crt'), pki.pem.gateway);
  const port = await freePort();
  const dataDir = join(root, 'data');
  const crl = join(root, 'pki', 'ca.crl');
  const config = join(root, 'clinic.yaml');
  writeFileSync(crl, (await signRevocationList(pki.ca, { entries: [], number: 1n })).pem);
  writeFileSync(
    config,
    [
      'clinic:',
      `  name: ${CLINIC_NAME}`,
      '  timeZone: Europe/Berlin',
      'paths:',
      `  dataDir: ${dataDir}`,
      'pki:',
      `  ca: ${pki.files.ca}`,
      `  crl: ${crl}`,
      `  gatewayCerts: ${gatewayCerts}`,
      'broker:',
      `  port: ${port}`,
      `  cert: ${pki.files.broker}`,
      `  key: { file: ${pki.files.brokerKey} }`,
      'intake:',
      `  cert: ${pki.files.clinic}`,
      `  key: { file: ${pki.files.clinicKey} }`,
      'log:',
      '  level: debug',
      extra,
    ].join('\n'),
  );
  return { root, pki, gatewayCerts, crl, port, dataDir, config };
}

export interface LogEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

export const events = (run: CliProcess): LogEvent[] => run.lines.map((line) => JSON.parse(line) as LogEvent);
export const logged = (run: CliProcess, event: string): LogEvent | undefined =>
  events(run).find((e) => e.event === event);

/** Children the test started, killed (SIGKILL) after each test if still running. */
export class Children {
  private readonly running: ChildProcess[] = [];

  spawn(args: readonly string[], env: NodeJS.ProcessEnv): CliProcess {
    const run = spawnCli(args, { PATH: process.env.PATH, ...env });
    this.running.push(run.child);
    return run;
  }

  killAll(): void {
    for (const child of this.running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Waits for a log event of a running command; fails early, with its stderr, if it exits first. */
export async function waitFor(run: CliProcess, event: string, timeoutMs = 20_000): Promise<LogEvent> {
  let exited = false;
  void run.exited.then(() => {
    exited = true;
  });
  await until(
    `${event} from rpm-gateway ${run.child.spawnargs.slice(2).join(' ')}`,
    () => {
      if (logged(run, event)) return true;
      if (exited) throw new Error(`exited before ${event}: ${run.stderr}\n${run.lines.join('\n')}`);
      return false;
    },
    { timeoutMs },
  );
  return logged(run, event) as LogEvent;
}
