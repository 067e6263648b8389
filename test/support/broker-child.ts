/**
 * The embedded clinical broker in a process of its own, for tests that kill it (test/broker/persistence.test.ts).
 *
 * argv[2]: a JSON object { ca, broker, brokerKey } (PEM file paths, src/pki/dev-pki.ts), `dir` (the LevelDB
 * store), `keyFile` (the store key's file, made on the first start as in production), `sync` and
 * `durableSubscribers` (ClinicalBroker options). Prints "READY <port>" on stdout once the
 * broker listens (stdout to a pipe is synchronous on Linux, so the line is out before anything else happens).
 * SIGTERM stops the broker cleanly (store closed) and exits 0; SIGKILL is what the tests use to crash it.
 */
import { readFileSync } from 'node:fs';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import type { DurableSubscriber } from '../../src/broker/durable-subscribers.js';
import { identifyClient } from '../../src/broker/identify.js';
import { KeyFileProvider } from '../../src/store/keys.js';

interface ChildOptions {
  readonly ca: string;
  readonly broker: string;
  readonly brokerKey: string;
  readonly dir: string;
  readonly keyFile: string;
  readonly sync: boolean;
  readonly durableSubscribers: readonly DurableSubscriber[];
}

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const broker = new ClinicalBroker({
  ca: readFileSync(options.ca, 'utf8'),
  cert: readFileSync(options.broker, 'utf8'),
  key: readFileSync(options.brokerKey, 'utf8'),
  port: 0,
  identify: identifyClient,
  persistence: { dir: options.dir, sync: options.sync, key: new KeyFileProvider(options.keyFile) },
  durableSubscribers: options.durableSubscribers,
  onError: (error) => process.stderr.write(`broker error: ${error.code} ${error.message}\n`),
});
const { port } = await broker.start();
process.stdout.write(`READY ${port}\n`);
process.once('SIGTERM', () => {
  broker.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
