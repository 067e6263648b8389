import { readFile } from 'node:fs/promises';
import { AuditLog } from '../audit/audit-log.js';
import { UsageError } from '../errors.js';
import {
  CRL_FILE,
  type CrlUpdate,
  DEFAULT_CRL_DAYS,
  identityOf,
  PkiError,
  REVOCATION_REASONS,
  type RevocationReason,
  renewRevocationList,
  revokeCertificate,
} from '../pki/index.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

/** `certs revoke` and `certs crl`: the CA's certificate revocation list (certs/README.md, "Revocation"). */
export const REVOKE_HELP = `Usage: rpm-gateway certs revoke <cert-file> --ca-dir <dir> [options]

At the clinic: puts a certificate the CA issued on the CA's certificate revocation list and signs the new
list (an X.509 v2 CRL, RFC 5280 section 5) into <ca-dir>/${CRL_FILE}. The embedded broker re-reads that file
at its next connection and refuses the certificate (audit reason "revoked"); the clinic's gateway directory
refuses it as a signer. Revocation is final.

The CRL is valid for --days days (its nextUpdate). Once nextUpdate has passed, OpenSSL (under the broker,
Mosquitto and most others) refuses EVERY client certificate: re-sign it before then with
"rpm-gateway certs crl --ca-dir <dir>" (e.g. weekly from cron or a systemd timer).

Options:
  --ca-dir <dir>      folder holding ca.crt and ca.key (mode 0600) (required)
  --reason <reason>   ${REVOCATION_REASONS.join(', ')}
                      (default: unspecified)
  --days <n>          days until the CRL's nextUpdate, 1-366 (default: ${DEFAULT_CRL_DAYS})
  --crl <file>        the CRL file (default: <ca-dir>/${CRL_FILE})
  --audit <file>      record the revocation in this audit log
  -h, --help          show this help`;

export const CRL_HELP = `Usage: rpm-gateway certs crl --ca-dir <dir> [options]

At the clinic: signs the CA's certificate revocation list again with the same entries, a new nextUpdate and
the next CRL number, into <ca-dir>/${CRL_FILE} (an empty list if there is none yet). Run it well before the
current list's nextUpdate: after that, OpenSSL refuses every client certificate (CRL_HAS_EXPIRED).

Options:
  --ca-dir <dir>      folder holding ca.crt and ca.key (mode 0600) (required)
  --days <n>          days until nextUpdate, 1-366 (default: ${DEFAULT_CRL_DAYS})
  --crl <file>        the CRL file (default: <ca-dir>/${CRL_FILE})
  --audit <file>      record the new CRL in this audit log
  -h, --help          show this help`;

export async function revokeAction(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'ca-dir': { type: 'string' },
      reason: { type: 'string', default: 'unspecified' },
      days: { type: 'string' },
      crl: { type: 'string' },
      audit: { type: 'string' },
    },
  });
  const caDir = values['ca-dir'];
  if (!caDir) throw new UsageError('--ca-dir is required');
  if (positionals.length !== 1) throw new UsageError('name exactly one certificate file to revoke');
  const reason = values.reason;
  if (!isReason(reason)) throw new UsageError(`--reason is one of ${REVOCATION_REASONS.join(', ')}`);
  const file = positionals[0] as string;
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new PkiError('PKI_IO', `cannot read the certificate ${file}`, { cause: error });
  }
  const identity = identityOf(pem);
  const update = await revokeCertificate(caDir, pem, reason, crlOptions(values));
  if (update.alreadyRevoked) {
    io.stdout.write(
      `${file} (serial ${identity.serialNumber}) was already revoked on ` +
        `${update.entry?.revocationDate.toISOString()}; ${update.file} is unchanged\n`,
    );
    return 0;
  }
  if (values.audit) {
    new AuditLog(values.audit).record('cert.revoked', 'cli', {
      role: identity.role,
      id: identity.id,
      subject: identity.subject,
      serial: identity.serialNumber,
      reason,
      crl: update.file,
      crlNumber: update.list.number.toString(),
    });
  }
  io.stdout.write(
    `revoked ${identity.role} ${identity.id ?? identity.subject} (serial ${identity.serialNumber}, ${reason})\n` +
      describe(update),
  );
  return 0;
}

export async function crlAction(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      'ca-dir': { type: 'string' },
      days: { type: 'string' },
      crl: { type: 'string' },
      audit: { type: 'string' },
    },
  });
  const caDir = values['ca-dir'];
  if (!caDir) throw new UsageError('--ca-dir is required');
  const update = await renewRevocationList(caDir, crlOptions(values));
  if (values.audit) {
    new AuditLog(values.audit).record('cert.crl-signed', 'cli', {
      crl: update.file,
      crlNumber: update.list.number.toString(),
      entries: update.list.entries.size,
      nextUpdate: update.list.nextUpdate.toISOString(),
    });
  }
  io.stdout.write(describe(update));
  return 0;
}

function describe(update: CrlUpdate): string {
  const { list } = update;
  return (
    `wrote ${update.file} (CRL number ${list.number}, ${list.entries.size} revoked, ` +
    `next update ${list.nextUpdate.toISOString()})\n` +
    `re-sign it before then (rpm-gateway certs crl --ca-dir ...): after it, every client is refused\n`
  );
}

function crlOptions(values: { days?: string | undefined; crl?: string | undefined }): {
  days?: number;
  crlFile?: string;
} {
  return {
    ...(values.days === undefined ? {} : { days: crlDays(values.days) }),
    ...(values.crl === undefined ? {} : { crlFile: values.crl }),
  };
}

function crlDays(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 366)
    throw new UsageError('--days must be a whole number, 1 to 366');
  return n;
}

function isReason(value: string): value is RevocationReason {
  return (REVOCATION_REASONS as readonly string[]).includes(value);
}
