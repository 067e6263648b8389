import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../errors.js';

/**
 * The one argument parser of every command: node:util parseArgs, strict, with its mistakes reworded as the
 * project's usage errors (exit status 2, the command's help) instead of Node's parser text.
 *
 * One departure from parseArgs: a negative number after an option that takes a value (`--days -5`) is that
 * option's value, so the option's own check can say what is allowed. parseArgs refuses it as "ambiguous"
 * (it might be a forgotten value followed by an option), which tells the user nothing about --days. POSIX
 * (Utility Syntax Guidelines, guideline 7: option-arguments may not be optional) lets an option-argument
 * start with '-'; only numbers are taken that way here, since no option is named like one.
 */
export function parseCommandArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const args = joinNegativeValues(config.args ?? [], config.options ?? {});
  try {
    return parseArgs<T>({ ...config, args });
  } catch (error) {
    throw usageErrorFrom(error) ?? error;
  }
}

const NEGATIVE_NUMBER = /^-\d+(\.\d+)?$/;

function joinNegativeValues(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    if (
      name &&
      Object.hasOwn(options, name) &&
      options[name]?.type === 'string' &&
      next &&
      NEGATIVE_NUMBER.test(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Node's ERR_PARSE_ARGS_* errors, reworded; undefined for anything else. */
function usageErrorFrom(error: unknown): UsageError | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) return undefined;
  const message = (error as Error).message;
  // Node quotes the offending argument: "Unknown option '--bogus'", "Option '--days <value>' argument missing",
  // "Unexpected argument 'extra'". The first quoted word is the option or argument as typed.
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const option = /--?[A-Za-z0-9][\w-]*/.exec(quoted.split(',').at(-1) ?? '')?.[0] ?? quoted;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${option}`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new UsageError(
        /does not take an argument/.test(message)
          ? `option ${option} takes no value`
          : `option ${option} needs a value (write ${option}=<value> for a value that starts with '-')`,
      );
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument ${JSON.stringify(quoted)}: this command takes none`);
    default:
      return new UsageError('the arguments could not be read');
  }
}
