/**
 * Child process for the audit log's cross-process test (test/audit/audit-log.test.ts): appends `count` entries
 * to the log at <path> as fast as it can, each through a fresh AuditLog half of the time (as a CLI command
 * would) and through one long-lived instance otherwise (as a service would), then prints "DONE".
 * Arguments: <path> <count> <actor>
 */

import { AuditLog } from '../../src/audit/audit-log.js';

const [path, countText, actor] = process.argv.slice(2);
const service = new AuditLog(path as string);
for (let n = 0; n < Number(countText); n++) {
  const log = n % 2 === 0 ? service : new AuditLog(path as string);
  log.record('test.append', actor as string, { n });
}
process.stdout.write('DONE\n');
