import type { Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { ClinicProcess } from './run.js';

/** One part of a composed process, by name for the logs. */
export interface ProcessPart {
  readonly name: string;
  readonly service: Service;
  /** One phrase for `systemctl status` once started. */
  readonly statusText?: () => string;
}

/**
 * Several services as one clinic process (`clinic serve` on SQLite: the alarm engine, the intake, the hub
 * commands and the dashboard), started in the order given and stopped in the reverse order, so each part
 * stops while what it feeds still runs: the dashboard stops taking requests first, then the intake commits
 * what it received (the engine still sees those commits), and the engine stops last, writing what it holds.
 * A part that fails to start stops the parts already started, in reverse, and the failure is rethrown. A part
 * that fails to stop is logged, and the others still stop.
 */
export class ComposedProcess implements ClinicProcess {
  readonly #started: ProcessPart[] = [];

  constructor(
    private readonly parts: readonly ProcessPart[],
    private readonly log: RuntimeLog,
    private readonly event: string,
  ) {}

  async start(): Promise<void> {
    for (const part of this.parts) {
      try {
        await part.service.start();
      } catch (error) {
        await this.stop(`${part.name} did not start`);
        throw error;
      }
      this.#started.push(part);
    }
  }

  async stop(reason: string): Promise<void> {
    for (const part of this.#started.splice(0).reverse()) {
      try {
        await part.service.stop(reason);
      } catch (error) {
        this.log.error(`${this.event}.stop-failed`, {
          detail: part.name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  statusText(): string {
    return this.parts
      .map((part) => part.statusText?.())
      .filter((text): text is string => text !== undefined)
      .join('; ');
  }
}
