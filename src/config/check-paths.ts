import { statSync } from 'node:fs';
import { type ConfigIssue, invalidConfig } from './errors.js';
import type { LoadedConfig } from './load.js';
import { pathKey } from './walk.js';

/**
 * Paths the configuration names must exist: a typo in --data-dir must not quietly become a new, empty store
 * with a new key (the readings stay in the old one, and the service looks healthy). Only `rpm-gateway init`
 * (and the demo) create the data directory and the store key, and say so: they pass `creating: true`, which
 * lets those two be absent. Every other command passes `creating: false`.
 *
 * The TLS files are made by enrolment (docs/enrolment.md), after `init`, so `init` does not need them; every
 * other command does.
 */
export function findPathProblems(loaded: LoadedConfig, options: { creating: boolean }): ConfigIssue[] {
  const { config } = loaded;
  const issues: ConfigIssue[] = [];
  const check = (
    path: (string | number)[],
    target: string,
    expect: 'directory' | 'file',
    mayBeMade: boolean,
  ) => {
    const source = loaded.sourceOf(path);
    const at = { path: pathKey(path), ...(source ? { source } : {}) };
    let stats: ReturnType<typeof statSync>;
    try {
      stats = statSync(target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (mayBeMade && code === 'ENOENT') return;
        const explicit = source !== undefined && source.kind !== 'default';
        const hint =
          path[0] === 'paths' || path[0] === 'store'
            ? explicit
              ? `check it for a typo (nothing was created); a new store is made only by rpm-gateway init`
              : 'no store has been made here yet: run rpm-gateway init, or name the data directory of an existing one'
            : 'check it for a typo, or finish enrolment (docs/enrolment.md)';
        issues.push({
          code: 'CONFIG_PATH_MISSING',
          ...at,
          message: `${target} does not exist${code === 'ENOTDIR' ? ' (a part of its path is a file)' : ''}; ${hint}`,
        });
      } else {
        issues.push({ code: 'CONFIG_NO_ACCESS', ...at, message: `${target} cannot be reached (${code})` });
      }
      return;
    }
    if (expect === 'directory' && !stats.isDirectory()) {
      issues.push({ code: 'CONFIG_NOT_A_DIRECTORY', ...at, message: `${target} is not a directory` });
    } else if (expect === 'file' && !stats.isFile()) {
      issues.push({ code: 'CONFIG_NOT_A_FILE', ...at, message: `${target} is not a regular file` });
    }
  };

  check(['paths', 'dataDir'], config.paths.dataDir, 'directory', options.creating);
  // The default key lives in the data directory: one message for a missing data directory is enough.
  const keyIsDefault = loaded.sourceOf(['store', 'key'])?.kind === 'default';
  if (config.store.key.source === 'file' && !(keyIsDefault && issues.length > 0)) {
    check(['store', 'key'], config.store.key.path, 'file', options.creating);
  }
  if (!options.creating) {
    const { tls } = config;
    check(['tls', 'ca'], tls.ca, 'file', false);
    check(['tls', 'cert'], tls.cert, 'file', false);
    if (tls.key.source === 'file') check(['tls', 'key'], tls.key.path, 'file', false);
    if (tls.clinicCa !== undefined) check(['tls', 'clinicCa'], tls.clinicCa, 'file', false);
    tls.commandSigners.forEach((signer, i) => {
      check(['tls', 'commandSigners', i], signer, 'file', false);
    });
    if (tls.crl !== undefined) check(['tls', 'crl'], tls.crl, 'file', false);
  }
  return issues;
}

/** Throws CONFIG_INVALID listing every path problem (see findPathProblems). */
export function checkPaths(loaded: LoadedConfig, options: { creating: boolean }): void {
  const issues = findPathProblems(loaded, options);
  if (issues.length > 0) throw invalidConfig(issues);
}
