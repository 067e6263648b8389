import { readdirSync } from 'node:fs';
import { BrokerError } from './errors.js';

/**
 * Whether the broker's LevelDB store exists in `dir`: once the folder has anything in it (LevelDB's CURRENT,
 * LOG, LOCK... files). Decides whether a missing store key may be made (no store yet) or is an error (a new
 * key could never read the store); an empty folder made ahead of time (by systemd's StateDirectory=, by hand)
 * counts as no store. Its own module so the configuration check asks the same question without loading LevelDB.
 */
export function storeExists(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new BrokerError('BROKER_PERSISTENCE', `cannot read the broker store folder ${dir}`, {
      cause: error,
    });
  }
}
