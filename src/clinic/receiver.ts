import type { ConnectionOptions } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Gap } from '../model/gap.js';
import type { Measurement } from '../model/measurement.js';
import { mqttsConnection } from '../pki/index.js';
import type { TlsMaterial } from '../pki/tls.js';
import {
  type Batch,
  decodeBatch,
  decodeStatus,
  type GatewayStatus,
  MAX_ENVELOPE_BYTES,
  parseTopic,
  verifyEnvelope,
  WireError,
} from '../wire/index.js';
import type { GatewayDirectory } from './gateway-directory.js';

/**
 * The clinic side of the wire format: subscribes to every gateway's readings, alerts and status with a clinic
 * certificate, verifies each COSE_Sign1 envelope against the gateway directory, checks that the signer is the
 * gateway named by the topic and the payload, and drops readings it has already delivered (measurement ids are
 * stable across re-sends: docs/wire-format.md, "De-duplication"). Bad messages are reported, never fatal.
 */
export interface ReceiverOptions {
  readonly broker: { readonly host: string; readonly port: number; readonly servername?: string };
  readonly tls: TlsMaterial;
  readonly clientId: string;
  readonly directory: GatewayDirectory;
  /** `topic`: the lane topic it came on ('alert' for the alert lane, 'obs' for live and backlog). */
  readonly onMeasurement: (
    gatewayId: string,
    measurement: Measurement,
    batch: Batch,
    topic: 'obs' | 'alert',
  ) => void;
  readonly onGap?: (gatewayId: string, gap: Gap) => void;
  readonly onStatus?: (status: GatewayStatus) => void;
  readonly onRejected?: (topic: string, error: WireError) => void;
  /** How many delivered ids to remember for de-duplication (oldest forgotten first). */
  readonly dedupeCapacity?: number;
  readonly protocolVersion?: 4 | 5;
}

export class ClinicReceiver {
  private client: MqttClient | undefined;
  private readonly seen = new Set<string>();
  duplicates = 0;

  constructor(private readonly options: ReceiverOptions) {}

  async start(): Promise<void> {
    const { broker, tls } = this.options;
    const connectOptions: IClientOptions &
      Pick<ConnectionOptions, 'minVersion' | 'checkServerIdentity' | 'ciphers'> = {
      ...mqttsConnection(broker, tls),
      clientId: this.options.clientId,
      protocolVersion: this.options.protocolVersion ?? 4,
      clean: false,
      reconnectPeriod: 1_000,
    };
    const client = await mqtt.connectAsync(connectOptions);
    client.on('message', (topic, payload) => this.handle(topic, new Uint8Array(payload)));
    await client.subscribeAsync(['rpm/v1/+/obs', 'rpm/v1/+/alert', 'rpm/v1/+/status'], { qos: 1 });
    this.client = client;
  }

  async stop(): Promise<void> {
    await this.client?.endAsync();
    this.client = undefined;
  }

  /** Verifies and delivers one message; public so that an in-process broker can feed it directly. */
  handle(topic: string, bytes: Uint8Array): void {
    try {
      const { gatewayId, kind } = parseTopic(topic);
      let signer: string | undefined;
      const { payload } = verifyEnvelope(
        bytes,
        (kid) => {
          const entry = this.options.directory.lookup(kid);
          signer = entry?.gatewayId;
          return entry?.key;
        },
        { maxBytes: MAX_ENVELOPE_BYTES },
      );
      if (signer !== gatewayId) {
        throw new WireError('WIRE_GATEWAY_MISMATCH', `signed by ${signer}, published under ${gatewayId}`);
      }
      if (kind === 'status') {
        this.options.onStatus?.(decodeStatus(payload, { gatewayId }));
        return;
      }
      if (kind !== 'obs' && kind !== 'alert') return;
      const batch = decodeBatch(payload, { gatewayId });
      for (const item of batch.items) {
        const id = item.type === 'gap' ? item.id : item.measurement.id;
        if (this.remember(id)) {
          this.duplicates++;
          continue;
        }
        if (item.type === 'gap') this.options.onGap?.(gatewayId, item);
        else this.options.onMeasurement(gatewayId, item.measurement, batch, kind);
      }
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      this.options.onRejected?.(topic, error);
    }
  }

  /** Records an id; true when it was already delivered. */
  private remember(id: string): boolean {
    if (this.seen.has(id)) return true;
    this.seen.add(id);
    const capacity = this.options.dedupeCapacity ?? 1_000_000;
    if (this.seen.size > capacity) {
      const oldest = this.seen.values().next().value as string;
      this.seen.delete(oldest);
    }
    return false;
  }
}
