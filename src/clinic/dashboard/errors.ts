import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { GatewayError } from '../../errors.js';

/** Stable codes of the clinic dashboard as `rpm-gateway clinic serve` starts it (docs/errors.md, "Clinic dashboard"). */
export type DashboardErrorCode =
  /** dashboard.cert and dashboard.key are not a certificate and its private key (PEM), or do not belong together. */
  | 'DASHBOARD_TLS_INVALID'
  /** dashboard.cert does not name the host of dashboard.publicOrigin: every browser would refuse it. */
  | 'DASHBOARD_CERT_NAME_MISMATCH'
  /** dashboard.hubCommands.cert is not a clinic certificate with its key: hubs would refuse every command. */
  | 'DASHBOARD_COMMAND_SIGNER_INVALID'
  /** `clinic serve` on SQLite without an intake: section (the alarm engine needs the intake's live feed). */
  | 'DASHBOARD_NEEDS_INTAKE';

export class DashboardError extends GatewayError {
  declare readonly code: DashboardErrorCode;

  constructor(code: DashboardErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * Checks before listening what a browser would otherwise find only at the first visit: that the key belongs to
 * the certificate (OpenSSL refuses the pair in SSL_CTX_check_private_key), and that the certificate's subject
 * alternative names cover the public origin's host (RFC 6125 section 6; browsers ignore the CN).
 */
export function checkDashboardTls(
  tls: { readonly cert: string; readonly key: string },
  publicOrigin: string,
): void {
  let cert: X509Certificate;
  try {
    createSecureContext({ cert: tls.cert, key: tls.key });
    cert = new X509Certificate(tls.cert);
  } catch (cause) {
    throw new DashboardError(
      'DASHBOARD_TLS_INVALID',
      'dashboard.cert and dashboard.key are not a PEM certificate and the private key that belongs to it',
      { cause },
    );
  }
  const host = new URL(publicOrigin).hostname.replace(/^\[(.*)\]$/, '$1');
  const covered = isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
  if (!covered) {
    throw new DashboardError(
      'DASHBOARD_CERT_NAME_MISMATCH',
      `dashboard.cert does not name ${host}, the host of dashboard.publicOrigin, so browsers would refuse it; use a server certificate that names it (for development: rpm-gateway certs init --server-name <host>)`,
    );
  }
}
