import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { BrokerEndpoint } from '../../config/fields.js';
import { identityOf, mqttsConnection } from '../../pki/index.js';
import type { TlsMaterial } from '../../pki/tls.js';
import type { Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import { systemClock } from '../../util/clock.js';
import type { Scheduler } from '../../util/scheduler.js';
import { kidForCertificate } from '../../wire/index.js';
import { AlarmError } from '../alarms/errors.js';
import { LimitsPublisher } from '../alarms/limits-publisher.js';
import type { AlarmLimit } from '../alarms/model.js';
import { DashboardError } from '../dashboard/errors.js';
import { GatewayInventory } from '../intake/gateway-inventory.js';

/** What the limits page needs to send a patient's limits to their hub. */
export interface HubLimitsSender {
  /** Whether the broker connection is up now (a send while it is not is ALARM_HUB_NO_ANSWER at once). */
  readonly connected: boolean;
  /** Resolves with the keys the hub applied; ALARM_HUB_REFUSED, ALARM_HUB_NO_ANSWER otherwise. */
  send(gatewayId: string, limits: readonly AlarmLimit[], previous?: readonly AlarmLimit[]): Promise<string[]>;
}

export interface HubCommandsOptions {
  readonly broker: BrokerEndpoint;
  readonly clientId: string;
  /** The command-signing certificate and its key (PEM): the TLS client identity too. */
  readonly tls: TlsMaterial;
  /** The clinic CA and the gateway certificates folder: the hubs' answers are verified like their readings. */
  readonly gateways: { readonly caPem: string; readonly folder: string; readonly crlFile?: string };
  readonly scheduler: Scheduler;
  readonly log: RuntimeLog;
  /** The command's lifetime (LimitsPublisher's default 60 s when absent). */
  readonly ttlMs?: number;
}

/**
 * The dashboard's connection to the broker for the signed `config` commands that carry a patient's alarm
 * limits to their hub (src/clinic/alarms/limits-publisher.ts; docs/wire-format.md 9). A clean session of its
 * own (clinic-<name>-cmd): a command is only worth its lifetime, so nothing is queued across a restart, and the
 * intake's durable sessions are never touched. It connects in the background and reconnects by itself: a
 * broker that is down does not stop the dashboard, the limits page then says the hub was not reached.
 *
 * The certificate must be a clinic certificate (the hubs accept commands only from one, and the broker lets
 * only a clinic publish on rpm/v1/+/cmd): checked at construction, a configuration error otherwise.
 */
export class HubCommandsService implements Service, HubLimitsSender {
  #client: MqttClient | undefined;
  #publisher: LimitsPublisher | undefined;
  readonly #signer: { readonly key: ReturnType<typeof createPrivateKey>; readonly kid: Uint8Array };
  readonly #inventory: GatewayInventory;

  constructor(private readonly options: HubCommandsOptions) {
    let certificate: X509Certificate;
    let key: ReturnType<typeof createPrivateKey>;
    try {
      certificate = new X509Certificate(options.tls.cert);
      key = createPrivateKey(options.tls.key);
    } catch (error) {
      throw new DashboardError(
        'DASHBOARD_COMMAND_SIGNER_INVALID',
        'dashboard.hubCommands.cert and .key are not a PEM certificate and a private key',
        { cause: error },
      );
    }
    if (!certificate.checkPrivateKey(key)) {
      throw new DashboardError(
        'DASHBOARD_COMMAND_SIGNER_INVALID',
        'dashboard.hubCommands.key is not the key of dashboard.hubCommands.cert',
      );
    }
    let role: string;
    try {
      role = identityOf(certificate.raw).role;
    } catch {
      role = 'unknown';
    }
    if (role !== 'clinic') {
      throw new DashboardError(
        'DASHBOARD_COMMAND_SIGNER_INVALID',
        'dashboard.hubCommands.cert is not a clinic certificate (urn:rpm-gateway:clinic:<name>); hubs accept commands only from one',
      );
    }
    this.#signer = { key, kid: kidForCertificate(new Uint8Array(certificate.raw)) };
    this.#inventory = new GatewayInventory({
      caPem: options.gateways.caPem,
      folder: options.gateways.folder,
      ...(options.gateways.crlFile === undefined ? {} : { crlFile: options.gateways.crlFile }),
      clock: systemClock,
    });
  }

  get connected(): boolean {
    return this.#client?.connected === true;
  }

  async start(): Promise<void> {
    const { broker, tls, log } = this.options;
    const connectOptions: IClientOptions &
      Pick<ConnectionOptions, 'minVersion' | 'checkServerIdentity' | 'ciphers'> = {
      ...mqttsConnection(broker, tls),
      clientId: this.options.clientId,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 5_000,
    };
    const client = mqtt.connect(connectOptions);
    let wasConnected = false;
    client.on('connect', () => {
      wasConnected = true;
      log.info('dashboard.hub-commands-connected', { broker: broker.url });
    });
    client.on('offline', () => {
      if (wasConnected) log.warn('dashboard.hub-commands-disconnected', { broker: broker.url });
      wasConnected = false;
    });
    client.on('error', (error) =>
      log.warn('dashboard.hub-commands-error', { broker: broker.url, error: error.message }),
    );
    this.#client = client;
    this.#publisher = new LimitsPublisher({
      client,
      signer: this.#signer,
      resolveGatewayKey: (kid) => {
        const found = this.#inventory.lookup(kid);
        return found.status === 'known' ? found.entry.key : undefined;
      },
      scheduler: this.options.scheduler,
      ...(this.options.ttlMs === undefined ? {} : { ttlMs: this.options.ttlMs }),
    });
  }

  async send(
    gatewayId: string,
    limits: readonly AlarmLimit[],
    previous?: readonly AlarmLimit[],
  ): Promise<string[]> {
    const publisher = this.#publisher;
    if (publisher === undefined || !this.connected) {
      throw new AlarmError(
        'ALARM_HUB_NO_ANSWER',
        `the broker is not reachable now, so hub ${gatewayId} was not sent the limits; send them again later`,
      );
    }
    return publisher.send(gatewayId, limits, previous);
  }

  async stop(): Promise<void> {
    this.#publisher?.close();
    this.#publisher = undefined;
    const client = this.#client;
    this.#client = undefined;
    await client?.endAsync(true);
  }
}
