import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { intakeSubscriptions } from '../../src/broker/durable-subscribers.js';
import { identifyClient } from '../../src/broker/identify.js';

/**
 * bench:clinic's embedded broker (`--brokers embedded`), in a process of its own as `rpm-gateway broker` runs:
 * the ClinicalBroker on a free 127.0.0.1 port with its LevelDB persistence (fsynced unless `sync` is false,
 * sealed with a key) and the intake's session provisioned before the listener opens. Until 2026-12-06 it ran
 * inside the publisher's process, which counted the 1,000 gateway connections' work against the broker's
 * event loop and the broker's against the publisher.
 *
 * argv[2]: JSON Config. In: 'stop'. Out: 'ready' { port }, 'event' (a store failure), 'error'.
 */
interface Config {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly persistenceDir: string;
  readonly sync: boolean;
  readonly intakeClientId: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (message: object) => process.send?.(message);

const broker = new ClinicalBroker({
  ca: readFileSync(config.ca),
  cert: readFileSync(config.cert),
  key: readFileSync(config.key),
  identify: identifyClient,
  host: '127.0.0.1',
  port: 0,
  // sealed with a key, as `rpm-gateway broker` runs it
  persistence: { dir: config.persistenceDir, sync: config.sync, key: randomBytes(32) },
  durableSubscribers: [{ clientId: config.intakeClientId, subscriptions: intakeSubscriptions() }],
  onError: (error) => send({ type: 'event', event: { type: 'broker-error', message: error.message } }),
});

process.on('message', (message: { type: string }) => {
  if (message.type === 'stop') void broker.stop().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));

try {
  const { port } = await broker.start();
  send({ type: 'ready', port });
} catch (error) {
  send({ type: 'error', message: (error as Error).message });
}
