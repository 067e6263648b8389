import { readFileSync } from 'node:fs';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import { ClinicReceiver } from '../../src/clinic/receiver.js';

/**
 * The clinic side of bench:runtime in a process of its own (forked with IPC): the embedded ClinicalBroker over
 * mutual TLS on 127.0.0.1, and the clinic receiver fed in process by the broker, which verifies every envelope
 * and counts the distinct readings. aedes runs an in-process subscriber before it acknowledges a QoS 1 publish,
 * so "received here" is "acknowledged to the hub" to within the PUBACK's write.
 *
 * argv[2]: a JSON object with the PEM file paths { ca, broker, brokerKey, gateway } (src/pki/dev-pki.ts).
 * Sends { type: 'ready', port }; answers { type: 'count' } with { type: 'count', readings, firstAt,
 * firstReceivedAt } (firstAt: Date.now() when the first reading arrived here; firstReceivedAt: that reading's
 * receivedAt, when the hub got the notification). Exits when the IPC channel closes.
 */
interface Files {
  readonly ca: string;
  readonly broker: string;
  readonly brokerKey: string;
  readonly gateway: string;
}

const files = JSON.parse(process.argv[2] ?? '{}') as Files;
const ca = readFileSync(files.ca, 'utf8');
const directory = new GatewayDirectory(ca);
directory.add(readFileSync(files.gateway, 'utf8'));
let readings = 0;
let firstAt: number | undefined;
let firstReceivedAt: string | undefined;
const receiver = new ClinicReceiver({
  broker: { host: '127.0.0.1', port: 1 }, // fed in process, never connects
  tls: { ca, cert: '', key: '' },
  clientId: 'bench-clinic',
  directory,
  // A bounded dedupe set: a million-reading backlog must not grow this process without limit.
  dedupeCapacity: 100_000,
  onMeasurement: (_gatewayId, measurement) => {
    readings++;
    if (firstAt === undefined) {
      firstAt = Date.now();
      firstReceivedAt = measurement.receivedAt;
    }
  },
});

const broker = new ClinicalBroker({
  ca,
  cert: readFileSync(files.broker, 'utf8'),
  key: readFileSync(files.brokerKey, 'utf8'),
  identify: identifyClient,
  port: 0,
});
const { port } = await broker.start();
for (const topic of ['rpm/v1/+/obs', 'rpm/v1/+/alert']) {
  broker.mqtt.subscribe(
    topic,
    (packet, done) => {
      receiver.handle(packet.topic, new Uint8Array(packet.payload as Buffer));
      done();
    },
    () => undefined,
  );
}
process.on('message', (message: { type?: string }) => {
  if (message.type === 'count') process.send?.({ type: 'count', readings, firstAt, firstReceivedAt });
});
process.on('disconnect', () => {
  void broker.stop().finally(() => process.exit(0));
});
process.send?.({ type: 'ready', port });
