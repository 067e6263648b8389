/** The clinic intake service (docs/clinic-intake.md). */
export * from './clinic-intake.js';
export * from './errors.js';
export * from './gateway-inventory.js';
export * from './group-commit.js';
export * from './local-time.js';
export * from './shared.js';
export type { IntakeStats } from './stats.js';
export * from './verify.js';
