import type { z } from 'zod';
import type { LayerEntry, RawTree, RawValue } from './defaults.js';
import type { ConfigSource } from './errors.js';
import type { VariableRules } from './layers.js';

/**
 * Everything that makes one configuration (the hub's, the clinic's) what it is; the loader
 * (src/config/loader.ts) does the rest the same way for each: defaults < file < environment < flags, one
 * schema, every problem at once with where it is.
 */
export interface ConfigDefinition<T> {
  /** The command that reads it, for `config print`'s header: "rpm-gateway", "rpm-gateway clinic". */
  readonly program: string;
  readonly schema: z.ZodType<T>;
  /** The lowest layer, written as a person would write the file ("60s", not 60000). */
  readonly defaults: RawTree;
  /** The defaults that depend on where the process runs ($STATE_DIRECTORY, the host's time zone). */
  readonly environmentDefaults: (env: NodeJS.ProcessEnv) => readonly LayerEntry[];
  /** Read when it exists and neither --config nor `fileVariable` names a file. */
  readonly defaultFile: string;
  /** The variable that names the file: RPM_CONFIG, RPM_CLINIC_CONFIG. */
  readonly fileVariable: string;
  readonly variables: VariableRules;
  /** Shown when the file is not a mapping: "gateway:, paths:, uplink:, ...". */
  readonly sectionsHint: string;
  /**
   * Defaults that depend on other values, wherever those came from (a key file in the data directory, a
   * client id from the clinic's name), and defaults of a section that exists only when it is given. Called
   * once every layer is in; set only what is still unset.
   */
  readonly derivedDefaults?: (tree: DerivedDefaults) => void;
  /** A variable the configuration itself names (a key held in RPM_STORE_KEY), not a misspelt setting. */
  readonly namedVariables?: (get: RawGetter) => readonly string[];
  /** Things allowed but worth saying out loud (log redaction off, a listener on the network). */
  readonly warnings?: (get: RawGetter, from: (path: readonly string[]) => string) => string[];
}

export type RawGetter = (path: readonly (string | number)[]) => RawValue | undefined;

export interface DerivedDefaults {
  readonly get: RawGetter;
  /** Sets `value` at `path` as a default (with `note` saying what it follows from) if nothing set it. */
  setDefault(path: readonly (string | number)[], value: RawValue, note?: string): void;
  /** Where the value at `path` came from; undefined if unset. */
  sourceOf(path: readonly (string | number)[]): ConfigSource | undefined;
}
