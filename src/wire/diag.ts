import { CborFloat, type CborKey, CborTag, type CborValue, decodeCbor } from './cbor.js';

/**
 * CBOR diagnostic notation (RFC 8949 section 8, with the comments and embedded-CBOR `<< >>` of the extended
 * notation, RFC 8610 appendix G) for docs, tests and debugging. Floats keep their float form (`98.5`, `1.0`)
 * so the text tells integers from floats, as the bytes do.
 */
export type DiagPath = readonly (CborKey | number)[];

export interface DiagOptions {
  /** Byte strings at these paths hold CBOR and are shown decoded as `<< ... >>`. */
  readonly embedded?: (path: DiagPath) => boolean;
  /** A comment shown after the item at this path, as `/ comment /`. */
  readonly comment?: (path: DiagPath) => string | undefined;
  /** Containers that fit in this many columns stay on one line. */
  readonly width?: number;
}

/** Diagnostic notation of one CBOR data item (throws WIRE_MALFORMED if `bytes` is not one). */
export function diagnose(bytes: Uint8Array, options: DiagOptions = {}): string {
  return render(decodeCbor(bytes, { keepFloats: true }), [], 0, options);
}

function render(value: CborValue, path: DiagPath, indent: number, options: DiagOptions): string {
  if (value instanceof Uint8Array) {
    if (options.embedded?.(path))
      return `<< ${render(decodeCbor(value, { keepFloats: true }), path, indent, options)} >>`;
    return `h'${Buffer.from(value).toString('hex')}'`;
  }
  if (value instanceof CborTag) return `${value.tag}(${render(value.value, path, indent, options)})`;
  if (value instanceof CborFloat) return floatText(value.value);
  if (Array.isArray(value)) {
    const parts = value.map((item, i) => ({
      text: render(item, [...path, i], indent + 2, options),
      comment: options.comment?.([...path, i]),
    }));
    return container('[', ']', parts, indent, options);
  }
  if (value instanceof Map) {
    const parts = [...value].map(([key, item]) => ({
      text: `${scalar(key)}: ${render(item, [...path, key], indent + 2, options)}`,
      comment: options.comment?.([...path, key]),
    }));
    return container('{', '}', parts, indent, options);
  }
  return scalar(value);
}

function container(
  open: string,
  close: string,
  parts: readonly { text: string; comment: string | undefined }[],
  indent: number,
  options: DiagOptions,
): string {
  const inline = `${open}${parts.map((part) => part.text).join(', ')}${close}`;
  const fits = indent + inline.length <= (options.width ?? 100);
  if (parts.every((part) => part.comment === undefined && !part.text.includes('\n')) && fits) return inline;
  const pad = ' '.repeat(indent + 2);
  const lines = parts.map((part, i) => {
    const comma = i < parts.length - 1 ? ',' : '';
    return `${pad}${part.text}${comma}${part.comment === undefined ? '' : `  / ${part.comment} /`}`;
  });
  return `${open}\n${lines.join('\n')}\n${' '.repeat(indent)}${close}`;
}

function scalar(value: CborValue): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
    default:
      return value === null ? 'null' : '?';
  }
}

function floatText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
  if (Object.is(value, -0)) return '-0.0';
  return Number.isInteger(value) && Math.abs(value) < 1e21 ? `${value}.0` : String(value);
}
