import { BACKEND_NAMES, type BackendName, createCentral, SIM_PASSKEY } from '../ble/backends.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import { PairingAgent, type PairingPrompts } from '../enrolment/pairing-agent.js';
import { type Candidate, EnrolmentWorkflow } from '../enrolment/workflow.js';
import { UsageError } from '../errors.js';
import { DeviceError } from '../store/device-errors.js';
import { type EnrolledDevice, normalizeLabel } from '../store/device-registry.js';
import { parseCommandArgs } from './args.js';
import { candidateLine } from './candidate-line.js';
import { openRegistry, STORE_OPTIONS, STORE_OPTIONS_HELP, storeLocation } from './enrolment-store.js';
import type { CommandIo } from './io.js';
import { LinePrompt } from './prompt.js';

export const PAIR_HELP = `Usage: rpm-gateway pair [--backend bluez|sim] [--seconds 10] [--pick N] [--label TEXT] [--yes]

Enrols one of the patient's health devices: scans, lists the supported devices nearby by profile and
driver (never by address), asks which one, connects, bonds when the device needs it (type the 6-digit
passkey the device shows), checks it answers, and records it in the encrypted store. Only enrolled devices
are ever read. Pairing a device that is enrolled already keeps its id and updates it. Stop the running
gateway first: it owns the store.

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

  const location = storeLocation(values, io);
  const prompt = new LinePrompt(io.stdin, io.stdout);
  const say = (line: string) => io.stdout.write(`${line}\n`);
  // Opened first: a running gateway (STORE_LOCKED) is reported before the user waits for a scan.
  const store = await openRegistry(location);
  try {
    const agent = new PairingAgent();
    const central = await createCentral(backend, agent.hooks);
    await central.start();
    try {
      const workflow = new EnrolmentWorkflow({
        central,
        agent,
        drivers: await loadBundledRegistry(),
        registry: store.registry,
        audit: location.audit,
        actor: 'cli',
      });
      say(`scanning for ${seconds} s (${backend}) ...`);
      const candidates = await workflow.scan(seconds * 1000);
      for (const candidate of candidates) say(describeCandidate(candidate));
      const chosen =
        pick === undefined
          ? await choose(candidates, prompt)
          : workflow.pick(candidates, pick, `--pick ${pick}`);
      // Say what is about to be enrolled, and under which label, before anything happens: a number typed
      // from an older list (another scan, another day) must not enrol the wrong device unnoticed.
      say(`about to enrol ${describeChoice(chosen, values.label)}`);
      if (chosen.enrolled && !values.yes) {
        const again = await prompt.confirm(
          `Device ${chosen.number} is enrolled already as ${chosen.enrolled.id}; pair it again?`,
        );
        if (!again) throw new DeviceError('DEVICE_NOT_CHOSEN', 'nothing was changed');
      } else if (pick === undefined && !values.yes) {
        // A number given with --pick was chosen by a script (or a person) that saw this list; one typed at
        // the prompt is confirmed against the line above.
        const enrol = await prompt.confirm(`Enrol device ${chosen.number}?`);
        if (!enrol) throw new DeviceError('DEVICE_NOT_CHOSEN', 'nothing was paired');
      }
      const { driver } = chosen;
      const { device, created } = await workflow.enrol(chosen, {
        prompts: terminalPrompts(prompt, backend, say),
        ...(values.label === undefined ? {} : { label: values.label }),
        ...(values.bond ? { forceBond: true } : {}),
        onStep: (step) => {
          if (step === 'connecting') say(`connecting to ${chosen.number}. ${driver.category} ...`);
          if (step === 'bonding') say('bonding ...');
          if (step === 'checking') say('checking that the device answers ...');
        },
      });
      say(
        `${created ? 'enrolled' : 'updated'} ${device.id}: ${driver.category}, ${driver.id}` +
          `${device.model ? `, ${device.model}` : ''}, ${device.bonded ? 'bonded' : 'not bonded (the device needs no bond)'}` +
          `${device.label ? `, label "${device.label}"` : ''}`,
      );
      say('the gateway reads it from its next start; see "rpm-gateway devices"');
      return 0;
    } finally {
      await central.stop();
    }
  } finally {
    prompt.close();
    store.close();
  }
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

function describeCandidate(c: Candidate): string {
  const enrolled = c.enrolled ? `  [enrolled: ${enrolledName(c.enrolled)}]` : '';
  return `${candidateLine(c)}${enrolled}`;
}

/** "2. glucose-meter, Bluetooth SIG Glucose Service (sig/glucose), label "Kitchen meter"". */
function describeChoice(c: Candidate, label: string | undefined): string {
  const normalized = label === undefined ? null : normalizeLabel(label);
  const labelled = normalized === null ? '' : `, label ${JSON.stringify(normalized)}`;
  return `${c.number}. ${c.driver.category}, ${c.driver.name} (${c.driver.id})${labelled}`;
}

function enrolledName(device: EnrolledDevice): string {
  return device.label ? `${device.id} "${device.label}"` : device.id;
}

/** Asks for a number from the list at the prompt, three tries. */
async function choose(candidates: readonly Candidate[], prompt: LinePrompt): Promise<Candidate> {
  const count = candidates.length;
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = await prompt.ask(`Pair which device? [1-${count}, Enter to cancel] `);
    if (answer === undefined || answer === '') {
      throw new DeviceError('DEVICE_NOT_CHOSEN', 'no device chosen; nothing was paired');
    }
    const chosen = /^\d+$/.test(answer) ? candidates[Number(answer) - 1] : undefined;
    if (chosen) return chosen;
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
