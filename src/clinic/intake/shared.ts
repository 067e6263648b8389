import type { ClinicIntakeOptions } from './clinic-intake.js';
import { IntakeError } from './errors.js';

/**
 * Several intake processes splitting one stream (docs/clinic-intake.md, "Several intake processes"): each
 * process runs two ClinicIntakes with MQTT 5 shared subscriptions (MQTT 5.0 section 4.8.2), built from one set
 * of options by this function:
 *
 * - obs and status in `$share/<group>/rpm/v1/+/{obs,status}` under the configured client id;
 * - alerts in `$share/<group>-alert/rpm/v1/+/alert` under `<client id>-alert`, on a connection of their own.
 *
 * Why two connections: a broker delivers to one connection in order and holds at most its in-flight window
 * (Mosquitto `max_inflight_messages`, the client's Receive Maximum) unacknowledged; everything else waits in
 * that session's queue. On one connection an alert published behind thousands of backlog readings would wait
 * for all of them to be committed. On its own connection it waits only for the other alerts. Why a group of its
 * own: a shared subscription is identified by its ShareName and filter together, so the same group name would
 * already work; a distinct name keeps the two lanes apart in the broker's tools and lets a clinic run the
 * alert lane in fewer (or more) processes than the backlog.
 */
export function sharedIntakeOptions(
  options: ClinicIntakeOptions,
): readonly [ClinicIntakeOptions, ClinicIntakeOptions] {
  const subscription = options.subscription;
  if (subscription === undefined || !('sharedGroup' in subscription)) {
    throw new IntakeError('INTAKE_BAD_OPTIONS', 'sharedIntakeOptions needs subscription.sharedGroup');
  }
  if (subscription.kinds !== undefined) {
    throw new IntakeError(
      'INTAKE_BAD_OPTIONS',
      'sharedIntakeOptions chooses the kinds of each connection itself: leave subscription.kinds out',
    );
  }
  const group = subscription.sharedGroup;
  return [
    { ...options, subscription: { sharedGroup: group, kinds: ['obs', 'status'] } },
    {
      ...options,
      clientId: `${options.clientId}-alert`,
      subscription: { sharedGroup: `${group}-alert`, kinds: ['alert'] },
    },
  ];
}
