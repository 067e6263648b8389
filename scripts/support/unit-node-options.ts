import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The NODE_OPTIONS the systemd unit (config/systemd/rpm-gateway.service) runs the hub with, so benchmarks
 * measure the hub as it runs on a Pi. Read from the unit itself: one place says what they are.
 */
export function unitNodeOptions(): string {
  const unit = readFileSync(join(import.meta.dirname, '../../../config/systemd/rpm-gateway.service'), 'utf8');
  const match = unit.match(/^Environment="NODE_OPTIONS=([^"]*)"$/m);
  if (!match?.[1]) throw new Error('config/systemd/rpm-gateway.service sets no NODE_OPTIONS');
  return match[1];
}
