import { AuditLog } from '../audit/audit-log.js';
import { checkDataDir, ensureDataDir } from '../config/data-dir.js';
import { defaultDataDir, statePaths } from '../config/paths.js';
import { UsageError } from '../errors.js';
import { credentialKeyProvider } from '../store/credstore-key.js';
import { describeDamage } from '../store/damage.js';
import { KeyFileProvider, type KeyProvider } from '../store/keys.js';
import { Outbox } from '../store/outbox.js';
import { type RekeyProgress, rekeyStore } from '../store/rekey.js';
import { parseCommandArgs } from './args.js';
import { RUNTIME_DIR_HELP, RUNTIME_DIR_OPTION, useControl } from './control-access.js';
import type { CommandIo } from './io.js';
import { Progress } from './progress.js';
import { cliStoreEvents } from './store-notices.js';

export const STORE_HELP = `Usage: rpm-gateway store <status|rekey|verify-audit|acknowledge-damage> [options]

  status               (through the running hub's control socket when it runs, else from the store)
                       counts per lane (alert, live, backlog), oldest pending age, size on disk, evictions,
                       and damage that lost stored readings (exit status 1 until acknowledged)
  rekey                rotate the store's encryption key in place (crash-safe; the gateway must be stopped)
  verify-audit         check the audit log's hash chain
  acknowledge-damage   mark the damage reports as seen, once the kept files were inspected (audited)

Options:
  --data-dir <dir>       state folder (default: $RPM_GATEWAY_DATA_DIR, $STATE_DIRECTORY, or
                         ~/.local/state/rpm-gateway); holds outbox.db, store.key, audit.log
  --key-file <path>      the store key file (default: <data-dir>/store.key, created 0600 with a new store;
                         never made anew for an existing store: STORE_KEY_MISSING)
  --credential <name>    read the key from the systemd credential <name> instead (status, acknowledge-damage;
                         outside the service: systemd-creds decrypt, as root)
${RUNTIME_DIR_HELP}
  --json                 machine-readable output
  -h, --help             show this help`;

export async function storeCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      'key-file': { type: 'string' },
      credential: { type: 'string' },
      ...RUNTIME_DIR_OPTION,
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${STORE_HELP}\n`);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (!action || extra.length > 0)
    throw new UsageError('name one action: status, rekey, verify-audit or acknowledge-damage');
  const paths = statePaths(values['data-dir'] ?? defaultDataDir(io.env));
  checkDataDir(paths.dataDir);
  const keyFile = new KeyFileProvider(values['key-file'] ?? paths.keyFile);
  const audit = new AuditLog(paths.auditLog);
  const print = (value: Record<string, unknown>, text: string) =>
    io.stdout.write(values.json ? `${JSON.stringify(value)}\n` : `${text}\n`);

  switch (action) {
    case 'status': {
      // Through the running hub's control socket when one answers (it owns the store), else opened here.
      const opened = await useControl(values, io, { create: true });
      let damaged: boolean;
      try {
        const view = await opened.control.storeStatus();
        const { stats: s, damage } = view;
        damaged = damage.length > 0;
        const age = s.oldestPendingAgeMs === null ? 'none' : `${Math.round(s.oldestPendingAgeMs / 1000)} s`;
        print(
          { store: view.store, ...s, keyProtection: view.keyProtection, damage },
          [
            `store        ${view.store} (encrypted, key from ${view.key})${opened.via === 'hub' ? ', via the running hub' : ''}`,
            `key          ${view.keyProtection.summary}`,
            `pending      alert ${s.pending.alert}, live ${s.pending.live}, backlog ${s.pending.backlog}`,
            `oldest       ${age}`,
            `on disk      ${(s.bytesOnDisk / 1024).toFixed(0)} KiB (${s.rows} rows, ${(s.payloadBytes / 1024).toFixed(0)} KiB of readings)`,
            `evicted      ${s.evictedTotal} readings in ${s.gapsTotal} gap records; ${s.duplicatesTotal} duplicates dropped`,
            ...(damaged
              ? damage.map(
                  (d) => `DAMAGED      ${new Date(d.detectedAtMs).toISOString()}: ${describeDamage(d)}`,
                )
              : ['damage       none']),
          ].join('\n'),
        );
      } finally {
        opened.close();
      }
      if (!damaged) return 0;
      io.stderr.write(
        'rpm-gateway store: the store lost stored readings (see above) [STORE_DAMAGED]; once the kept files are ' +
          'inspected, run `rpm-gateway store acknowledge-damage`\n',
      );
      return 1;
    }
    case 'acknowledge-damage': {
      const keys: KeyProvider = values.credential
        ? credentialKeyProvider(values.credential, io.env)
        : keyFile;
      ensureDataDir(paths.dataDir);
      const outbox = new Outbox({
        path: paths.store,
        keys,
        onEvent: cliStoreEvents(audit, io, 'store'),
      });
      await outbox.open();
      let acknowledged: number;
      try {
        acknowledged = outbox.acknowledgeDamage();
      } finally {
        outbox.close();
      }
      if (acknowledged > 0) audit.record('store.damage-acknowledged', 'cli', { reports: acknowledged });
      print(
        { store: paths.store, acknowledged },
        acknowledged > 0
          ? `acknowledged ${acknowledged} damage report(s) of ${paths.store}`
          : `no unacknowledged damage in ${paths.store}`,
      );
      return 0;
    }
    case 'rekey': {
      if (values.credential) {
        throw new UsageError(
          'rekey rotates a key file; for a systemd credential, create the new credential and use --key-file',
        );
      }
      // On a terminal, stderr shows how far the rotation is (a large store takes minutes on an SD card).
      const progress = new Progress({ stream: io.stderr, now: Date.now });
      let result: Awaited<ReturnType<typeof rekeyStore>>;
      try {
        result = await rekeyStore({
          path: paths.store,
          keys: keyFile,
          now: Date.now,
          onProgress: (p) => showRekeyProgress(progress, p),
        });
      } finally {
        progress.finish();
      }
      audit.record('store.rekeyed', 'cli', { store: paths.store, rows: result.rows });
      print(
        { store: paths.store, ...result },
        `rotated the key of ${paths.store} (${result.rows} rows, ${result.durationMs} ms)`,
      );
      return 0;
    }
    case 'verify-audit': {
      const result = audit.verify();
      print(
        { auditLog: paths.auditLog, ...result },
        `${paths.auditLog}: ${result.entries} entries, chain intact${result.torn ? `, ${result.torn} torn line(s) from power cuts` : ''}; head ${result.head}`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown store action "${action}"`);
  }
}

function showRekeyProgress(progress: Progress, p: RekeyProgress): void {
  switch (p.step) {
    case 'copying':
      progress.update('copying the store', p.done, p.total, 'bytes');
      return;
    case 're-encrypting':
      progress.update('re-encrypting under the new key');
      return;
    case 'checking':
      progress.update('checking every row under the new key', p.done, p.total, 'rows');
      return;
  }
}
