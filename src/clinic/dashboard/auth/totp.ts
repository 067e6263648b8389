import { Secret, TOTP } from 'otpauth';

/**
 * The second factor: TOTP (RFC 6238) with the parameters every authenticator app supports (RFC 6238 section
 * 4 and Google Authenticator's Key Uri Format: HMAC-SHA-1, 6 digits, 30-second steps). A code is accepted one
 * step either side of now (RFC 6238 section 5.2 allows a step of network delay and clock drift), and each step
 * only once (section 5.2: "the verifier MUST NOT accept the second attempt of the same OTP"), which
 * StaffStore.useTotpStep enforces atomically.
 */
export const TOTP_PARAMETERS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
const WINDOW = 1;

/** 160 random bits, the HMAC-SHA-1 key length RFC 4226 section 4 recommends; base32 (RFC 4648 section 6). */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI an authenticator app reads from the QR code. */
export function totpUri(secretBase32: string, issuer: string, username: string): string {
  return new TOTP({
    issuer,
    label: username,
    secret: Secret.fromBase32(secretBase32),
    ...TOTP_PARAMETERS,
  }).toString();
}

/** The code of the step holding `at` (for tests and the browser test's "authenticator"). */
export function totpCode(secretBase32: string, at: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secretBase32), timestamp: at, ...TOTP_PARAMETERS });
}

/**
 * The time step (RFC 6238 section 4: T = floor(unix time / 30 s)) the code belongs to, or undefined when it is
 * none of now's, the one before or the one after. The caller still has to claim the step (useTotpStep).
 */
export function totpStepOf(secretBase32: string, code: string, at: number): number | undefined {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return undefined;
  const delta = TOTP.validate({
    token,
    secret: Secret.fromBase32(secretBase32),
    timestamp: at,
    window: WINDOW,
    ...TOTP_PARAMETERS,
  });
  if (delta === null) return undefined;
  return TOTP.counter({ period: TOTP_PARAMETERS.period, timestamp: at }) + delta;
}
