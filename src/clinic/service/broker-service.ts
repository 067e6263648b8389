import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AuditLog } from '../../audit/audit-log.js';
import { auditBrokerRefusals } from '../../broker/audit-refusals.js';
import { type BrokerOptions, ClinicalBroker, type Refusal } from '../../broker/clinical-broker.js';
import { checkDurableSubscribers, type DurableSubscriber } from '../../broker/durable-subscribers.js';
import { identifyClient } from '../../broker/identify.js';
import type { ClinicBrokerSettings } from '../../config/clinic/schema.js';
import type { CrlState } from '../../pki/crl-file.js';
import type { Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { KeyProvider } from '../../store/keys.js';
import type { Clock } from '../../util/clock.js';

/**
 * `rpm-gateway broker` as a service: the embedded ClinicalBroker (src/broker/clinical-broker.ts) with its
 * sessions and QoS 1 queues on disk and the intake's sessions provisioned before any hub connects. Every
 * refusal (TLS handshake, CONNECT, PUBLISH, SUBSCRIBE) and every CRL change goes to the log and to the broker's
 * hash-chained audit log, as NIST SP 1800-30 asks of authentication and authorization failures.
 *
 * The audit log is the broker's own file (`<dataDir>/broker-audit.log`), not the admin commands': an AuditLog
 * keeps the chain's head in memory, so two long-lived processes appending to one file would each chain onto a
 * stale head and break it.
 */
export const BROKER_AUDIT_LOG = 'broker-audit.log';

export interface BrokerServiceOptions {
  readonly settings: ClinicBrokerSettings;
  /** PEM text: the clinic CA, the broker's certificate and its private key. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** The CA's CRL file (pki.crl), re-read when it changes. */
  readonly crlFile?: string;
  /**
   * The key that encrypts the queues on disk (broker.persistence.key): made on the first start of a new
   * queue folder, refused when missing beside an existing one (src/broker/persistence.ts).
   */
  readonly persistenceKey: KeyProvider;
  /** Where the broker's audit log is written (paths.dataDir). */
  readonly dataDir: string;
  readonly log: RuntimeLog;
  readonly clock: Clock;
}

/** The broker's durable subscribers as the configuration lists them, at QoS 1. */
export function durableSubscribersOf(settings: ClinicBrokerSettings): DurableSubscriber[] {
  return settings.durableSubscribers.map((s) => ({
    clientId: s.clientId,
    subscriptions: s.topics.map((topic) => ({ topic, qos: 1 as const })),
  }));
}

export class BrokerService implements Service {
  private broker: ClinicalBroker | undefined;
  private audit: AuditLog | undefined;
  address: AddressInfo | undefined;

  constructor(private readonly options: BrokerServiceOptions) {
    // A list the broker would refuse is a configuration mistake: found now, before anything is opened.
    checkDurableSubscribers(durableSubscribersOf(options.settings));
  }

  async start(): Promise<void> {
    const { settings, log, clock } = this.options;
    mkdirSync(this.options.dataDir, { recursive: true, mode: 0o700 });
    const audit = new AuditLog(join(this.options.dataDir, BROKER_AUDIT_LOG), clock);
    this.audit = audit;
    const toAudit = auditBrokerRefusals(audit, () => clock.now());
    const brokerOptions: BrokerOptions = {
      ca: this.options.ca,
      cert: this.options.cert,
      key: this.options.key,
      host: settings.host,
      port: settings.port,
      identify: identifyClient,
      maxPayloadBytes: settings.maxPayloadBytes,
      persistence: {
        dir: settings.persistence.dir,
        sync: settings.persistence.sync,
        key: this.options.persistenceKey,
      },
      durableSubscribers: durableSubscribersOf(settings),
      ...(this.options.crlFile === undefined ? {} : { crlFile: this.options.crlFile }),
      onRefusal: (refusal) => {
        log.warn('broker.refused', refusalFields(refusal));
        this.record(() => toAudit(refusal));
      },
      onCrl: (state) => this.crlChanged(state),
      onError: (error) => log.error('broker.store-failed', { code: error.code, error: error.message }),
    };
    const broker = new ClinicalBroker(brokerOptions);
    this.address = await broker.start();
    this.broker = broker;
    const where = `${this.address.address}:${this.address.port}`;
    log.info('broker.listening', {
      broker: where,
      count: settings.durableSubscribers.length,
      path: settings.persistence.dir,
    });
    this.record(() =>
      audit.record('broker.started', 'broker', {
        listen: where,
        durableSubscribers: settings.durableSubscribers.map((s) => s.clientId),
      }),
    );
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    this.broker = undefined;
    await broker?.stop();
    if (broker) this.record(() => this.audit?.record('broker.stopped', 'broker'));
  }

  /** What `systemctl status` shows once the broker listens. */
  statusText(): string {
    const a = this.address;
    return a ? `listening on ${a.address}:${a.port}` : 'starting';
  }

  private crlChanged(state: CrlState): void {
    const { log } = this.options;
    if (state.status === 'loaded') {
      const details = {
        number: state.list.number.toString(),
        revoked: state.list.entries.size,
        nextUpdate: state.list.nextUpdate.toISOString(),
      };
      log.info('broker.crl-loaded', {
        count: details.revoked,
        next: details.nextUpdate,
        detail: `CRL number ${details.number}`,
      });
      this.record(() => this.audit?.record('broker.crl.loaded', 'broker', details));
    } else if (state.status === 'unusable') {
      // The last good list stays in force (src/pki/crl-file.ts): say so, loudly, once per change of the file.
      log.error('broker.crl-unusable', {
        code: state.error.code,
        error: state.error.message,
        ...(state.list ? { detail: `CRL number ${state.list.number} stays in force` } : {}),
      });
      this.record(() =>
        this.audit?.record('broker.crl.unusable', 'broker', {
          code: state.error.code,
          message: state.error.message,
          ...(state.list ? { inForce: state.list.number.toString() } : {}),
        }),
      );
    }
  }

  /** An audit write that fails is logged, never fatal to the broker: refusing hubs still works without it. */
  private record(write: () => unknown): void {
    try {
      write();
    } catch (error) {
      this.options.log.error('broker.audit-failed', {
        code: (error as { code?: string }).code ?? 'AUDIT_IO',
        error: (error as Error).message,
      });
    }
  }
}

function refusalFields(refusal: Refusal) {
  return {
    stage: refusal.stage,
    reason: refusal.reason,
    ...(refusal.identity === undefined ? {} : { identity: refusal.identity }),
    ...(refusal.detail === undefined ? {} : { detail: refusal.detail }),
  };
}
