import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { Progress } from '../../src/cli/progress.js';
import { storeCommand } from '../../src/cli/store.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { ManualClock } from '../../src/util/clock.js';

/** A terminal as far as Progress can tell: isTTY, a width, and every write kept. */
class FakeTty {
  readonly isTTY = true;
  readonly writes: string[] = [];
  constructor(readonly columns = 100) {}
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
}

describe('progress on a terminal', () => {
  it('redraws one line in place, at most once per interval, but always a new step and the end', () => {
    const tty = new FakeTty();
    const clock = new ManualClock();
    const progress = new Progress({ stream: tty, now: () => clock.now(), intervalMs: 100 });

    progress.update('copying', 0, 4096, 'bytes');
    progress.update('copying', 1024, 4096, 'bytes'); // same instant: throttled
    clock.advance(99);
    progress.update('copying', 2048, 4096, 'bytes'); // still inside the interval
    clock.advance(1);
    progress.update('copying', 3072, 4096, 'bytes');
    progress.update('copying', 4096, 4096, 'bytes'); // the end of a step is always shown
    progress.update('re-encrypting'); // a new step is always shown
    progress.update('checking', 1, 3);
    progress.finish();

    expect(tty.writes).toEqual([
      '\rcopying [--------------------] 0% (0 B of 4.0 KiB)\x1b[K',
      '\rcopying [###############-----] 75% (3.0 KiB of 4.0 KiB)\x1b[K',
      '\rcopying [####################] 100% (4.0 KiB of 4.0 KiB)\x1b[K',
      '\rre-encrypting...\x1b[K',
      '\rchecking [#######-------------] 33% (1 row of 3 rows)\x1b[K',
      '\r\x1b[K',
    ]);
  });

  it('fits the line into the terminal width and prints a summary as an ordinary line', () => {
    const tty = new FakeTty(20);
    const progress = new Progress({ stream: tty, now: () => 0 });
    progress.update('checking every row', 5, 10);
    progress.finish('done: 10 rows');
    expect(tty.writes).toEqual(['\rchecking every row \x1b[K', '\r\x1b[K', 'done: 10 rows\n']);
  });
});

describe('progress anywhere else', () => {
  it('draws nothing, and prints only the final summary', () => {
    const writes: string[] = [];
    const pipe = { isTTY: false, write: (text: string) => writes.push(text) };
    const clock = new ManualClock();
    const progress = new Progress({ stream: pipe, now: () => clock.now() });
    for (let i = 0; i <= 10; i++) {
      progress.update('copying', i, 10);
      clock.advance(1000);
    }
    progress.finish('rotated');
    expect(writes).toEqual(['rotated\n']);
  });
});

describe('rpm-gateway store rekey shows its progress', () => {
  async function storeWithRows(rows: number): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'rpm-progress-'));
    const box = new Outbox({
      path: join(dir, 'outbox.db'),
      keys: new KeyFileProvider(join(dir, 'store.key')),
    });
    await box.open();
    await Promise.all(Array.from({ length: rows }, (_, i) => box.append(spo2Measurement(i))));
    box.close();
    return dir;
  }

  function capture(tty: boolean): { stream: Writable & { isTTY?: boolean }; text: () => string } {
    let text = '';
    const stream = new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk);
        done();
      },
    }) as Writable & { isTTY?: boolean };
    stream.isTTY = tty;
    return { stream, text: () => text };
  }

  it('on a terminal: each step on one line, ending with every row checked, then the line cleared', async () => {
    const dir = await storeWithRows(1500);
    try {
      const stderr = capture(true);
      const stdout = capture(false);
      const code = await storeCommand(['rekey'], {
        stdin: new PassThrough(),
        stdout: stdout.stream,
        stderr: stderr.stream,
        env: { RPM_GATEWAY_DATA_DIR: dir },
      });
      expect(code).toBe(0);
      const err = stderr.text();
      expect(err.startsWith('\rcopying the store [--------------------] 0% (0 B of ')).toBe(true);
      expect(err).toContain('\rre-encrypting under the new key...\x1b[K');
      expect(err).toContain(
        '\rchecking every row under the new key [####################] 100% (1,500 rows of 1,500 rows)\x1b[K',
      );
      expect(err.endsWith('\r\x1b[K')).toBe(true);
      expect(stdout.text()).toMatch(/^rotated the key of .*outbox\.db \(1500 rows, \d+ ms\)\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('in a pipe: nothing on stderr, the summary on stdout', async () => {
    const dir = await storeWithRows(10);
    try {
      const stderr = capture(false);
      const stdout = capture(false);
      const code = await storeCommand(['rekey'], {
        stdin: new PassThrough(),
        stdout: stdout.stream,
        stderr: stderr.stream,
        env: { RPM_GATEWAY_DATA_DIR: dir },
      });
      expect(code).toBe(0);
      expect(stderr.text()).toBe('');
      expect(stdout.text()).toMatch(/^rotated the key of .*outbox\.db \(10 rows, \d+ ms\)\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
