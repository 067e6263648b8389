import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { GatewayError } from '../errors.js';
import { ControlError } from './errors.js';
import {
  type AnswerValue,
  encode,
  LineSplitter,
  type Method,
  type Params,
  PROTOCOL_VERSION,
  type Prompt,
  parseServerMessage,
  type ServerMessage,
  SOCKET_NAME,
} from './protocol.js';

export interface CallHandlers {
  /** Progress told under the request (a pairing's scan, list, steps). */
  readonly onEvent?: (event: { readonly kind: string; readonly [key: string]: unknown }) => void;
  /** A question from the hub; the answer is sent back. Without a handler every question is cancelled. */
  readonly onPrompt?: (prompt: Prompt) => Promise<AnswerValue>;
}

interface Call {
  readonly handlers: CallHandlers;
  /** A question this side could not answer (the user gave up): the reason the call then fails. */
  cancelledBy?: Error;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Connects to the running hub's control socket in `runtimeDir`. Undefined when no hub listens there (no socket:
 * ENOENT; a socket nobody answers: ECONNREFUSED), so the command opens the store itself. A socket this user may
 * not reach (EACCES: the runtime directory is the service user's, mode 0700) is CONTROL_NO_ACCESS naming the
 * folder: the hub runs, and opening the store instead would only meet its lock.
 */
export async function connectControl(runtimeDir: string): Promise<ControlClient | undefined> {
  const path = join(runtimeDir, SOCKET_NAME);
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(new ControlClient(socket));
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      switch (error.code) {
        case 'ENOENT':
        case 'ENOTDIR':
        case 'ECONNREFUSED':
          resolve(undefined);
          return;
        case 'EACCES':
        case 'EPERM':
          reject(
            new ControlError(
              'CONTROL_NO_ACCESS',
              `the running hub's control socket in ${runtimeDir} is open to the service user and root only: run this as root (sudo rpm-gateway ...) or as the service user (sudo -u rpm-gateway rpm-gateway ...)`,
              { cause: error },
            ),
          );
          return;
        default:
          reject(
            new ControlError(
              'CONTROL_IO',
              `cannot reach the control socket ${path} (${error.code ?? error.message})`,
              {
                cause: error,
              },
            ),
          );
      }
    });
  });
}

/** One connection to the hub; calls may run side by side, each under its own id. */
export class ControlClient {
  private nextId = 1;
  private readonly calls = new Map<number, Call>();
  private failure: Error | undefined;

  constructor(private readonly socket: Socket) {
    const lines = new LineSplitter(
      (line) => this.receive(line),
      () => this.fail(new ControlError('CONTROL_BAD_MESSAGE', 'the hub sent a line longer than allowed')),
    );
    socket.on('data', (chunk: Buffer) => lines.push(chunk));
    socket.on('error', (error) =>
      this.fail(new ControlError('CONTROL_CLOSED', `the connection to the hub failed: ${error.message}`)),
    );
    socket.on('close', () =>
      this.fail(
        new ControlError('CONTROL_CLOSED', 'the hub closed the connection before answering (did it stop?)'),
      ),
    );
  }

  call<M extends Method>(method: M, params: Params<M>, handlers: CallHandlers = {}): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { handlers, resolve, reject });
      this.socket.write(encode({ v: PROTOCOL_VERSION, id, method, params } as never));
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private receive(line: string): void {
    let message: ServerMessage;
    try {
      message = parseServerMessage(line);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if ('error' in message && message.id === null) {
      // About the connection, not one request: this client sent something the hub refused.
      this.fail(new GatewayError(message.error.code, message.error.message));
      return;
    }
    const call = message.id === null ? undefined : this.calls.get(message.id);
    if (!call) return; // a late message for a call given up on
    const id = message.id as number;
    if ('result' in message) {
      this.calls.delete(id);
      call.resolve(message.result);
    } else if ('error' in message) {
      this.calls.delete(id);
      call.reject(call.cancelledBy ?? new GatewayError(message.error.code, message.error.message));
    } else if ('event' in message) {
      call.handlers.onEvent?.(message.event);
    } else if ('prompt' in message) {
      const ask = call.handlers.onPrompt ?? (async () => null);
      ask(message.prompt).then(
        (answer) => this.socket.write(encode({ v: PROTOCOL_VERSION, id, answer })),
        (error: unknown) => {
          call.cancelledBy = error as Error;
          this.socket.write(encode({ v: PROTOCOL_VERSION, id, answer: null }));
        },
      );
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const [, call] of this.calls) call.reject(error);
    this.calls.clear();
    this.socket.destroy();
  }
}
