/**
 * One clinic intake process on PostgreSQL, for test/clinic/scale-out.test.ts, which runs three of them and
 * SIGKILLs one. It does what `rpm-gateway clinic intake` is to do with `intake.sharedGroup` set (that command
 * is not on main yet): open a PgClinicStore, then run the intake over MQTT 5 shared subscriptions on two
 * connections, obs and status in `$share/<group>/...` under the client id, and the alert lane in
 * `$share/<group>-alert/...` under `<client id>-alert` (sharedIntakeOptions), so alerts never wait behind a
 * backlog.
 *
 * argv[2]: a JSON object (ChildOptions). stdout, one line each (stdout to a pipe is synchronous on Linux, so a
 * line written before a SIGKILL still reaches the parent):
 * - `CONNECTED <client id> <resumed>` at every connect of either connection (resumed: the broker had the session);
 * - `READY` once both connections are subscribed;
 * - `COMMIT <n>` after every commit that stored n new readings (duplicates not counted), so the parent sees
 *   how the stream was split.
 * SIGTERM stops both intakes (commits what was received, sends those PUBACKs), closes the store and exits 0.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { ClinicIntake, sharedIntakeOptions } from '../../src/clinic/intake/index.js';
import type { ClinicStore } from '../../src/clinic/storage/clinic-store.js';
import { PgClinicStore } from '../../src/clinic/storage/postgres/pg-clinic-store.js';

interface ChildOptions {
  readonly port: number;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly gateways: string;
  readonly database: pg.ClientConfig;
  readonly clientId: string;
  readonly sharedGroup: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const store = await PgClinicStore.open({ connection: options.database });

/** The store, with every commit's stored-reading count written to stdout once the commit has resolved. */
const counted = new Proxy(store, {
  get(target, property, receiver) {
    if (property === 'commit') {
      return async (...args: Parameters<ClinicStore['commit']>) => {
        const outcome = await target.commit(...args);
        if (outcome.inserted.length > 0) process.stdout.write(`COMMIT ${outcome.inserted.length}\n`);
        return outcome;
      };
    }
    const value: unknown = Reflect.get(target, property, receiver);
    // PgClinicStore keeps its state in #private fields, which only the store itself (not the proxy) can read.
    return typeof value === 'function' ? value.bind(target) : value;
  },
});

const ca = readFileSync(options.ca, 'utf8');
const intakes = sharedIntakeOptions({
  broker: { host: '127.0.0.1', port: options.port, servername: 'localhost' },
  tls: { ca, cert: readFileSync(options.cert, 'utf8'), key: readFileSync(options.key, 'utf8') },
  clientId: options.clientId,
  protocolVersion: 5,
  subscription: { sharedGroup: options.sharedGroup },
  store: counted,
  gateways: { caPem: ca, folder: options.gateways },
  defaultTimeZone: 'UTC',
  reconnectPeriodMs: 200,
}).map(
  (intakeOptions) =>
    new ClinicIntake({
      ...intakeOptions,
      onEvent: (event) => {
        if (event.type === 'connected') {
          process.stdout.write(`CONNECTED ${intakeOptions.clientId} ${event.resumed}\n`);
        } else if (event.type === 'rejected' || event.type === 'commit-failed') {
          process.stderr.write(`intake ${intakeOptions.clientId}: ${event.type} ${event.message}\n`);
        }
      },
    }),
);
await Promise.all(intakes.map((intake) => intake.start()));
process.stdout.write('READY\n');

process.once('SIGTERM', () => {
  Promise.all(intakes.map((intake) => intake.stop()))
    .then(() => store.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
});
