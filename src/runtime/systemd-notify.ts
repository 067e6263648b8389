import { createRequire } from 'node:module';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';

/**
 * The service manager protocol of systemd (sd_notify(3)): a `Type=notify` unit tells systemd it is ready
 * (`READY=1`), what it is doing (`STATUS=`), that it is stopping (`STOPPING=1`), and, with `WatchdogSec=`,
 * that it is alive (`WATCHDOG=1`) at least once per interval, or systemd kills and restarts it.
 *
 * The messages are datagrams on the AF_UNIX socket named by $NOTIFY_SOCKET. Node has no unix datagram
 * sockets (node:dgram is UDP only, node:net is SOCK_STREAM only), so this uses the small native addon
 * `unix-dgram`. The alternative, spawning `systemd-notify` for each message, is unreliable before systemd 254:
 * systemd attributes a datagram to a unit by the sender's PID, and `systemd-notify` often exits before
 * systemd reads the message, which is then dropped (systemd-notify(1), "--pid", and systemd issue #2737).
 * Raspberry Pi OS Bookworm ships systemd 252, where that race is real. Sending from the service's own main
 * process avoids it and needs only the default `NotifyAccess=main`.
 *
 * Abstract socket names (a $NOTIFY_SOCKET beginning with `@`) are not supported by the addon; systemd's own
 * socket is a path (/run/systemd/notify), so this only matters inside some containers, and is reported.
 */
export interface ServiceNotifier {
  /** The service finished starting; `status` is shown by `systemctl status`. */
  ready(status: string): void;
  status(status: string): void;
  stopping(status: string): void;
  /** Starts the watchdog pings (if systemd asked for them); `healthy` is asked before every ping. */
  startWatchdog(healthy: () => boolean): void;
  /** Stops pinging and closes the socket. */
  close(): void;
}

/** What systemd put in the environment (sd_notify(3), sd_watchdog_enabled(3)). */
export interface NotifyEnvironment {
  readonly NOTIFY_SOCKET?: string | undefined;
  readonly WATCHDOG_USEC?: string | undefined;
  readonly WATCHDOG_PID?: string | undefined;
}

export type NotifyProblem =
  | { readonly kind: 'abstract-socket'; readonly socket: string }
  | { readonly kind: 'send-failed'; readonly message: string };

export interface NotifierOptions {
  readonly env: NotifyEnvironment;
  readonly pid: number;
  readonly scheduler: Scheduler;
  /** Told once per kind of problem; the hub logs it (readiness that never arrives makes systemd time out). */
  readonly onProblem?: (problem: NotifyProblem) => void;
  /** The datagram transport; the default is unix-dgram. */
  readonly openSocket?: (path: string) => DatagramSender;
}

export interface DatagramSender {
  send(message: Buffer, callback: (error?: Error) => void): void;
  close(): void;
}

/** Not run under systemd (or not as Type=notify): every call does nothing. */
const NO_SERVICE_MANAGER: ServiceNotifier = {
  ready: () => undefined,
  status: () => undefined,
  stopping: () => undefined,
  startWatchdog: () => undefined,
  close: () => undefined,
};

export function serviceNotifier(options: NotifierOptions): ServiceNotifier {
  const socket = options.env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return NO_SERVICE_MANAGER;
  if (socket.startsWith('@')) {
    options.onProblem?.({ kind: 'abstract-socket', socket });
    return NO_SERVICE_MANAGER;
  }
  return new SystemdNotifier(socket, options);
}

/**
 * The watchdog interval systemd asked for, in ms, or undefined. As sd_watchdog_enabled(3): WATCHDOG_USEC set,
 * and WATCHDOG_PID (when set) naming this process, since a child that inherited the variables must not ping
 * on the parent's behalf.
 */
export function watchdogIntervalMs(env: NotifyEnvironment, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (env.WATCHDOG_USEC === undefined || !Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 1000));
}

class SystemdNotifier implements ServiceNotifier {
  private sender: DatagramSender | undefined;
  private watchdogTimer: TimerHandle | undefined;
  private sendFailedTold = false;

  constructor(
    private readonly socketPath: string,
    private readonly options: NotifierOptions,
  ) {}

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${oneLine(status)}`);
  }

  status(status: string): void {
    this.send(`STATUS=${oneLine(status)}`);
  }

  stopping(status: string): void {
    this.send(`STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  startWatchdog(healthy: () => boolean): void {
    const interval = watchdogIntervalMs(this.options.env, this.options.pid);
    if (interval === undefined || this.watchdogTimer !== undefined) return;
    // sd_watchdog_enabled(3) recommends pinging at half the interval. The ping is skipped while the hub says it
    // is unhealthy (e.g. its event loop is fine but the store stopped committing), so systemd restarts it.
    const period = Math.max(1, Math.floor(interval / 2));
    const tick = (): void => {
      if (healthy()) this.send('WATCHDOG=1');
      this.watchdogTimer = this.options.scheduler.setTimeout(tick, period);
    };
    this.watchdogTimer = this.options.scheduler.setTimeout(tick, period);
  }

  close(): void {
    if (this.watchdogTimer !== undefined) this.options.scheduler.clearTimeout(this.watchdogTimer);
    this.watchdogTimer = undefined;
    this.sender?.close();
    this.sender = undefined;
  }

  private send(message: string): void {
    try {
      this.sender ??= (this.options.openSocket ?? openUnixDgram)(this.socketPath);
      this.sender.send(Buffer.from(message), (error) => {
        if (error) this.sendFailed(error);
      });
    } catch (error) {
      this.sendFailed(error);
    }
  }

  private sendFailed(error: unknown): void {
    if (this.sendFailedTold) return;
    this.sendFailedTold = true;
    this.options.onProblem?.({
      kind: 'send-failed',
      message: error instanceof Error ? error.message : String(error),
    });
  }
}

/** A status text is one line of the protocol's newline-separated assignments. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

interface UnixDgramSocket {
  send(buffer: Buffer, offset: number, length: number, path: string, callback: (error?: Error) => void): void;
  close(): void;
  on(event: 'error', listener: (error: Error) => void): void;
}

interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

function openUnixDgram(path: string): DatagramSender {
  // unix-dgram is CommonJS without types; loaded on first use so a process that never runs under systemd never
  // loads the addon.
  const unixDgram = createRequire(import.meta.url)('unix-dgram') as UnixDgramModule;
  const socket = unixDgram.createSocket('unix_dgram');
  let lastError: Error | undefined;
  socket.on('error', (error) => {
    lastError = error;
  });
  return {
    send(message, callback) {
      socket.send(message, 0, message.length, path, (error) => callback(error ?? lastError));
    },
    close() {
      socket.close();
    },
  };
}
