import { DecodeError } from '../errors.js';

const HEX = /^[0-9a-fA-F]*$/;

/**
 * Parses payload hex as testers paste it: "0a0b", "0A 0B", "0a:0b", "0x0a0b". Anything else is a typed
 * DECODE_BAD_HEX (or DECODE_EMPTY_INPUT), never an exception of another kind.
 */
export function parseHex(input: string): Uint8Array {
  let text = input.trim();
  if (text.startsWith('0x') || text.startsWith('0X')) text = text.slice(2);
  text = text.replace(/[\s:-]/g, '');
  if (text.length === 0) throw new DecodeError('DECODE_EMPTY_INPUT', 'empty payload: no hex digits');
  if (!HEX.test(text)) {
    const bad = text.search(/[^0-9a-fA-F]/);
    throw new DecodeError('DECODE_BAD_HEX', `not hex: unexpected character at digit ${bad}`);
  }
  if (text.length % 2 !== 0) throw new DecodeError('DECODE_BAD_HEX', 'odd number of hex digits');
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
