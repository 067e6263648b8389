/**
 * The wire format (docs/wire-format.md is the normative text): topics, CBOR payloads, COSE_Sign1 envelopes and
 * downlink commands. Pure functions: no I/O; time comes in as arguments.
 */
export * from './batch.js';
export * from './cbor.js';
export * from './commands.js';
export * from './cose.js';
export * from './diag.js';
export * from './errors.js';
export { WIRE_VERSION } from './fields.js';
export * from './status.js';
export * from './topics.js';
