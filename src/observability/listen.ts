import type { AddressInfo } from 'node:net';
import { isLoopback } from '../config/schema.js';
import { GatewayError } from '../errors.js';

/** Stable codes of the hub's own HTTP listeners (the metrics endpoint, the patient page). */
export type ListenerErrorCode =
  /** The host is not a loopback address and allowLan is not set: the listener would be reachable from the LAN. */
  | 'LISTEN_NOT_LOOPBACK'
  /** The address could not be bound (in use, not an address of this machine, no permission for the port). */
  | 'LISTEN_FAILED';

export class ListenerError extends GatewayError {
  declare readonly code: ListenerErrorCode;

  constructor(code: ListenerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Where a listener binds; the same three keys as the `metrics` and `patientPage` configuration sections. */
export interface ListenAddress {
  readonly host: string;
  /** 0 lets the kernel choose a free port (tests); the bound one is in `address()` after start. */
  readonly port: number;
  readonly allowLan: boolean;
}

/**
 * The configuration schema refuses a non-loopback host without allowLan already; the listeners check again
 * because they are also built from code (tests, the demo), and a page of health data must never end up on the
 * network by a caller's mistake.
 */
export function checkListenAddress(what: string, address: ListenAddress): void {
  if (!isLoopback(address.host) && !address.allowLan) {
    throw new ListenerError(
      'LISTEN_NOT_LOOPBACK',
      `${what}: ${address.host} is not a loopback address, so it would be reachable from the network; set allowLan to serve it there`,
    );
  }
}

/** A bind failure as a ListenerError naming the listener and the address, never a stack trace. */
export function listenFailed(what: string, address: ListenAddress, cause: unknown): ListenerError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === 'EADDRINUSE'
      ? 'the port is in use by another program'
      : code === 'EADDRNOTAVAIL'
        ? 'that address is not one of this machine'
        : code === 'EACCES'
          ? 'no permission to use that port'
          : ((cause as Error | undefined)?.message ?? 'unknown reason');
  return new ListenerError('LISTEN_FAILED', `${what} cannot listen on ${hostPort(address)}: ${reason}`, {
    cause,
  });
}

export function hostPort(address: { readonly host: string; readonly port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** The bound address of a started server, as `{ host, port }`. */
export function boundAddress(info: AddressInfo | string | null): { host: string; port: number } {
  if (info === null || typeof info === 'string') throw new Error('the server is not listening on TCP');
  return { host: info.address, port: info.port };
}
