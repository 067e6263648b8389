import { BACKEND_NAMES, type BackendName, SIM_PASSKEY } from '../ble/backends.js';
import type { CandidateView, EnrolmentInteraction } from '../enrolment/guided.js';
import type { PairingPrompts } from '../enrolment/pairing-agent.js';
import { UsageError } from '../errors.js';
import { DeviceError } from '../store/device-errors.js';
import { normalizeLabel } from '../store/device-registry.js';
import { parseCommandArgs } from './args.js';
import { candidateViewLine } from './candidate-line.js';
import { RUNTIME_DIR_HELP, RUNTIME_DIR_OPTION, useControl } from './control-access.js';
import { STORE_OPTIONS, STORE_OPTIONS_HELP } from './enrolment-store.js';
import type { CommandIo } from './io.js';
import { LinePrompt } from './prompt.js';

export const PAIR_HELP = `Usage: rpm-gateway pair [--backend bluez|sim] [--seconds 10] [--pick N] [--label TEXT] [--yes]

Enrols one of the patient's health devices: scans, lists the supported devices nearby by profile and
driver (never by address), asks which one, connects, bonds when the device needs it (type the 6-digit
passkey the device shows), checks it answers, and records it in the encrypted store. Only enrolled devices
are ever read. Pairing a device that is enrolled already keeps its id and updates it. While the hub runs,
it pairs through the hub's control socket with the hub's own radio (as root or the service user, e.g.
sudo rpm-gateway pair; docs/control-socket.md) and starts reading the device at once; --backend then does
not apply. Otherwise this command opens the store and the radio itself.

Put the device in pairing mode first (most cuffs and meters: hold the Bluetooth button until it blinks).
Options:
  --backend <name>       bluez (default on Linux) or sim (simulated devices; passkey ${SIM_PASSKEY})
  --seconds <n>          how long to listen (default 10)
  --pick <n>             pair device number <n> of the list without asking (scripts)
  --label <text>         a name for the device, shown by "rpm-gateway devices" (at most 64 characters;
                         it stays in the encrypted store and is never sent to the clinic)
  --bond                 bond even if neither the profile nor the device asks for it
  --yes                  do not ask before enrolling the device picked at the prompt, or before pairing
                         again a device that is enrolled already
${RUNTIME_DIR_HELP}
${STORE_OPTIONS_HELP}
  -h, --help             show this help`;

export async function pairCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandArgs({
    args: [...argv],
    options: {
      backend: { type: 'string', default: 'bluez' },
      seconds: { type: 'string', default: '10' },
      pick: { type: 'string' },
      label: { type: 'string' },
      bond: { type: 'boolean' },
      yes: { type: 'boolean' },
      ...STORE_OPTIONS,
      ...RUNTIME_DIR_OPTION,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${PAIR_HELP}\n`);
    return 0;
  }
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 300)
    throw new UsageError('--seconds must be more than 0 and at most 300');
  const backend = values.backend as BackendName;
  if (!BACKEND_NAMES.includes(backend))
    throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}`);
  const pick = values.pick === undefined ? undefined : Number(values.pick);
  if (pick !== undefined && (!/^\d+$/.test(values.pick ?? '') || pick < 1))
    throw new UsageError('--pick must be a device number from the list (1, 2, ...)');
  // Checked before the scan, so a bad label does not cost the user a pairing.
  if (values.label !== undefined) normalizeLabel(values.label);

  const prompt = new LinePrompt(io.stdin, io.stdout);
  const say = (line: string) => io.stdout.write(`${line}\n`);
  // Reached first: a store held by a gateway without a socket (STORE_LOCKED) is said before the user waits
  // for a scan.
  const opened = await useControl(values, io, { create: true, backend });
  try {
    const { control, via } = opened;
    const radio = via === 'hub' ? "the running hub's radio" : backend;
    const { device, created } = await control.enrol(
      {
        seconds,
        ...(pick === undefined ? {} : { pick }),
        ...(values.label === undefined ? {} : { label: values.label }),
        ...(values.bond ? { forceBond: true } : {}),
      },
      terminalInteraction({ prompt, say, backend, radio, label: values.label, yes: values.yes === true }),
      'cli',
    );
    say(
      `${created ? 'enrolled' : 'updated'} ${device.id}: ${device.profile}, ${device.driver}` +
        `${device.model ? `, ${device.model}` : ''}, ${device.bonded ? 'bonded' : 'not bonded (the device needs no bond)'}` +
        `${device.label ? `, label "${device.label}"` : ''}`,
    );
    say(
      via === 'hub'
        ? 'the running hub reads it from now on; see "rpm-gateway devices"'
        : 'the gateway reads it from its next start; see "rpm-gateway devices"',
    );
    return 0;
  } finally {
    prompt.close();
    opened.close();
  }
}

interface TerminalOptions {
  readonly prompt: LinePrompt;
  readonly say: (line: string) => void;
  readonly backend: BackendName;
  /** The radio named in "scanning for ... (<radio>)". */
  readonly radio: string;
  readonly label: string | undefined;
  readonly yes: boolean;
}

/** The enrolment's questions and news at the terminal, whether this command or the running hub pairs. */
function terminalInteraction(options: TerminalOptions): EnrolmentInteraction {
  const { prompt, say, label, yes } = options;
  return {
    ...terminalPrompts(prompt, options.backend, say),
    notify: (event) => {
      switch (event.kind) {
        case 'scanning':
          say(`scanning for ${event.seconds} s (${options.radio}) ...`);
          return;
        case 'candidates':
          for (const candidate of event.candidates) say(describeCandidate(candidate));
          return;
        case 'step':
          if (event.step === 'connecting') say(`connecting to ${event.number}. ${event.profile} ...`);
          if (event.step === 'bonding') say('bonding ...');
          if (event.step === 'checking') say('checking that the device answers ...');
          return;
      }
    },
    choose: (candidates) => choose(candidates, prompt),
    approve: async (chosen, { picked }) => {
      // Say what is about to be enrolled, and under which label, before anything happens: a number typed
      // from an older list (another scan, another day) must not enrol the wrong device unnoticed.
      say(`about to enrol ${describeChoice(chosen, label)}`);
      if (chosen.enrolled && !yes) {
        return prompt.confirm(
          `Device ${chosen.number} is enrolled already as ${chosen.enrolled.id}; pair it again?`,
        );
      }
      // A number given with --pick was chosen by a script (or a person) that saw this list; one typed at the
      // prompt is confirmed against the line above.
      if (!picked && !yes) return prompt.confirm(`Enrol device ${chosen.number}?`);
      return true;
    },
  };
}

/**
 * The device's pairing requests, answered at the terminal. bluez (doc/org.bluez.Agent.rst): numeric comparison
 * (RequestConfirmation) asks the user to compare the two displays; DisplayPasskey prints what to type.
 */
function terminalPrompts(
  prompt: LinePrompt,
  backend: BackendName,
  say: (line: string) => void,
): PairingPrompts {
  return {
    passkey: () => askPasskey(prompt, backend, say),
    confirm: (passkey) => prompt.confirm(`Does the device show ${String(passkey).padStart(6, '0')}?`),
    display: (passkey) => say(`Type ${String(passkey).padStart(6, '0')} on the device.`),
  };
}

function describeCandidate(c: CandidateView): string {
  const enrolled = c.enrolled ? `  [enrolled: ${enrolledName(c.enrolled)}]` : '';
  return `${candidateViewLine(c)}${enrolled}`;
}

/** "2. glucose-meter, Bluetooth SIG Glucose Service (sig/glucose), label "Kitchen meter"". */
function describeChoice(c: CandidateView, label: string | undefined): string {
  const normalized = label === undefined ? null : normalizeLabel(label);
  const labelled = normalized === null ? '' : `, label ${JSON.stringify(normalized)}`;
  return `${c.number}. ${c.profile}, ${c.driverName} (${c.driver})${labelled}`;
}

function enrolledName(device: { readonly id: string; readonly label: string | null }): string {
  return device.label ? `${device.id} "${device.label}"` : device.id;
}

/** Asks for a number from the list at the prompt, three tries. */
async function choose(candidates: readonly CandidateView[], prompt: LinePrompt): Promise<number> {
  const count = candidates.length;
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = await prompt.ask(`Pair which device? [1-${count}, Enter to cancel] `);
    if (answer === undefined || answer === '') {
      throw new DeviceError('DEVICE_NOT_CHOSEN', 'no device chosen; nothing was paired');
    }
    const chosen = /^\d+$/.test(answer) ? candidates[Number(answer) - 1] : undefined;
    if (chosen) return chosen.number;
  }
  throw new DeviceError('DEVICE_NOT_CHOSEN', `three answers that are not 1 to ${count}; nothing was paired`);
}

/** Asks for the 6-digit passkey (Core 5.4 Vol 3 Part H 2.3.5.3: 000000-999999), three tries at typing it. */
async function askPasskey(
  prompt: LinePrompt,
  backend: BackendName,
  say: (line: string) => void,
): Promise<number> {
  say(
    backend === 'sim'
      ? `the device asks for a passkey (the simulated devices show ${SIM_PASSKEY})`
      : 'the device asks for a passkey: it shows 6 digits on its display (or on a label)',
  );
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = await prompt.ask('Passkey: ');
    if (answer === undefined || answer === '') break;
    if (/^\d{6}$/.test(answer)) return Number(answer);
    say('a passkey is 6 digits, e.g. 012345');
  }
  throw new DeviceError('DEVICE_NOT_CHOSEN', 'no passkey was entered; nothing was paired');
}
