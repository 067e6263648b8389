/**
 * A one-line progress display for long terminal work (`store rekey`, a large drain in the demo).
 *
 * On a terminal it redraws one line in place: a carriage return, the text, then "erase to end of line"
 * (ECMA-48 section 8.3.41, EL, `CSI K`), throttled so a fast loop does not spend its time writing to the
 * terminal. Anywhere else (a pipe, a file, journald) a progress line would only be noise, so it writes nothing
 * until `finish`, which prints the summary, if there is one, as an ordinary line.
 */
export interface ProgressStream {
  /** True on a terminal (Node sets it on process.stderr: tty.WriteStream). */
  readonly isTTY?: boolean;
  /** The terminal's width in columns, when known. */
  readonly columns?: number;
  write(text: string): unknown;
}

export interface ProgressOptions {
  readonly stream: ProgressStream;
  /** Milliseconds, for the throttle: an injected clock, so tests run in virtual time. */
  readonly now: () => number;
  /** At most one redraw per this many ms, except the first, a new step and the last. Default 100. */
  readonly intervalMs?: number;
}

export type ProgressUnit = 'bytes' | 'rows';

const BAR_WIDTH = 20;
const ERASE_TO_END = '\x1b[K';

export class Progress {
  private readonly tty: boolean;
  private lastDraw: number | undefined;
  private lastLabel: string | undefined;
  private drawn = false;

  constructor(private readonly options: ProgressOptions) {
    this.tty = options.stream.isTTY === true;
  }

  /**
   * Where the work stands: `label` names the step; with `total`, a bar and a percentage. A step without a
   * count ("re-encrypting") shows its label only.
   */
  update(label: string, done?: number, total?: number, unit: ProgressUnit = 'rows'): void {
    if (!this.tty) return;
    const now = this.options.now();
    const finished = done !== undefined && total !== undefined && done >= total;
    const due =
      this.lastDraw === undefined ||
      label !== this.lastLabel ||
      finished ||
      now - this.lastDraw >= (this.options.intervalMs ?? 100);
    if (!due) return;
    this.lastDraw = now;
    this.lastLabel = label;
    this.draw(line(label, done, total, unit));
  }

  /** Ends the display: the progress line is cleared, and `summary` (if any) printed as an ordinary line. */
  finish(summary?: string): void {
    if (this.tty && this.drawn) this.options.stream.write(`\r${ERASE_TO_END}`);
    this.drawn = false;
    if (summary !== undefined) this.options.stream.write(`${summary}\n`);
  }

  private draw(text: string): void {
    const columns = this.options.stream.columns;
    // One column short of the width: writing the last column makes some terminals wrap to a new line.
    const fitted =
      columns !== undefined && columns > 1 && text.length > columns - 1 ? text.slice(0, columns - 1) : text;
    this.options.stream.write(`\r${fitted}${ERASE_TO_END}`);
    this.drawn = true;
  }
}

function line(
  label: string,
  done: number | undefined,
  total: number | undefined,
  unit: ProgressUnit,
): string {
  if (done === undefined) return `${label}...`;
  if (total === undefined || total <= 0) return `${label} ${amount(done, unit)}`;
  const fraction = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  return `${label} ${bar} ${Math.floor(fraction * 100)}% (${amount(done, unit)} of ${amount(total, unit)})`;
}

/** "1,234 rows", "12.5 MiB" (IEC 80000-13 binary prefixes, as the store's sizes are written elsewhere). */
export function amount(n: number, unit: ProgressUnit): string {
  if (unit === 'rows') return `${n.toLocaleString('en-US')} ${n === 1 ? 'row' : 'rows'}`;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
