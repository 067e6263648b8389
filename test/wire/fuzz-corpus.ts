import { prng } from './support.js';

/**
 * The wire fuzz corpus: deterministic (seeded xorshift32, support.ts), so a failure names an input that
 * reproduces. Entries cycle through four kinds: random bytes, two mutated example envelopes, and a mutated
 * example payload (as if a signer with a valid key had sent it). The examples are docs/wire-format.md section 13
 * (scripts/wire-examples.ts): a batch, a status and a command.
 */
export type FuzzEntry =
  | { readonly kind: 'random'; readonly bytes: Uint8Array }
  | { readonly kind: 'envelope'; readonly bytes: Uint8Array }
  /** `which` indexes the payloads given to fuzzCorpus. */
  | { readonly kind: 'payload'; readonly which: number; readonly bytes: Uint8Array };

export function fuzzCorpus(options: {
  readonly envelopes: readonly Uint8Array[];
  readonly payloads: readonly Uint8Array[];
  readonly count: number;
  readonly seed: number;
}): FuzzEntry[] {
  const random = prng(options.seed);
  const int = (n: number) => Math.floor(random() * n);

  function mutate(source: Uint8Array): Uint8Array {
    const bytes = Array.from(source);
    for (let m = 1 + int(4); m > 0; m--) {
      const at = int(bytes.length + 1);
      switch (int(6)) {
        case 0: // flip a bit
          if (at < bytes.length) bytes[at] = (bytes[at] as number) ^ (1 << int(8));
          break;
        case 1: // set a byte to an interesting value (heads of every major type, break, lengths)
          if (at < bytes.length)
            bytes[at] = [0x00, 0x17, 0x18, 0x1b, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xd2, 0xf7, 0xfb, 0xff][
              int(13)
            ] as number;
          break;
        case 2: // delete a run
          bytes.splice(at, 1 + int(8));
          break;
        case 3: // insert random bytes
          bytes.splice(at, 0, ...Array.from({ length: 1 + int(8) }, () => int(256)));
          break;
        case 4: // duplicate a run
          bytes.splice(at, 0, ...bytes.slice(at, at + 1 + int(16)));
          break;
        default: // truncate
          bytes.length = Math.min(bytes.length, at);
      }
    }
    return Uint8Array.from(bytes);
  }

  const corpus: FuzzEntry[] = [];
  for (let i = 0; i < options.count; i++) {
    const kind = i % 4;
    if (kind === 0) {
      corpus.push({ kind: 'random', bytes: Uint8Array.from({ length: int(300) }, () => int(256)) });
    } else if (kind === 1 || kind === 2) {
      const source = options.envelopes[int(options.envelopes.length)] as Uint8Array;
      corpus.push({ kind: 'envelope', bytes: mutate(source) });
    } else {
      const which = int(options.payloads.length);
      corpus.push({ kind: 'payload', which, bytes: mutate(options.payloads[which] as Uint8Array) });
    }
  }
  return corpus;
}
