import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/**
 * Questions on the terminal, one answer per input line. Lines that arrive before they are asked for are kept
 * in order, so a script (or a test) can pipe every answer at once: `printf '2\ny\n123456\n' | rpm-gateway pair`.
 * The end of the input answers `undefined`, so a command run without a terminal never waits forever.
 */
export class LinePrompt {
  private lines: Interface | undefined;
  private readonly queued: string[] = [];
  private readonly waiting: ((line: string | undefined) => void)[] = [];
  private ended = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {}

  /** Writes the question (no newline) and resolves with the next line, trimmed; undefined at end of input. */
  ask(question: string): Promise<string | undefined> {
    this.output.write(question);
    this.listen();
    const next = this.queued.shift();
    if (next !== undefined) return Promise.resolve(this.echo(next));
    if (this.ended) return Promise.resolve(this.echo(undefined));
    return new Promise((resolve) => this.waiting.push((line) => resolve(this.echo(line))));
  }

  /** A yes/no question; only "y" or "yes" (any case) is yes. */
  async confirm(question: string): Promise<boolean> {
    const answer = await this.ask(`${question} [y/N] `);
    return answer !== undefined && /^y(es)?$/i.test(answer);
  }

  /** Stops reading, so an interactive stdin does not keep the process alive. */
  close(): void {
    this.lines?.close();
  }

  private listen(): void {
    if (this.lines) return;
    // terminal: false even on a TTY: the terminal echoes what is typed, readline need not redraw it.
    const lines = createInterface({
      input: this.input,
      crlfDelay: Number.POSITIVE_INFINITY,
      terminal: false,
    });
    lines.on('line', (line) => {
      const waiter = this.waiting.shift();
      if (waiter) waiter(line.trim());
      else this.queued.push(line.trim());
    });
    lines.on('close', () => {
      this.ended = true;
      for (const waiter of this.waiting.splice(0)) waiter(undefined);
    });
    this.lines = lines;
  }

  /** Piped answers are not echoed by a terminal; end the prompt's line so the output stays readable. */
  private echo(line: string | undefined): string | undefined {
    if (!isTerminal(this.input)) this.output.write('\n');
    return line;
  }
}

function isTerminal(stream: Readable): boolean {
  return (stream as Readable & { isTTY?: boolean }).isTTY === true;
}
