import { DeviceError } from '../store/device-errors.js';
import { type EnrolledDevice, normalizeLabel } from '../store/device-registry.js';
import type { PairingPrompts } from './pairing-agent.js';
import type { Candidate, EnrolmentWorkflow, PairingStep } from './workflow.js';

/**
 * One enrolment from scan to record, with a person answering: the steps `rpm-gateway pair` walks through,
 * whether it opened the store itself or talks to the running hub over the control socket
 * (docs/control-socket.md). The person is reached through `EnrolmentInteraction`: the terminal's prompts in
 * src/cli/pair.ts, or a control-socket client. Both see the same views, which never hold an address.
 */

/** An enrolled device as shown to the person enrolling or listing; the address only when asked for. */
export interface EnrolledDeviceView {
  readonly id: string;
  readonly label: string | null;
  readonly profile: string;
  readonly driver: string;
  readonly model: string | null;
  readonly bonded: boolean;
  readonly enrolledAt: string;
  readonly updatedAt: string;
  readonly lastSeenAt: string | null;
  /** Present only when the caller asked for addresses (and that was audited). */
  readonly address?: string;
}

export function deviceView(device: EnrolledDevice, withAddress = false): EnrolledDeviceView {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: device.id,
    label: device.label,
    profile: device.category,
    driver: device.driverId,
    model: device.model,
    bonded: device.bonded,
    enrolledAt: iso(device.enrolledAt),
    updatedAt: iso(device.updatedAt),
    lastSeenAt: device.lastSeenAt === null ? null : iso(device.lastSeenAt),
    ...(withAddress ? { address: device.address } : {}),
  };
}

/** A device heard during the scan, as listed: numbered, by profile and driver, never by address. */
export interface CandidateView {
  readonly number: number;
  readonly profile: string;
  readonly driver: string;
  readonly driverName: string;
  readonly rssi: number | null;
  /** Set when the device is enrolled already. */
  readonly enrolled: { readonly id: string; readonly label: string | null } | null;
}

export function candidateView(c: Candidate): CandidateView {
  return {
    number: c.number,
    profile: c.driver.category,
    driver: c.driver.id,
    driverName: c.driver.name,
    rssi: c.rssi ?? null,
    enrolled: c.enrolled ? { id: c.enrolled.id, label: c.enrolled.label } : null,
  };
}

export type EnrolmentEvent =
  | { readonly kind: 'scanning'; readonly seconds: number }
  | { readonly kind: 'candidates'; readonly candidates: readonly CandidateView[] }
  | { readonly kind: 'step'; readonly step: PairingStep; readonly number: number; readonly profile: string };

/** How the person enrolling is told what happens and asked what to do. Each question may throw to cancel. */
export interface EnrolmentInteraction extends PairingPrompts {
  notify(event: EnrolmentEvent): void;
  /** The number of the device to enrol from the list just told; undefined cancels. */
  choose(candidates: readonly CandidateView[]): Promise<number | undefined>;
  /**
   * Whether to go ahead with `candidate` (`picked`: the request named it, rather than `choose`). The terminal
   * shows what is about to be enrolled and asks unless told not to.
   */
  approve(candidate: CandidateView, how: { readonly picked: boolean }): Promise<boolean>;
}

export interface GuidedEnrolRequest {
  /** How long to scan, seconds (more than 0, at most 300). */
  readonly seconds: number;
  /** The device's number in the list, chosen beforehand (`pair --pick N`); without it `choose` asks. */
  readonly pick?: number;
  readonly label?: string;
  readonly forceBond?: boolean;
}

export interface EnrolmentOutcome {
  readonly device: EnrolledDeviceView;
  readonly driverName: string;
  /** False when the device was enrolled already: it kept its id and was updated. */
  readonly created: boolean;
  readonly bondedNow: boolean;
}

export const MAX_SCAN_SECONDS = 300;

/** Checks a request before anything is scanned, so a bad label does not cost the user a pairing. */
export function checkEnrolRequest(request: GuidedEnrolRequest): void {
  const { seconds, pick } = request;
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_SCAN_SECONDS) {
    throw new DeviceError(
      'DEVICE_NOT_CHOSEN',
      `the scan must last more than 0 and at most ${MAX_SCAN_SECONDS} s`,
    );
  }
  if (pick !== undefined && (!Number.isInteger(pick) || pick < 1)) {
    throw new DeviceError('DEVICE_NOT_CHOSEN', 'a device number is 1, 2, ...');
  }
  if (request.label !== undefined) normalizeLabel(request.label);
}

/** Scan, list, choose, approve, pair and record: nothing is enrolled unless every step succeeds. */
export async function enrolGuided(
  workflow: EnrolmentWorkflow,
  request: GuidedEnrolRequest,
  interaction: EnrolmentInteraction,
): Promise<EnrolmentOutcome> {
  checkEnrolRequest(request);
  interaction.notify({ kind: 'scanning', seconds: request.seconds });
  const candidates = await workflow.scan(request.seconds * 1000);
  const views = candidates.map(candidateView);
  interaction.notify({ kind: 'candidates', candidates: views });
  const picked = request.pick !== undefined;
  const number = picked ? request.pick : await interaction.choose(views);
  if (number === undefined)
    throw new DeviceError('DEVICE_NOT_CHOSEN', 'no device chosen; nothing was paired');
  // The pick is named as the command line names it, so "--pick 9: the scan found 8 devices" reads right.
  const chosen = workflow.pick(candidates, number, picked ? `--pick ${number}` : undefined);
  const view = candidateView(chosen);
  if (!(await interaction.approve(view, { picked }))) {
    throw new DeviceError(
      'DEVICE_NOT_CHOSEN',
      chosen.enrolled ? 'nothing was changed' : 'nothing was paired',
    );
  }
  const { device, driver, created, bondedNow } = await workflow.enrol(chosen, {
    prompts: interaction,
    ...(request.label === undefined ? {} : { label: request.label }),
    ...(request.forceBond ? { forceBond: true } : {}),
    onStep: (step) =>
      interaction.notify({ kind: 'step', step, number: chosen.number, profile: chosen.driver.category }),
  });
  return { device: deviceView(device), driverName: driver.name, created, bondedNow };
}
