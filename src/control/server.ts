import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { CandidateView, EnrolmentInteraction } from '../enrolment/guided.js';
import { GatewayError } from '../errors.js';
import { DeviceError } from '../store/device-errors.js';
import { ControlError } from './errors.js';
import type { HubControl } from './hub-control.js';
import {
  type AnswerValue,
  type BadMessage,
  encode,
  LineSplitter,
  MAX_LINE_BYTES,
  type Prompt,
  parseClientMessage,
  type Request,
  type ServerMessage,
  SOCKET_NAME,
} from './protocol.js';
import { prepareRuntimeDir } from './runtime-dir.js';

export interface ControlServerOptions {
  /** The runtime directory (paths.runtimeDir): made 0700 when missing, refused when looser or not ours. */
  readonly runtimeDir: string;
  readonly control: HubControl;
  /** A request failed for a reason that is not a GatewayError (a bug): for the hub's log. */
  readonly onInternalError?: (error: unknown) => void;
}

/** The audit log's name for whoever comes through the socket: root or the service user (see runtime-dir.ts). */
const ACTOR = 'control';

/** sun_path holds 108 bytes with its terminating NUL on Linux (unix(7)). */
const MAX_SOCKET_PATH = 107;

/**
 * The running hub's control socket, `<runtimeDir>/control.sock` (docs/control-socket.md): many clients, one
 * request per line, each answered by one call to the HubControl. Nothing a client sends can stop it: every
 * line is validated (src/control/protocol.ts) and a bad one gets an error reply.
 */
export class ControlServer {
  private socketIno: number | undefined;

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly connections: Set<Connection>,
  ) {}

  /**
   * Prepares the runtime directory and listens. A socket file left by a hub that died is replaced, once
   * nothing answers on it; one that answers belongs to a running hub, and is left alone (CONTROL_IN_USE).
   */
  static async listen(options: ControlServerOptions): Promise<ControlServer> {
    const path = join(options.runtimeDir, SOCKET_NAME);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      throw new ControlError(
        'CONTROL_IO',
        `the control socket path ${path} is longer than a unix socket allows (${MAX_SOCKET_PATH} bytes); choose a shorter paths.runtimeDir`,
      );
    }
    await prepareRuntimeDir(options.runtimeDir);
    const connections = new Set<Connection>();
    const server = createServer({ allowHalfOpen: false }, (socket) => {
      const connection = new Connection(socket, options, () => connections.delete(connection));
      connections.add(connection);
    });
    try {
      await listenOn(server, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw listenError(path, error);
      await removeIfStale(path);
      await listenOn(server, path).catch((again: unknown) => Promise.reject(listenError(path, again)));
    }
    // Owner only as well (connect(2) needs write permission on the socket file, unix(7)); the directory is the
    // barrier that holds whatever the umask made of this file in the moment before.
    await chmod(path, 0o600).catch((error: unknown) => Promise.reject(listenError(path, error)));
    const control = new ControlServer(server, path, connections);
    control.socketIno = (await lstat(path)).ino;
    return control;
  }

  /** Stops listening, ends every connection (a pairing under way is cancelled) and removes the socket file. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.end();
    await closed;
    // Only the file this server made: a later hub's socket at the same path is not ours to remove.
    try {
      if ((await lstat(this.path)).ino === this.socketIno) await unlink(this.path);
    } catch {
      // gone already
    }
  }
}

function listenOn(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    server.once('error', failed);
    server.listen(path, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function listenError(path: string, error: unknown): unknown {
  if (error instanceof ControlError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new ControlError('CONTROL_IO', `cannot listen on ${path} (${code})`, { cause: error });
}

/**
 * EADDRINUSE: something is at the socket's path. A hub that answers keeps it. A socket nobody answers
 * (ECONNREFUSED: its listener died without unlinking it, e.g. SIGKILL) is removed. Anything that is not a
 * socket is not ours to delete.
 */
async function removeIfStale(path: string): Promise<void> {
  const answered = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (answered) {
    throw new ControlError(
      'CONTROL_IN_USE',
      `another hub answers on ${path}: is the gateway running already? (systemctl status rpm-gateway)`,
    );
  }
  const stats = await lstat(path).catch(() => undefined);
  if (stats === undefined) return; // removed meanwhile
  if (!stats.isSocket()) {
    throw new ControlError(
      'CONTROL_DIR_UNSAFE',
      `${path} is not a socket; remove it if nothing else uses it, then start the hub again`,
    );
  }
  await unlink(path).catch((error: unknown) => Promise.reject(listenError(path, error)));
}

interface Waiting {
  readonly prompt: Prompt;
  readonly resolve: (value: AnswerValue) => void;
  readonly reject: (error: Error) => void;
}

/** One client: its requests under way and, for a pairing, the question it has to answer. */
class Connection {
  private readonly inFlight = new Set<number>();
  private readonly waiting = new Map<number, Waiting>();
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: ControlServerOptions,
    private readonly onClose: () => void,
  ) {
    const lines = new LineSplitter(
      (line) => this.receive(line),
      () =>
        this.send({
          id: null,
          error: {
            code: 'CONTROL_BAD_MESSAGE',
            message: `a line longer than ${MAX_LINE_BYTES} bytes was skipped`,
          },
        }),
    );
    socket.on('data', (chunk: Buffer) => lines.push(chunk));
    socket.on('error', () => undefined); // a client gone mid-write: 'close' follows
    socket.on('close', () => {
      this.closed = true;
      for (const [, waiting] of this.waiting) {
        waiting.reject(new ControlError('CONTROL_CLOSED', 'the client went away; the pairing is cancelled'));
      }
      this.waiting.clear();
      this.onClose();
    });
  }

  end(): void {
    this.socket.destroy();
  }

  private send(message: ServerMessage): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(encode(message));
  }

  private receive(line: string): void {
    let message: ReturnType<typeof parseClientMessage>;
    try {
      message = parseClientMessage(line);
    } catch (error) {
      const bad = error as BadMessage;
      this.send({ id: bad.requestId, error: { code: bad.code, message: bad.message } });
      return;
    }
    if ('answer' in message) {
      this.answer(message.id, message.answer);
      return;
    }
    if (this.inFlight.has(message.id)) {
      this.send({
        id: null,
        error: { code: 'CONTROL_BAD_MESSAGE', message: `request ${message.id} is under way already` },
      });
      return;
    }
    this.inFlight.add(message.id);
    this.run(message)
      .then(
        (result) => this.send({ id: message.id, result }),
        (error: unknown) => this.send({ id: message.id, error: this.describe(error) }),
      )
      .finally(() => this.inFlight.delete(message.id));
  }

  private run(request: Request): Promise<unknown> {
    const { control } = this.options;
    switch (request.method) {
      case 'status':
        return control.status();
      case 'devices':
        return control.devices({ addresses: request.params.addresses === true, actor: ACTOR });
      case 'forget':
        return control.forget(request.params.id, {
          actor: ACTOR,
          showAddress: request.params.showAddress === true,
        });
      case 'store-status':
        return control.storeStatus();
      case 'pair':
        return control.enrol(request.params, this.interaction(request.id), ACTOR);
    }
  }

  /** The pairing's questions, asked of this client under the request's id. */
  private interaction(id: number): EnrolmentInteraction {
    const ask = (prompt: Prompt) =>
      new Promise<AnswerValue>((resolve, reject) => {
        if (this.closed) {
          reject(new ControlError('CONTROL_CLOSED', 'the client went away; the pairing is cancelled'));
          return;
        }
        this.waiting.set(id, { prompt, resolve, reject });
        this.send({ id, prompt });
      });
    const cancelled = (what: string) => new DeviceError('DEVICE_NOT_CHOSEN', `${what}; nothing was paired`);
    return {
      notify: (event) => this.send({ id, event }),
      display: (passkey) => this.send({ id, event: { kind: 'display', passkey } }),
      choose: async (_candidates: readonly CandidateView[]) => {
        const answer = await ask({ kind: 'choose' });
        return typeof answer === 'number' ? answer : undefined;
      },
      approve: async (candidate, how) =>
        (await ask({ kind: 'approve', number: candidate.number, picked: how.picked })) === true,
      passkey: async () => {
        const answer = await ask({ kind: 'passkey' });
        if (typeof answer !== 'number') throw cancelled('no passkey was entered');
        return answer;
      },
      confirm: async (passkey) => (await ask({ kind: 'confirm', passkey })) === true,
    };
  }

  private answer(id: number, value: AnswerValue): void {
    const waiting = this.waiting.get(id);
    if (!waiting) {
      this.send({
        id: null,
        error: {
          code: 'CONTROL_BAD_MESSAGE',
          message: `no question is waiting for an answer under id ${id}`,
        },
      });
      return;
    }
    this.waiting.delete(id);
    const expected = answerProblem(waiting.prompt, value);
    if (expected) waiting.reject(new ControlError('CONTROL_BAD_MESSAGE', `the answer must be ${expected}`));
    else waiting.resolve(value);
  }

  private describe(error: unknown): { code: string; message: string } {
    if (error instanceof GatewayError) return { code: error.code, message: error.message };
    this.options.onInternalError?.(error);
    return { code: 'CONTROL_INTERNAL', message: 'the hub failed to answer; its log says why' };
  }
}

/** What the answer to `prompt` must be, when `value` is not that. */
function answerProblem(prompt: Prompt, value: AnswerValue): string | undefined {
  switch (prompt.kind) {
    case 'choose':
      return value === null || (typeof value === 'number' && value >= 1)
        ? undefined
        : 'a device number or null';
    case 'passkey':
      return value === null || typeof value === 'number' ? undefined : 'a passkey 0..999999 or null';
    case 'approve':
    case 'confirm':
      return typeof value === 'boolean' ? undefined : 'true or false';
  }
}
