import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Advertisement, BleError, type CentralPort, type Connection } from '../../src/ble/central.js';
import { until } from '../support/until.js';

/**
 * The contract every Central backend passes (sim, bluez against a fake BlueZ on a private D-Bus, noble against a
 * fake of noble's API over the simulator's peripherals). A harness provides the backend and two devices:
 *   - the cuff: address CUFF.address, name "Cuff-Contract", advertising service 1810; GATT: service 1810 with
 *     2a35 (indicate) and 2a49 (read, value 03 00); service 1805 with 2a2b (read, write, notify);
 *   - a neighbour: address NEIGHBOUR.address, name "Neighbour-HR", advertising 180d only.
 * and controls to make the cuff emit values, inspect writes and drop the link.
 */
export const CUFF = { address: 'C0:FF:EE:00:00:01', name: 'Cuff-Contract' } as const;
export const NEIGHBOUR = { address: 'C0:FF:EE:00:00:02', name: 'Neighbour-HR' } as const;

export interface ContractHarness {
  readonly central: CentralPort;
  /** The cuff sends a notification or indication on `characteristic` (2a35 or 2a2b). */
  emit(characteristic: string, value: Uint8Array): Promise<void>;
  /** Values the central wrote to `characteristic`, oldest first. */
  written(characteristic: string): Uint8Array[];
  /** The cuff drops the link (walks out of range). */
  dropLink(): Promise<void>;
  teardown(): Promise<void>;
}

const hex = (value: Uint8Array) => Buffer.from(value).toString('hex');
const bytes = (hexString: string) => Uint8Array.from(Buffer.from(hexString, 'hex'));

export function centralContract(name: string, makeHarness: () => Promise<ContractHarness>): void {
  describe(`Central contract: ${name}`, () => {
    let h: ContractHarness;
    let connection: Connection | undefined;

    beforeEach(async () => {
      h = await makeHarness();
      await h.central.start();
    });

    afterEach(async () => {
      await connection?.disconnect().catch(() => undefined);
      connection = undefined;
      await h.central.stop();
      await h.teardown();
    });

    async function scan(services?: string[]): Promise<Advertisement[]> {
      const seen: Advertisement[] = [];
      await h.central.scan({ durationMs: 300, ...(services ? { services } : {}) }, (ad) => seen.push(ad));
      return seen;
    }

    it('scans with a service filter, and without', async () => {
      const filtered = await scan(['1810']);
      expect(new Set(filtered.map((a) => a.address))).toEqual(new Set([CUFF.address]));
      expect(filtered[0]).toMatchObject({ name: CUFF.name, services: expect.arrayContaining(['1810']) });
      const all = new Set((await scan()).map((a) => a.address));
      expect(all).toEqual(new Set([CUFF.address, NEIGHBOUR.address]));
    });

    it('stops a scan when its signal aborts', async () => {
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(), 50);
      await h.central.scan({ durationMs: 10_000, signal: controller.signal }, () => undefined);
      expect(Date.now() - started).toBeLessThan(2_000);
    });

    it('connects, discovers, reads and writes', async () => {
      connection = await h.central.connect(CUFF.address, { timeoutMs: 5_000 });
      const services = await connection.discover();
      const bp = services.find((s) => s.uuid === '1810');
      expect(bp?.characteristics).toEqual(
        expect.arrayContaining([
          { uuid: '2a35', properties: expect.arrayContaining(['indicate']) },
          { uuid: '2a49', properties: expect.arrayContaining(['read']) },
        ]),
      );
      expect(Buffer.from(await connection.read('1810', '2a49')).toString('hex')).toBe('0300');
      await connection.write('1805', '2a2b', Uint8Array.of(0xea, 0x07, 11, 28, 12, 0, 0, 6, 0, 1));
      await until('the cuff to receive the write', () => h.written('2a2b').length === 1);
      expect(Buffer.from(h.written('2a2b')[0] as Uint8Array).toString('hex')).toBe('ea070b1c0c0000060001');
    });

    it('delivers indications to a subscriber until it unsubscribes', async () => {
      connection = await h.central.connect(CUFF.address, { timeoutMs: 5_000 });
      const got: string[] = [];
      const unsubscribe = await connection.subscribe('1810', '2a35', (v) => got.push(hex(v)));
      // A second subscriber stays: values on one characteristic reach the listeners in the order the device
      // sent them (one ATT bearer; one D-Bus sender), so once the witness has a value, a listener that were
      // still attached would have it too. That proves the absence without waiting for nothing.
      const witness: string[] = [];
      const unsubscribeWitness = await connection.subscribe('1810', '2a35', (v) => witness.push(hex(v)));
      await h.emit('2a35', bytes('00780050005d00'));
      await until('both subscribers to get the first indication', () => witness.length === 1);
      expect(got).toEqual(['00780050005d00']);
      await unsubscribe();
      await h.emit('2a35', bytes('00790050005d00'));
      await until('the remaining subscriber to get the second indication', () => witness.length === 2);
      expect(got).toEqual(['00780050005d00']);
      // The last subscriber gone, nothing is delivered; a new subscriber gets only what the device sends after.
      await unsubscribeWitness();
      await h.emit('2a35', bytes('007a0050005d00'));
      const fresh: string[] = [];
      await connection.subscribe('1810', '2a35', (v) => fresh.push(hex(v)));
      await h.emit('2a35', bytes('007b0050005d00'));
      await until('a new subscriber to get the fourth indication', () => fresh.length > 0);
      expect(fresh).toEqual(['007b0050005d00']);
      expect(witness).toEqual(['00780050005d00', '00790050005d00']);
      expect(got).toEqual(['00780050005d00']);
    });

    it('reports a dropped link once, and a new connection starts without old listeners', async () => {
      connection = await h.central.connect(CUFF.address, { timeoutMs: 5_000 });
      const stale: string[] = [];
      await connection.subscribe('1810', '2a35', (v) => stale.push(Buffer.from(v).toString('hex')));
      const reasons: string[] = [];
      connection.onDisconnect((reason) => reasons.push(reason));
      await h.dropLink();
      await until('the dropped link to be reported', () => reasons.length === 1);
      expect(['remote', 'link-loss']).toContain(reasons[0]);
      connection = await h.central.connect(CUFF.address, { timeoutMs: 5_000 });
      const fresh: string[] = [];
      await connection.subscribe('1810', '2a35', (v) => fresh.push(Buffer.from(v).toString('hex')));
      await h.emit('2a35', Uint8Array.from(Buffer.from('00780050005d00', 'hex')));
      await until('the new connection to deliver an indication', () => fresh.length === 1);
      expect(stale).toEqual([]); // chrvadala/node-ble#12: listeners must not leak across reconnects
      expect(reasons).toHaveLength(1);
    });

    // CentralPort.clearCache is optional (backends that discover on every connection leave it out).
    it('clearCache: the device is found, connected and discovered afresh afterwards', async (ctx) => {
      const clearCache = h.central.clearCache?.bind(h.central);
      if (!clearCache) return ctx.skip();
      connection = await h.central.connect(CUFF.address, { timeoutMs: 5_000 });
      const before = await connection.discover();
      await connection.disconnect();
      await clearCache(CUFF.address);
      connection = await h.central.connect(CUFF.address, { timeoutMs: 5_000 });
      const after = await connection.discover();
      const shape = (services: typeof before) =>
        services.flatMap((s) => s.characteristics.map((c) => `${s.uuid}/${c.uuid}`)).sort();
      expect(shape(after)).toEqual(shape(before));
      expect(Buffer.from(await connection.read('1810', '2a49')).toString('hex')).toBe('0300');
    });

    it('clearCache: a device the backend never saw has nothing cached, and that is fine', async (ctx) => {
      const clearCache = h.central.clearCache?.bind(h.central);
      if (!clearCache) return ctx.skip();
      await expect(clearCache('C0:FF:EE:00:00:98')).resolves.toBeUndefined();
    });

    it('fails with typed errors: unknown device, unknown characteristic', async () => {
      // A device nobody advertises: the stack does not know it (BLE_NOT_FOUND: BlueZ, noble) or it is out of
      // range (BLE_DEVICE_GONE: the simulator). Never the adapter, a timeout or anything else.
      const unknown = h.central.connect('C0:FF:EE:00:00:99', { timeoutMs: 300 });
      await expect(unknown).rejects.toBeInstanceOf(BleError);
      await expect(unknown).rejects.toMatchObject({
        code: expect.stringMatching(/^BLE_(NOT_FOUND|DEVICE_GONE)$/),
      });
      connection = await h.central.connect(CUFF.address, { timeoutMs: 5_000 });
      await expect(connection.read('1810', '2a99')).rejects.toMatchObject({ code: 'BLE_NOT_FOUND' });
    });
  });
}
