import { join } from 'node:path';
import {
  EnvKeyProvider,
  KeyFileProvider,
  type KeyProvider,
  SystemdCredentialProvider,
} from '../store/keys.js';
import type { SecretRef } from './schema.js';

/**
 * Where the secrets the configuration names are found at run time. The configuration holds only references
 * (src/config/schema.ts, SecretRef: a file, a systemd credential, or a variable), never the secrets; this module
 * turns a reference into what the hub reads it with, in one place, so the service and its tools agree.
 */

/**
 * A store key as the configuration names it (a file, a systemd credential, or a variable). `create`: whether a
 * missing key file may be made. The hub's store key is never made here (`rpm-gateway init` makes it with the
 * store); the clinic broker's is (`broker.persistence.key`), and the broker allows it only for a new store.
 */
export function keyProvider(
  ref: SecretRef,
  env: NodeJS.ProcessEnv,
  options: { readonly create?: boolean } = {},
): KeyProvider {
  switch (ref.source) {
    case 'file':
      return new KeyFileProvider(ref.path, { create: options.create ?? false });
    case 'credential':
      return new SystemdCredentialProvider(ref.name, env);
    case 'env':
      return new EnvKeyProvider(ref.variable, env);
  }
}

/**
 * The path of a secret given as a file or a systemd credential: a credential is a file under
 * $CREDENTIALS_DIRECTORY (systemd.exec(5), "Credentials").
 */
export function secretPath(ref: SecretRef, env: NodeJS.ProcessEnv): string {
  switch (ref.source) {
    case 'file':
      return ref.path;
    case 'credential':
      return join(env.CREDENTIALS_DIRECTORY ?? '/run/credentials/rpm-gateway.service', ref.name);
    case 'env':
      throw new Error('a TLS key cannot come from an environment variable');
  }
}
