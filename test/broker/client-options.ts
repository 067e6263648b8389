import type { ConnectionOptions } from 'node:tls';
import type { IClientOptions } from 'mqtt';
import { checkServerCertificate } from '../../src/pki/index.js';

/**
 * The mqtt.js options of a test's client of the embedded broker on 127.0.0.1:`port`: mutual TLS with the
 * development PKI's certificate `cert` (a hub's or the clinic's), the broker's name checked as the gateway
 * checks it, MQTT 3.1.1 with a persistent session (CleanSession 0, as hubs and the intake connect), and no
 * reconnecting, so a refused or dropped connection stays visible to the test.
 */
export function brokerClientOptions(
  ca: string,
  port: number,
  clientId: string,
  cert: string,
  key: string,
): IClientOptions & Pick<ConnectionOptions, 'checkServerIdentity'> {
  return {
    protocol: 'mqtts',
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca,
    cert,
    key,
    clientId,
    clean: false,
    rejectUnauthorized: true,
    checkServerIdentity: checkServerCertificate,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    protocolVersion: 4,
  };
}
