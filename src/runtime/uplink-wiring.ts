import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { CertificateEvent, GatewayCredentials } from '../pki/credentials.js';
import type { Store } from '../store/store.js';
import { signedCodec } from '../uplink/signed-codec.js';
import { Uplink, type UplinkEvent } from '../uplink/uplink.js';
import type { Scheduler } from '../util/scheduler.js';
import { gatewayTopics } from '../wire/index.js';
import type { ClinicCommandHandler } from './clinic-commands.js';
import type { RuntimeLog } from './log.js';
import type { UplinkWatch } from './uplink-watch.js';

/**
 * The hub's side of the uplink to the clinic broker: the Uplink built from the configuration (its outbox, its
 * signed codec, its TLS credentials and command handler), and what its events and the gateway certificate's
 * events mean for the log, the audit log, the metrics and `status`. It exists apart from the hub so that the
 * composition root shows only when the uplink starts and stops, not how each of its events is reported.
 */
export interface UplinkWiringOptions {
  readonly config: GatewayConfig;
  readonly version: string;
  readonly scheduler: Scheduler;
  readonly log: RuntimeLog;
  readonly random: (() => number) | undefined;
  readonly store: Store;
  readonly credentials: GatewayCredentials;
  readonly audit: AuditLog;
  /** The verified command handler (src/runtime/clinic-commands.ts); undefined: commands are refused. */
  readonly onCommand: ClinicCommandHandler | undefined;
  readonly watch: UplinkWatch;
  readonly metrics: GatewayMetrics | undefined;
}

export function buildUplink(options: UplinkWiringOptions): Uplink {
  const { config, scheduler, log, store, credentials, audit, onCommand } = options;
  const topics = gatewayTopics(config.gateway.id);
  if (!onCommand)
    log.warn('commands.disabled', { reason: 'no tls.commandSigners configured: commands are refused' });
  return new Uplink({
    gatewayId: config.gateway.id,
    brokers: config.uplink.brokers,
    protocolVersion: config.uplink.protocolVersion,
    tls: () => credentials.load(),
    outbox: store.outbox,
    codec: signedCodec({
      gatewayId: config.gateway.id,
      version: options.version,
      outbox: store.outbox,
      credentials: () => credentials.signing(),
      auditHead: () => {
        try {
          return audit.headHash();
        } catch {
          return undefined;
        }
      },
    }),
    topics,
    scheduler,
    ...(options.random ? { random: options.random } : {}),
    backoff: config.uplink.backoff,
    window: config.uplink.window,
    maxBatchRows: config.uplink.maxBatchRows,
    liveBatchBytes: config.uplink.liveBatchBytes,
    backlogBatchBytes: config.uplink.backlogBatchBytes,
    connectTimeoutMs: config.uplink.connectTimeoutMs,
    keepaliveSeconds: config.uplink.keepaliveSeconds,
    onEvent: (event) => uplinkEvent(event, options),
    ...(onCommand ? { onCommand } : {}),
  });
}

/** An uplink event: into the broker view (`status`), the log, and the audit log or metrics where they count. */
function uplinkEvent(
  event: UplinkEvent,
  options: Pick<UplinkWiringOptions, 'log' | 'audit' | 'watch' | 'metrics'>,
) {
  const { log } = options;
  options.watch.event(event);
  switch (event.type) {
    case 'connected':
      log.info('uplink.connected', { broker: event.broker, attempt: event.attempt });
      return;
    case 'connect-failed':
      log.warn('uplink.connect-failed', {
        broker: event.broker,
        error: event.error,
        retryInMs: event.retryInMs,
        next: event.next,
      });
      if (/^PKI_/.test(event.error)) {
        options.audit.record('cert.problem', 'gateway', { error: event.error.split(':')[0] ?? 'PKI' });
      }
      return;
    case 'disconnected':
      log.warn('uplink.disconnected', {
        broker: event.broker,
        reason: event.reason,
        released: event.released,
        retryInMs: event.retryInMs,
        next: event.next,
      });
      return;
    case 'batch-acked':
      options.metrics?.readingsAcknowledged(event.lane, event.records);
      log.debug('uplink.batch-acked', { lane: event.lane, records: event.records, bytes: event.bytes });
      return;
    case 'command':
      log.debug('uplink.command', { bytes: event.bytes });
      return;
    case 'quarantined':
      log.error('uplink.quarantined', { records: event.records, error: event.error });
      return;
    case 'batch-failed':
      log.error('uplink.batch-failed', { error: event.error });
      return;
    case 'stopped':
      // Not graceful: the broker publishes the Last Will (offline, with the counts of connect time).
      log.info('uplink.stopped', { graceful: event.graceful });
      return;
  }
}

/**
 * The gateway certificate's events (GatewayCredentials): its expiry logged when loaded, a renewal or an
 * approaching expiry also audited, since both matter to whoever answers for the gateway's identity.
 */
export function certificateEvents(log: RuntimeLog, audit: AuditLog): (event: CertificateEvent) => void {
  return (event) => {
    const expiresAt = event.expiry.notAfter.toISOString();
    if (event.type === 'loaded') {
      log.info('cert.loaded', { expiresAt, status: event.expiry.status });
      return;
    }
    if (event.type === 'changed') {
      log.info('cert.changed', { expiresAt });
      audit.record('cert.changed', 'gateway', {
        sha256: event.identity.sha256,
        previous: event.previous.sha256,
      });
      return;
    }
    log.warn('cert.expiring', { expiresAt });
    audit.record('cert.expiring', 'gateway', { sha256: event.identity.sha256, notAfter: expiresAt });
  };
}
