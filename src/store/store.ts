import { DeviceRegistry, type DeviceRegistryOptions } from './device-registry.js';
import { storeExists } from './encrypted-database.js';
import { StoreError } from './errors.js';
import { Outbox, type OutboxOptions } from './outbox.js';
import { Settings } from './settings.js';

/**
 * The encrypted store as one unit: the outbox (readings waiting for the clinic), the device registry (the
 * enrolled devices) and the settings set while the hub runs (src/store/settings.ts) live in the same SQLite
 * file, behind one exclusive owner lock (src/store/store-lock.ts), so they share the one connection the store
 * opens. Whoever needs any of them opens the Store, and closing it closes all: nothing else reaches into the
 * outbox for its connection.
 */
export interface StoreOpenOptions extends OutboxOptions {
  readonly registry?: DeviceRegistryOptions;
  /**
   * 'must-exist' (the service, and every command that only reads or changes an existing store): a missing store
   * is STORE_MISSING rather than a new empty one. 'create' (`rpm-gateway init`, enrolment into a fresh data
   * directory): made on first use.
   */
  readonly existing?: 'must-exist' | 'create';
}

export class Store {
  private closed = false;

  private constructor(
    readonly outbox: Outbox,
    readonly devices: DeviceRegistry,
    readonly settings: Settings,
  ) {}

  static async open(options: StoreOpenOptions): Promise<Store> {
    if (options.existing === 'must-exist' && !storeExists(options.path)) {
      throw new StoreError(
        'STORE_MISSING',
        `no store exists at ${options.path}; check the data directory, or make a new store with rpm-gateway init`,
      );
    }
    const outbox = new Outbox(options);
    await outbox.open();
    try {
      // The one connection the store opened; the registry is closed with the store (see close()).
      return new Store(
        outbox,
        new DeviceRegistry(outbox.database, options.registry),
        new Settings(outbox.database, options.clock),
      );
    } catch (error) {
      outbox.close();
      throw error;
    }
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Closes the registry, then the outbox (which flushes queued appends and checkpoints). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.devices.close();
    this.settings.close();
    this.outbox.close();
  }
}
