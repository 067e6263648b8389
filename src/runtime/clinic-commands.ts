import { readFileSync } from 'node:fs';
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import { type ClinicLimits, clinicLimitKeys } from '../pipeline/alert-config.js';
import type { GatewayCredentials } from '../pki/credentials.js';
import { auditCommandEvents } from '../uplink/command-audit.js';
import { CommandSigners } from '../uplink/command-signers.js';
import { commandHandler } from '../uplink/commands.js';
import type { Scheduler } from '../util/scheduler.js';
import { CLOCK_SKEW_MS, kidForCertificate, MemoryReplayCache, signCommandResult } from '../wire/index.js';
import type { RuntimeLog } from './log.js';

/**
 * What the clinic may command this hub to do, and who may: the verified downlink commands
 * (src/uplink/commands.ts) as the hub runs them. It exists apart from the uplink because it is a security
 * decision of its own: which signers are trusted (the configuration's clinic CA and command-signing
 * certificates), what a command may change (the alert limits, nothing else), and that every decision is audited.
 */
export interface ClinicCommandsOptions {
  readonly config: GatewayConfig;
  readonly scheduler: Scheduler;
  readonly log: RuntimeLog;
  readonly credentials: GatewayCredentials;
  readonly audit: AuditLog;
  /** The `config` command's action: new per-patient alert limits (src/runtime/alert-limits.ts). */
  readonly setAlertLimits: (set: ClinicLimits) => void;
}

export type ClinicCommandHandler = ReturnType<typeof commandHandler>;

/**
 * The handler of the hub's command topic: only with a clinic CA and command signers configured. Without them
 * (undefined) the hub does not subscribe to its command topic at all, so every command is refused unread.
 */
export function clinicCommands(options: ClinicCommandsOptions): ClinicCommandHandler | undefined {
  const { config, scheduler, log, credentials, audit } = options;
  const { clinicCa, commandSigners } = config.tls;
  if (clinicCa === undefined || commandSigners.length === 0) return undefined;
  const signers = new CommandSigners({
    clinicCa: readFileSync(clinicCa, 'utf8'),
    certificates: commandSigners.map((file) => readFileSync(file, 'utf8')),
  });
  const toAudit = auditCommandEvents(audit, 'clinic');
  return commandHandler({
    gatewayId: config.gateway.id,
    clock: scheduler,
    signers,
    replayCache: new MemoryReplayCache(scheduler),
    // The remote-configuration whitelist: the alert limits (docs/wire-format.md 9.3), nothing else.
    allowedConfigKeys: clinicLimitKeys(),
    // A command accepted before a restart is never accepted again after it (see VerifyCommandOptions).
    notBefore: scheduler.now() + CLOCK_SKEW_MS,
    actions: { config: async (set) => options.setAlertLimits(set) },
    sign: (result) => {
      const signing = credentials.signing();
      return signCommandResult(result, signing.key, kidForCertificate(signing.certificateDer));
    },
    onEvent: (event) => {
      toAudit(event);
      if (event.type === 'command.accepted') log.info('command.accepted', { status: event.cmd });
      else log.warn('command.refused', { code: event.code, reason: event.reason });
    },
  });
}
