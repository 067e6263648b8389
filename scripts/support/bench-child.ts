import { type ChildProcess, fork } from 'node:child_process';

/**
 * A benchmark's helper process (forked with IPC): what it answers, by message type, in the order it answers.
 * Each side of a benchmark runs in a process of its own so that each one's CPU and RSS are its own. A child
 * reports `{ type: 'error', message }` when it fails; `next` then rejects, and so does every wait once the
 * child has exited. `{ type: 'event', event }` messages are progress, printed to stderr as they come.
 */
export interface BenchChild {
  readonly proc: ChildProcess;
  next(type: string): Promise<Record<string, unknown>>;
  send(message: object): void;
}

/** Forks `script` (a built .js path) with `config` as its one argument, JSON. */
export function benchChild(script: string, config: object, execArgv: string[] = []): BenchChild {
  const name = script.split('/').at(-1) ?? script;
  const proc = fork(script, [JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
  });
  const inbox: Record<string, unknown>[] = [];
  const waiting: {
    type: string;
    resolve: (m: Record<string, unknown>) => void;
    reject: (e: Error) => void;
  }[] = [];
  const deliver = () => {
    for (const w of [...waiting]) {
      const i = inbox.findIndex((m) => m.type === w.type || m.type === 'error');
      if (i < 0) continue;
      const [message] = inbox.splice(i, 1) as [Record<string, unknown>];
      waiting.splice(waiting.indexOf(w), 1);
      if (message.type === 'error') w.reject(new Error(`${name}: ${String(message.message)}`));
      else w.resolve(message);
    }
  };
  proc.on('message', (message: Record<string, unknown>) => {
    if (message.type === 'event') {
      console.error(`${name}: ${JSON.stringify(message.event)}`);
      return;
    }
    inbox.push(message);
    deliver();
  });
  let exited: string | undefined;
  proc.on('exit', (code, signal) => {
    exited = `${name} exited (${code ?? signal})`;
    for (const w of waiting.splice(0)) w.reject(new Error(exited));
  });
  return {
    proc,
    send: (message) => proc.send(message),
    next: (type) =>
      new Promise((resolve, reject) => {
        waiting.push({ type, resolve, reject });
        deliver();
        // A child that already ended (a crash at start) answers nothing: fail instead of waiting forever.
        if (exited !== undefined && waiting.length > 0) {
          waiting.splice(0);
          reject(new Error(exited));
        }
      }),
  };
}

/** Asks the child to stop ({ type: 'stop' }) and waits for its exit; SIGKILL after 30 s. */
export async function stopBenchChild(c: BenchChild): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((resolve) => c.proc.once('exit', resolve));
  if (c.proc.connected) c.send({ type: 'stop' });
  else c.proc.kill('SIGTERM');
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}
