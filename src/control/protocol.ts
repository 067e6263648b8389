import { z } from 'zod';
import { ControlError } from './errors.js';

/**
 * The control socket's protocol, version 1 (docs/control-socket.md): newline-delimited JSON (one UTF-8 JSON
 * object per line, https://github.com/ndjson/ndjson-spec) over a SOCK_STREAM unix socket.
 *
 * client -> hub   {"v":1,"id":1,"method":"devices","params":{"addresses":false}}
 * hub -> client   {"id":1,"result":[...]}                  or {"id":1,"error":{"code":"...","message":"..."}}
 *
 * While `pair` runs, the hub tells progress and asks questions under the request's id:
 * hub -> client   {"id":7,"event":{"kind":"candidates","candidates":[...]}}
 * hub -> client   {"id":7,"prompt":{"kind":"passkey"}}
 * client -> hub   {"v":1,"id":7,"answer":123456}           (null cancels)
 *
 * Every message from the socket is checked here, strictly (unknown keys are errors), before anything acts on
 * it; a line that fails gets an error reply and the connection goes on.
 */
export const PROTOCOL_VERSION = 1;

/** The longest line either side accepts, bytes; a line past it is refused (CONTROL_BAD_MESSAGE), not buffered. */
export const MAX_LINE_BYTES = 64 * 1024;

/** The socket's file name in the runtime directory. */
export const SOCKET_NAME = 'control.sock';

export const METHODS = ['status', 'devices', 'forget', 'store-status', 'pair'] as const;
export type Method = (typeof METHODS)[number];

const id = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const PARAMS = {
  status: z.strictObject({}),
  devices: z.strictObject({ addresses: z.boolean().optional() }),
  forget: z.strictObject({ id: z.string().min(1).max(64), showAddress: z.boolean().optional() }),
  'store-status': z.strictObject({}),
  pair: z.strictObject({
    seconds: z.number().positive().max(300),
    pick: z.number().int().min(1).max(1000).optional(),
    label: z.string().max(256).optional(),
    forceBond: z.boolean().optional(),
  }),
} as const satisfies Record<Method, z.ZodType>;

export type Params<M extends Method> = z.infer<(typeof PARAMS)[M]>;

export type Request = { [M in Method]: { v: 1; id: number; method: M; params: Params<M> } }[Method];

/** A reply to a prompt: a number (a device number, a passkey), a yes/no, or null to cancel. */
export type AnswerValue = number | boolean | null;
export interface Answer {
  readonly v: 1;
  readonly id: number;
  readonly answer: AnswerValue;
}

export type ClientMessage = Request | Answer;

const envelope = z.strictObject({
  v: z.unknown(),
  id,
  method: z.string().max(64).optional(),
  params: z.unknown().optional(),
  answer: z.union([z.number().int().min(0).max(999_999), z.boolean(), z.null()]).optional(),
});

/** The question asked; the expected answer is in the comment. */
export type Prompt =
  /** Which device of the list told in the `candidates` event: its number, or null. */
  | { readonly kind: 'choose' }
  /** Go ahead with this device? true or false. */
  | { readonly kind: 'approve'; readonly number: number; readonly picked: boolean }
  /** The 6-digit passkey the device shows: a number 0..999999, or null. */
  | { readonly kind: 'passkey' }
  /** Does the device show this passkey (numeric comparison)? true or false. */
  | { readonly kind: 'confirm'; readonly passkey: number };

export type ServerMessage =
  | { readonly id: number; readonly result: unknown }
  | { readonly id: number | null; readonly error: { readonly code: string; readonly message: string } }
  | { readonly id: number; readonly prompt: Prompt }
  | { readonly id: number; readonly event: { readonly kind: string; readonly [key: string]: unknown } };

/**
 * Reads one line from a client. Throws ControlError (CONTROL_BAD_MESSAGE, CONTROL_VERSION) with the request's id
 * attached when it could be read, so the reply can name the request it refuses.
 */
export function parseClientMessage(line: string): ClientMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new BadMessage(null, 'CONTROL_BAD_MESSAGE', 'not a JSON object');
  }
  const requestId =
    typeof value === 'object' && value !== null && id.safeParse((value as { id?: unknown }).id).success
      ? ((value as { id: number }).id as number)
      : null;
  const shape = envelope.safeParse(value);
  if (!shape.success) throw new BadMessage(requestId, 'CONTROL_BAD_MESSAGE', describe(shape.error));
  const message = shape.data;
  if (message.v !== PROTOCOL_VERSION) {
    throw new BadMessage(
      message.id,
      'CONTROL_VERSION',
      `protocol version ${JSON.stringify(message.v)} is not spoken here (this hub speaks ${PROTOCOL_VERSION}); use the same rpm-gateway version as the running hub`,
    );
  }
  if ('answer' in message && message.answer !== undefined) {
    if (message.method !== undefined || message.params !== undefined) {
      throw new BadMessage(
        message.id,
        'CONTROL_BAD_MESSAGE',
        'a message is a request or an answer, not both',
      );
    }
    return { v: 1, id: message.id, answer: message.answer };
  }
  if (message.method === undefined) {
    throw new BadMessage(message.id, 'CONTROL_BAD_MESSAGE', 'a request needs a method');
  }
  if (!(METHODS as readonly string[]).includes(message.method)) {
    throw new BadMessage(
      message.id,
      'CONTROL_BAD_MESSAGE',
      `unknown method ${JSON.stringify(message.method)}; expected one of ${METHODS.join(', ')}`,
    );
  }
  const method = message.method as Method;
  const params = PARAMS[method].safeParse(message.params ?? {});
  if (!params.success) {
    throw new BadMessage(message.id, 'CONTROL_BAD_MESSAGE', `${method}: ${describe(params.error)}`);
  }
  return { v: 1, id: message.id, method, params: params.data } as Request;
}

const serverEnvelope = z.union([
  z.strictObject({ id, result: z.unknown() }),
  z.strictObject({
    id: id.nullable(),
    error: z.strictObject({ code: z.string().max(64), message: z.string().max(4096) }),
  }),
  z.strictObject({
    id,
    prompt: z.union([
      z.strictObject({ kind: z.literal('choose') }),
      z.strictObject({ kind: z.literal('approve'), number: z.number().int(), picked: z.boolean() }),
      z.strictObject({ kind: z.literal('passkey') }),
      z.strictObject({ kind: z.literal('confirm'), passkey: z.number().int().min(0).max(999_999) }),
    ]),
  }),
  z.looseObject({ id, event: z.looseObject({ kind: z.string() }) }),
]);

/** Reads one line from the hub (the client's side): a malformed one is CONTROL_BAD_MESSAGE. */
export function parseServerMessage(line: string): ServerMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ControlError('CONTROL_BAD_MESSAGE', 'the hub sent a line that is not JSON');
  }
  const parsed = serverEnvelope.safeParse(value);
  if (!parsed.success) {
    throw new ControlError(
      'CONTROL_BAD_MESSAGE',
      `the hub sent an unexpected message: ${describe(parsed.error)}`,
    );
  }
  return parsed.data as ServerMessage;
}

/** A refused client message, with the id of the request it belongs to when that could be read. */
export class BadMessage extends ControlError {
  constructor(
    readonly requestId: number | null,
    code: 'CONTROL_BAD_MESSAGE' | 'CONTROL_VERSION',
    message: string,
  ) {
    super(code, message);
  }
}

/** zod's first problem, as "<path>: <message>" (never the value itself). */
function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${path}${issue.message}`;
}

export function encode(message: ServerMessage | ClientMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/**
 * Splits a byte stream into lines of at most MAX_LINE_BYTES. A longer line is reported once (`onTooLong`) and
 * skipped up to its newline, so one bad line does not end the connection and is never buffered whole.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onTooLong: () => void,
    private readonly max = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      const piece = chunk.subarray(start, end);
      if (!this.skipping) {
        if (this.size + piece.length > this.max) {
          this.parts = [];
          this.size = 0;
          this.skipping = true;
          this.onTooLong();
        } else if (piece.length > 0) {
          this.parts.push(piece);
          this.size += piece.length;
        }
      }
      if (newline === -1) return;
      if (this.skipping) {
        this.skipping = false;
      } else {
        const line = Buffer.concat(this.parts).toString('utf8');
        this.parts = [];
        this.size = 0;
        if (line.trim().length > 0) this.onLine(line);
      }
      start = newline + 1;
    }
  }
}
