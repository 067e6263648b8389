import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from './errors.js';
import { type KeyProvider, parseKey, SystemdCredentialProvider } from './keys.js';

/**
 * Where LoadCredentialEncrypted=/LoadCredential= look for a credential given by name only (systemd.exec(5),
 * "Credentials"); the unit in config/systemd names /etc/credstore.encrypted/rpm-gateway-<name>.
 */
export const CREDSTORE_ROOTS: readonly string[] = ['/etc', '/run', '/usr/local/lib', '/usr/lib'];

/** The files a credential `name` may be sealed in, in the order systemd and the unit look. */
export function credstoreCandidates(name: string, roots: readonly string[] = CREDSTORE_ROOTS): string[] {
  return roots.flatMap((root) =>
    [`rpm-gateway-${name}`, name].map((file) => join(root, 'credstore.encrypted', file)),
  );
}

export interface CredstoreOptions {
  readonly roots?: readonly string[];
  /** The systemd-creds executable (looked up on $PATH by default). */
  readonly command?: string;
  /** The environment systemd-creds runs with ($PATH included). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Seconds systemd-creds may take: unsealing with a TPM2 takes a moment, not minutes. */
const DECRYPT_TIMEOUT_MS = 30_000;

/**
 * The store key sealed as a systemd encrypted credential, read by an operator's command outside the service.
 * Inside the service systemd decrypts it into $CREDENTIALS_DIRECTORY (SystemdCredentialProvider); a command
 * run by hand (`sudo rpm-gateway devices --credential store-key` while the hub is stopped) has no such folder,
 * so it asks `systemd-creds decrypt --name=<name> <file> -` (systemd-creds(1), systemd 250 and later) to
 * unseal the same file, which takes root: the host key (/var/lib/systemd/credential.secret) and the TPM are
 * root's. The key passes through a pipe from the child, never a file or an argument.
 */
export class CredstoreKeyProvider implements KeyProvider {
  readonly description: string;

  constructor(
    readonly name: string,
    private readonly options: CredstoreOptions = {},
  ) {
    this.description = `systemd encrypted credential ${name}`;
  }

  async load(): Promise<Uint8Array> {
    const file = await this.find();
    const output = await this.decrypt(file);
    try {
      return parseKey(output.toString('utf8'), `${this.description} (${file})`);
    } finally {
      output.fill(0);
    }
  }

  private async find(): Promise<string> {
    const candidates = credstoreCandidates(this.name, this.options.roots);
    for (const file of candidates) {
      try {
        await access(file);
        return file;
      } catch {
        // not this one
      }
    }
    throw new StoreError(
      'STORE_KEY_MISSING',
      `${this.description}: no sealed file in ${candidates
        .map((f) => f.replace(/[^/]+$/, ''))
        .filter((d, i, all) => all.indexOf(d) === i)
        .join(', ')} (made by systemd-creds encrypt, docs/raspberry-pi.md)`,
    );
  }

  private decrypt(file: string): Promise<Buffer> {
    const command = this.options.command ?? 'systemd-creds';
    return new Promise((resolve, reject) => {
      execFile(
        command,
        ['decrypt', `--name=${this.name}`, file, '-'],
        {
          encoding: 'buffer',
          env: this.options.env ?? process.env,
          timeout: DECRYPT_TIMEOUT_MS,
          maxBuffer: 4096,
        },
        (error, stdout, stderr) => {
          if (!error) {
            resolve(stdout);
            return;
          }
          stdout.fill(0);
          const code = (error as NodeJS.ErrnoException).code;
          // systemd-creds' own message (e.g. "Failed to decrypt: Permission denied") names no secret.
          const said = stderr.toString('utf8').trim().split('\n')[0]?.slice(0, 200) ?? '';
          reject(
            new StoreError(
              'STORE_KEY_MISSING',
              code === 'ENOENT'
                ? `${this.description}: ${command} is not installed (systemd 250 or later has it)`
                : `${this.description}: ${command} decrypt ${file} failed${said ? `: ${said}` : ''} (it needs root: sudo)`,
              { cause: error },
            ),
          );
        },
      );
    });
  }
}

/**
 * The provider for `--credential <name>`: inside the service, systemd has decrypted it already
 * ($CREDENTIALS_DIRECTORY); anywhere else it is unsealed from the credstore with systemd-creds.
 */
export function credentialKeyProvider(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  options: Omit<CredstoreOptions, 'env'> = {},
): KeyProvider {
  return env.CREDENTIALS_DIRECTORY
    ? new SystemdCredentialProvider(name, env)
    : new CredstoreKeyProvider(name, { ...options, env });
}
