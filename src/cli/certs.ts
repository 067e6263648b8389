import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AuditLog } from '../audit/audit-log.js';
import { checkDataDir } from '../config/data-dir.js';
import { defaultDataDir } from '../config/paths.js';
import { UsageError } from '../errors.js';
import { clinicProfile, gatewayProfile, serverProfile } from '../pki/ca.js';
import { exists } from '../pki/files.js';
import {
  type CertificateIdentity,
  checkExpiry,
  createDevelopmentCa,
  createGatewayCsr,
  DEFAULT_LEAF_DAYS,
  identityOf,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
  loadCertificateAuthorityDir,
  MAX_LEAF_DAYS,
  PkiError,
  publicKeySha256,
  signCsr,
  writeCertificateFile,
  writePrivateKeyFile,
} from '../pki/index.js';
import { parseCommandArgs } from './args.js';
import { CRL_HELP, crlAction, REVOKE_HELP, revokeAction } from './certs-revoke.js';
import type { CommandIo } from './io.js';

const INIT_HELP = `Usage: rpm-gateway certs init [options]

Creates a DEVELOPMENT clinic CA and, signed by it, a broker, a clinic receiver and a gateway certificate,
each with its key: ca.crt ca.key broker.crt broker.key clinic.crt clinic.key gateway.crt gateway.key.
Keys are PEM PKCS#8, mode 0600; certificates mode 0644. Never ship this CA (see certs/README.md).

Options:
  --dir <dir>            where to write (default: certs/dev)
  --gateway-id <id>      the gateway's id (default: gw-demo-0001)
  --clinic-name <name>   the clinic receiver's name (default: clinic-demo)
  --server-name <dns>    an extra DNS name for the broker certificate (repeatable; localhost is always in)
  --server-ip <ip>       an extra IP address for the broker certificate (repeatable; 127.0.0.1 is always in)
  --days <n>             validity of the leaf certificates in days, 1 to ${MAX_LEAF_DAYS} (default: ${DEFAULT_LEAF_DAYS};
                         the CA: 10 years)
  --force                replace existing files (keys included) in <dir>
  --audit <file>         record the issuance in this audit log
  -h, --help             show this help`;

const CSR_HELP = `Usage: rpm-gateway certs csr --gateway-id <id> [options]

Enrolment, on the hub: makes the gateway's private key here (it never leaves the hub) and a PKCS#10
certificate request naming the gateway id. Send gateway.csr to the clinic; install the certificate it
returns as gateway.crt beside gateway.key.

Options:
  --gateway-id <id>   the gateway's id: 3-63 characters a-z 0-9 '-' (required)
  --dir <dir>         where to write gateway.key (0600) and gateway.csr (default: <data-dir>/tls)
  --force             replace an existing gateway.key
  --audit <file>      record the request in this audit log
  -h, --help          show this help`;

const SIGN_HELP = `Usage: rpm-gateway certs sign --ca-dir <dir> --csr <file> [options]

At the clinic: verifies a certificate request and issues the certificate. Only the public key and the
identity (gateway id or clinic name) are taken from the request; every extension is the CA's choice.

Options:
  --ca-dir <dir>              folder holding ca.crt and ca.key (mode 0600) (required)
  --csr <file>                the PEM certificate request (required)
  --role <gateway|clinic>     what to issue (default: gateway)
  --days <n>                  validity in days, 1 to ${MAX_LEAF_DAYS} (default: ${DEFAULT_LEAF_DAYS}; never past the CA's
                              own expiry)
  --org <name>                clinic certificates: the O= field (default: the CA's organization)
  --out <file>                where to write the certificate (default: the request's name with .crt)
  --audit <file>              record the issuance in this audit log
  -h, --help                  show this help`;

const CHECK_HELP = `Usage: rpm-gateway certs check <cert-file>... [options]

Prints the role, id and expiry status of each certificate. Exit status 1 when any is expired, not yet
valid or unreadable; 0 otherwise ('expiring' is a warning, not a failure).

Options:
  --now <iso-time>    check as of this time instead of now (e.g. 2027-01-01T00:00:00Z)
  --warn-days <n>     report 'expiring' with fewer than n days left (default: 30)
  --json              one JSON object per certificate
  -h, --help          show this help`;

export const CERTS_HELP = `Usage: rpm-gateway certs <init|csr|sign|check|revoke|crl> [options]

  init    create a development CA and broker, clinic and gateway certificates (never ship it)
  csr     on a hub: make the gateway key and a certificate request (enrolment)
  sign    at the clinic: issue a certificate for a request
  check   show a certificate's identity and expiry
  revoke  at the clinic: put a certificate on the CA's revocation list (crl.pem)
  crl     at the clinic: re-sign the revocation list before its next update

Run "rpm-gateway certs <action> --help" for the options of each. See certs/README.md.`;

const ACTIONS: Readonly<
  Record<string, { help: string; run: (argv: string[], io: CommandIo) => Promise<number> }>
> = {
  init: { help: INIT_HELP, run: initAction },
  csr: { help: CSR_HELP, run: csrAction },
  sign: { help: SIGN_HELP, run: signAction },
  check: { help: CHECK_HELP, run: checkAction },
  revoke: { help: REVOKE_HELP, run: revokeAction },
  crl: { help: CRL_HELP, run: crlAction },
};

export async function certsCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action === '-h' || action === '--help') {
    io.stdout.write(`${CERTS_HELP}\n`);
    return 0;
  }
  if (action === undefined) throw new UsageError('name one action: init, csr, sign, check, revoke or crl');
  const entry = ACTIONS[action];
  if (!entry) throw new UsageError(`unknown certs action "${action}"`);
  if (rest.includes('-h') || rest.includes('--help')) {
    io.stdout.write(`${entry.help}\n`);
    return 0;
  }
  try {
    return await entry.run(rest, io);
  } catch (error) {
    // A mistake in an action's options is explained with that action's help, not the list of actions.
    if (error instanceof UsageError && error.help === undefined) {
      throw new UsageError(`${action}: ${error.message}`, { help: entry.help });
    }
    throw error;
  }
}

const DEV_FILES = ['ca', 'broker', 'clinic', 'gateway'] as const;

async function initAction(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      dir: { type: 'string', default: join('certs', 'dev') },
      'gateway-id': { type: 'string', default: 'gw-demo-0001' },
      'clinic-name': { type: 'string', default: 'clinic-demo' },
      'server-name': { type: 'string', multiple: true, default: [] },
      'server-ip': { type: 'string', multiple: true, default: [] },
      days: { type: 'string' },
      force: { type: 'boolean', default: false },
      audit: { type: 'string' },
    },
  });
  const dir = resolve(values.dir);
  const gatewayId = values['gateway-id'];
  const clinicName = values['clinic-name'];
  const server = { dnsNames: values['server-name'], ipAddresses: values['server-ip'] };
  const validityDays = days(values.days);
  // Check every name before making any key, so a typo leaves nothing half-written behind.
  gatewayProfile(gatewayId);
  clinicProfile(clinicName, 'rpm-gateway development');
  serverProfile(server);
  if (!values.force) {
    const present: string[] = [];
    for (const name of DEV_FILES) {
      for (const file of [`${name}.crt`, `${name}.key`]) {
        if (await exists(join(dir, file))) present.push(file);
      }
    }
    if (present.length > 0) {
      throw new PkiError(
        'PKI_EXISTS',
        `${dir} already holds ${present.join(', ')}; refusing to replace keys (use --force)`,
      );
    }
  }

  const ca = await createDevelopmentCa();
  const issued = {
    ca,
    broker: await issueServerCertificate(ca, { ...server, validityDays }),
    clinic: await issueClinicCertificate(ca, { name: clinicName, validityDays }),
    gateway: await issueGatewayCertificate(ca, { gatewayId, validityDays }),
  };
  const what = {
    ca: 'development CA',
    broker: 'broker (server)',
    clinic: 'clinic receiver',
    gateway: 'gateway',
  };
  const audit = values.audit ? new AuditLog(values.audit) : undefined;
  const lines: string[] = [];
  for (const name of DEV_FILES) {
    const { certificatePem, privateKeyPem, certificate } = issued[name];
    const keyFile = join(dir, `${name}.key`);
    const certFile = join(dir, `${name}.crt`);
    await writePrivateKeyFile(keyFile, privateKeyPem, { force: values.force });
    await writeCertificateFile(certFile, certificatePem);
    const identity = identityOf(certificate);
    lines.push(
      `wrote ${certFile} (0644)  ${what[name]}: ${certificate.subject}, until ${certificate.notAfter.toISOString()}`,
      `wrote ${keyFile} (0600)  its private key`,
    );
    audit?.record(name === 'ca' ? 'cert.ca-created' : 'cert.issued', 'cli', auditDetails(identity, certFile));
  }
  io.stdout.write(`${lines.join('\n')}\n`);
  io.stderr.write(
    'WARNING: this is a DEVELOPMENT CA. Its key sits unprotected on this disk: never ship it, never install ' +
      'ca.crt on a production hub or broker. See certs/README.md for production enrolment.\n',
  );
  return 0;
}

async function csrAction(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      'gateway-id': { type: 'string' },
      dir: { type: 'string' },
      force: { type: 'boolean', default: false },
      audit: { type: 'string' },
    },
  });
  const gatewayId = values['gateway-id'];
  if (!gatewayId) throw new UsageError('--gateway-id is required');
  if (values.dir === undefined) checkDataDir(defaultDataDir(io.env));
  const dir = resolve(values.dir ?? join(defaultDataDir(io.env), 'tls'));
  const keyFile = join(dir, 'gateway.key');
  const csrFile = join(dir, 'gateway.csr');
  const request = await createGatewayCsr(gatewayId);
  await writePrivateKeyFile(keyFile, request.privateKeyPem, { force: values.force });
  await writeCertificateFile(csrFile, request.csrPem);
  if (values.audit) {
    new AuditLog(values.audit).record('cert.requested', 'cli', {
      role: 'gateway',
      id: gatewayId,
      csr: csrFile,
    });
  }
  io.stdout.write(
    [
      `wrote ${keyFile} (0600)  the gateway's private key: it stays on this hub`,
      `wrote ${csrFile} (0644)  the certificate request for ${gatewayId}`,
      `public key SHA-256: ${request.publicKeySha256}`,
      '  (the clinic sees the same value when it signs: compare them over another channel)',
      'next: have the clinic sign it (rpm-gateway certs sign --ca-dir <ca> --csr gateway.csr) and install the',
      `certificate as ${join(dir, 'gateway.crt')}`,
    ].join('\n') + '\n',
  );
  return 0;
}

async function signAction(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      'ca-dir': { type: 'string' },
      csr: { type: 'string' },
      role: { type: 'string', default: 'gateway' },
      days: { type: 'string' },
      org: { type: 'string' },
      out: { type: 'string' },
      audit: { type: 'string' },
    },
  });
  if (!values['ca-dir']) throw new UsageError('--ca-dir is required');
  if (!values.csr) throw new UsageError('--csr is required');
  const role = values.role;
  if (role !== 'gateway' && role !== 'clinic') throw new UsageError('--role is gateway or clinic');
  const validityDays = days(values.days);
  const ca = await loadCertificateAuthorityDir(values['ca-dir']);
  let csrPem: string;
  try {
    csrPem = await readFile(values.csr, 'utf8');
  } catch (error) {
    throw new PkiError('PKI_IO', `cannot read the certificate request ${values.csr}`, { cause: error });
  }
  const issued = await signCsr(ca, csrPem, {
    role,
    validityDays,
    ...(values.org === undefined ? {} : { organization: values.org }),
  });
  const out = values.out ?? values.csr.replace(/(\.csr|\.pem)?$/, '.crt');
  await writeCertificateFile(out, issued.certificatePem);
  const identity = identityOf(issued.certificate);
  if (values.audit) new AuditLog(values.audit).record('cert.issued', 'cli', auditDetails(identity, out));
  io.stdout.write(
    `issued a ${identity.role} certificate for ${identity.id}: ${out} (serial ${identity.serialNumber}, ` +
      `until ${identity.notAfter.toISOString()})\n` +
      `public key SHA-256: ${publicKeySha256(issued.certificate.publicKey)} (must match what the hub printed)\n`,
  );
  return 0;
}

async function checkAction(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: {
      now: { type: 'string' },
      'warn-days': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length === 0) throw new UsageError('name at least one certificate file');
  const now = values.now === undefined ? Date.now() : Date.parse(values.now);
  if (Number.isNaN(now)) throw new UsageError(`--now ${JSON.stringify(values.now)} is not an ISO-8601 time`);
  const warnDays =
    values['warn-days'] === undefined ? 30 : wholeNumber(values['warn-days'], '--warn-days', 0);
  let failed = false;
  for (const file of positionals) {
    try {
      const pem = await readFile(file, 'utf8').catch((error: unknown) => {
        throw new PkiError('PKI_IO', `cannot read ${file}`, { cause: error });
      });
      const identity = identityOf(pem);
      const expiry = checkExpiry(pem, now, { warnDays });
      if (expiry.status === 'expired' || expiry.status === 'not-yet-valid') failed = true;
      if (values.json) {
        io.stdout.write(
          `${JSON.stringify({ file, role: identity.role, id: identity.id, subject: identity.subject, serialNumber: identity.serialNumber, sha256: identity.sha256, ...expiry })}\n`,
        );
      } else {
        const when =
          expiry.status === 'not-yet-valid'
            ? `valid from ${expiry.notBefore.toISOString()}`
            : `${expiry.status === 'expired' ? 'expired' : 'expires'} ${expiry.notAfter.toISOString()} (${expiry.daysLeft} days left)`;
        io.stdout.write(`${file}: ${identity.role} ${identity.id ?? '-'}  ${expiry.status}, ${when}\n`);
      }
    } catch (error) {
      if (!(error instanceof PkiError)) throw error;
      failed = true;
      if (values.json) io.stdout.write(`${JSON.stringify({ file, error: error.toJSON() })}\n`);
      else io.stderr.write(`${file}: ${error.message} [${error.code}]\n`);
    }
  }
  return failed ? 1 : 0;
}

function auditDetails(identity: CertificateIdentity, file: string) {
  return {
    role: identity.role,
    id: identity.id,
    subject: identity.subject,
    serial: identity.serialNumber,
    sha256: identity.sha256,
    notAfter: identity.notAfter.toISOString(),
    file,
  };
}

/** --days: refused (not shortened) beyond MAX_LEAF_DAYS, so a typo never issues a surprising certificate. */
function days(value: string | undefined): number {
  return value === undefined ? DEFAULT_LEAF_DAYS : wholeNumber(value, '--days', 1, MAX_LEAF_DAYS);
}

function wholeNumber(value: string, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${option} must be a whole number ${range} (got ${JSON.stringify(value)})`);
  }
  return n;
}
