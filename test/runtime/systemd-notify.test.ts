import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type NotifyProblem, serviceNotifier, watchdogIntervalMs } from '../../src/runtime/systemd-notify.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

interface ListeningSocket {
  bind(path: string): void;
  close(): void;
  on(event: 'message', listener: (message: Buffer) => void): void;
}

/** A stand-in for systemd's notification socket: a real AF_UNIX datagram socket the test reads. */
class FakeServiceManager {
  private readonly socket: ListeningSocket;
  private readonly received: string[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly path: string) {
    const unixDgram = createRequire(import.meta.url)('unix-dgram') as {
      createSocket(type: 'unix_dgram'): ListeningSocket;
    };
    this.socket = unixDgram.createSocket('unix_dgram');
    this.socket.on('message', (message) => {
      this.received.push(message.toString());
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.socket.bind(path);
  }

  /** The next `count` messages, in the order they were sent (datagrams on one socket keep their order). */
  async take(count: number): Promise<string[]> {
    while (this.received.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.received.splice(0, count);
  }

  close(): void {
    this.socket.close();
  }
}

describe('systemd notification (sd_notify protocol)', () => {
  let dir: string;
  let manager: FakeServiceManager;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rpm-notify-'));
    manager = new FakeServiceManager(join(dir, 'notify'));
  });

  afterEach(() => {
    manager.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends READY, STATUS and STOPPING as datagrams to $NOTIFY_SOCKET', async () => {
    const notifier = serviceNotifier({
      env: { NOTIFY_SOCKET: manager.path },
      pid: 4242,
      scheduler: new VirtualScheduler(),
    });
    notifier.ready('2 devices, broker connected');
    notifier.status('draining\nbacklog');
    notifier.stopping('stopping: committing');
    notifier.close();
    expect(await manager.take(3)).toEqual([
      'READY=1\nSTATUS=2 devices, broker connected',
      'STATUS=draining backlog',
      'STOPPING=1\nSTATUS=stopping: committing',
    ]);
  });

  it('pings the watchdog at half the interval, and not while the hub says it is unhealthy', async () => {
    const scheduler = new VirtualScheduler();
    const notifier = serviceNotifier({
      env: { NOTIFY_SOCKET: manager.path, WATCHDOG_USEC: '20000000', WATCHDOG_PID: '77' },
      pid: 77,
      scheduler,
    });
    let healthy = true;
    notifier.startWatchdog(() => healthy);
    scheduler.advance(10_000);
    expect(await manager.take(1)).toEqual(['WATCHDOG=1']);

    healthy = false;
    scheduler.advance(30_000); // three periods without a ping
    notifier.status('marker'); // datagrams keep their order: nothing may arrive before this one
    expect(await manager.take(1)).toEqual(['STATUS=marker']);

    healthy = true;
    scheduler.advance(10_000);
    expect(await manager.take(1)).toEqual(['WATCHDOG=1']);
    notifier.close();
    expect(scheduler.pending).toBe(0);
  });

  it('does not ping for another process that inherited WATCHDOG_USEC', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '5000000', WATCHDOG_PID: '10' }, 11)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '5000000', WATCHDOG_PID: '10' }, 10)).toBe(5000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '5000000' }, 10)).toBe(5000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 10)).toBeUndefined();
    expect(watchdogIntervalMs({}, 10)).toBeUndefined();
  });

  it('does nothing without $NOTIFY_SOCKET, and reports an abstract socket it cannot use', () => {
    const scheduler = new VirtualScheduler();
    const quiet = serviceNotifier({ env: {}, pid: 1, scheduler });
    quiet.ready('x');
    quiet.startWatchdog(() => true);
    expect(scheduler.pending).toBe(0);

    const problems: NotifyProblem[] = [];
    serviceNotifier({
      env: { NOTIFY_SOCKET: '@/org/example/notify' },
      pid: 1,
      scheduler,
      onProblem: (problem) => problems.push(problem),
    }).ready('x');
    expect(problems).toEqual([{ kind: 'abstract-socket', socket: '@/org/example/notify' }]);
  });

  it('reports a socket nobody listens on once, and goes on', async () => {
    const problems: NotifyProblem[] = [];
    const notifier = serviceNotifier({
      env: { NOTIFY_SOCKET: join(dir, 'nobody-here') },
      pid: 1,
      scheduler: new VirtualScheduler(),
      onProblem: (problem) => problems.push(problem),
    });
    notifier.ready('a');
    notifier.status('b');
    notifier.close();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: 'send-failed' });
  });
});
