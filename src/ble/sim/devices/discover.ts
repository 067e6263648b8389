import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sourceDirOf } from '../../../drivers/fixture-paths.js';
import { readFixtureFile } from '../../../drivers/fixtures.js';
import { type DriverModule, loadDriverModules } from '../../../drivers/loader.js';
import type { Driver } from '../../../drivers/sdk/define-driver.js';
import type { DeviceModel, DeviceModelContext, DeviceModelParts } from './define-model.js';
import { isDeviceModel } from './define-model.js';
import { fixtureReplay, nameFor } from './fixture-replay.js';
import { type DeviceIdentity, ModelContext } from './model-context.js';
import type { SimulatedDevice, SimulatedDeviceOptions } from './types.js';

/** One driver's simulated device, ready to build. */
export interface DeviceModelEntry {
  readonly driverId: string;
  /** `core`: a SIG model in src/ble/sim/devices; `folder`: the driver's sim.ts; `fixtures`: fixture replay. */
  readonly origin: 'core' | 'folder' | 'fixtures';
  readonly identity: DeviceIdentity;
  /** Options the device has unless the caller gives others (a replayed manufacturer id). */
  readonly defaultOptions: SimulatedDeviceOptions;
  readonly build: (c: DeviceModelContext) => DeviceModelParts;
}

export interface DiscoveredModels {
  readonly models: ReadonlyMap<string, DeviceModelEntry>;
  /** Driver id -> why it has no device. */
  readonly problems: ReadonlyMap<string, string>;
}

const MODEL_FILES = ['sim.js', 'sim.ts'];

/**
 * The device model of every driver under `root` (as loadDriverModules finds them): the driver folder's
 * `sim.{js,ts}` when there is one (its default export is defineDeviceModel({...})), else the core model for
 * the SIG drivers, else a replay of the driver's fixtures. Core models come first, in their given order.
 */
export async function discoverDeviceModels(
  root: string,
  core: ReadonlyMap<string, DeviceModel>,
): Promise<DiscoveredModels> {
  const models = new Map<string, DeviceModelEntry>();
  const problems = new Map<string, string>();
  let drivers: DriverModule[] = [];
  try {
    drivers = await loadDriverModules(root);
  } catch (error) {
    // The registry reports a broken driver wherever drivers load; the simulator keeps its core devices.
    problems.set('*', `drivers did not load: ${(error as Error).message}`);
  }
  const byId = new Map(drivers.map((m) => [m.driver.id, m]));
  const used = new Set<string>();
  const add = async (driverId: string, found: DriverModule | undefined) => {
    try {
      const entry = await entryFor(driverId, found, core.get(driverId), used);
      used.add(entry.identity.address.toUpperCase());
      models.set(driverId, entry);
    } catch (error) {
      problems.set(driverId, (error as Error).message);
    }
  };
  for (const id of core.keys()) await add(id, byId.get(id));
  for (const module of drivers) if (!core.has(module.driver.id)) await add(module.driver.id, module);
  return { models, problems };
}

/**
 * The device model entry of one driver folder outside the bundled set (a scaffold being tried, a test's temporary
 * driver): its sim.ts, else a replay of its fixtures.
 */
export function deviceModelEntry(found: DriverModule): Promise<DeviceModelEntry> {
  return entryFor(found.driver.id, found, undefined, new Set());
}

/** Builds one device from its model entry (simulatedDevice does this for the bundled drivers). */
export function buildDevice(entry: DeviceModelEntry, options: SimulatedDeviceOptions = {}): SimulatedDevice {
  const context = new ModelContext(entry.driverId, { ...entry.defaultOptions, ...options }, entry.identity);
  const device: SimulatedDevice = {
    driverId: entry.driverId,
    subject: context.subject,
    ...entry.build(context),
  };
  if (options.preload) device.preload(options.preload, options.preloadEveryMs, options.preloadEndingAt);
  return device;
}

async function entryFor(
  driverId: string,
  found: DriverModule | undefined,
  coreModel: DeviceModel | undefined,
  used: ReadonlySet<string>,
): Promise<DeviceModelEntry> {
  const own = found ? await folderModel(found.dir) : undefined;
  const model = own ?? coreModel;
  const origin = own ? 'folder' : coreModel ? 'core' : 'fixtures';
  if (model?.build) {
    return {
      driverId,
      origin,
      identity: identityOf(driverId, model, found?.driver, used),
      defaultOptions: {},
      build: model.build,
    };
  }
  if (!found) throw new Error(`no driver ${driverId} under devices/ to replay`);
  const { driver, dir } = found;
  const fixtures = await readFixtureFile(join(sourceDirOf(dir), 'fixtures.json'));
  const manufacturerId = driver.match.manufacturerId;
  return {
    driverId,
    origin: own ? 'folder' : 'fixtures',
    identity: identityOf(driverId, model, driver, used),
    defaultOptions:
      manufacturerId === undefined
        ? {}
        : { manufacturerData: new Map([[manufacturerId, new Uint8Array(0)]]) },
    build: fixtureReplay(driver, fixtures),
  };
}

/** The default export of the folder's sim.{js,ts}, or undefined when the folder has none. */
async function folderModel(dir: string): Promise<DeviceModel | undefined> {
  const entries = new Set(await readdir(dir));
  const file = MODEL_FILES.find((name) => entries.has(name));
  if (!file) return undefined;
  const path = join(dir, file);
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (cause) {
    throw new Error(`cannot load ${path}: ${(cause as Error).message}`, { cause });
  }
  if (!isDeviceModel(module.default)) {
    throw new Error(
      `${path}: the default export must be defineDeviceModel({...}) from 'rpm-gateway/sdk/sim'`,
    );
  }
  return module.default;
}

/**
 * The model's address and name, else defaults: an address derived from the driver id (stable across runs, in
 * the D0:5E simulator range, never one already taken) and a name the driver's match rule accepts.
 */
function identityOf(
  driverId: string,
  model: DeviceModel | undefined,
  driver: Driver | undefined,
  used: ReadonlySet<string>,
): DeviceIdentity {
  let name = model?.name;
  if (name === undefined && driver?.match.name) {
    name = nameFor(driver.match.name);
    if (name === undefined) {
      throw new Error(
        `driver ${driverId} matches by the name pattern ${driver.match.name}, which has no literal start to ` +
          `advertise: give one in sim.ts (export default defineDeviceModel({ name: '...' }))`,
      );
    }
  }
  name ??= (driver?.name ?? driverId).slice(0, 29); // 29 bytes: a local name that fits an advertisement
  let address = model?.address;
  for (let salt = 0; address === undefined; salt++) {
    const digest = createHash('sha256').update(`${driverId}#${salt}`).digest();
    const candidate = ['D0', '5E', 'F0', ...[...digest.subarray(0, 3)].map((b) => b.toString(16))]
      .map((part) => part.padStart(2, '0').toUpperCase())
      .join(':');
    if (!used.has(candidate)) address = candidate;
  }
  return { address, name };
}
