import type { ClinicIntakeOptions } from '../intake/clinic-intake.js';

/**
 * The intake's two MQTT connections. Alerts (docs/wire-format.md, the alert lane) get a connection, a
 * client id and a broker session of their own, so an alert is never queued behind a backlog of observations:
 * a broker delivers one session's messages in order over one connection (MQTT 3.1.1 section 4.6, "Message
 * ordering"), and mqtt.js reads one PUBLISH at a time, so on a shared session an alert would wait for every
 * backlog batch before it, commits included. On its own session it waits only for other alerts.
 *
 *   main   `<intake.clientId>`     rpm/v1/+/obs and rpm/v1/+/status
 *   alert  `<intake.clientId>-a`   rpm/v1/+/alert
 *
 * The alert id is the main one with "-a": within the broker's rule for a clinic's client ids (src/broker/acl.ts:
 * clinic-<name>-<suffix>, suffix 1 to 23 of a-z 0-9 '-'), checked with the configuration. With an MQTT 5
 * shared group, alerts share in a group of their own, `<sharedGroup>-alert`, for the same reason.
 */
export type IntakeLane = 'main' | 'alert';

export const ALERT_CLIENT_ID_SUFFIX = '-a';

/**
 * The default intake id is clinic-<name>-in: short, because with the alert lane's "-a" it must stay within the
 * 23 characters of a durable session's id (MQTT 3.1.1 section 3.1.3.1), which leaves 11 for the clinic's name.
 */
export const INTAKE_CLIENT_ID_SUFFIX = 'in';

export function alertClientId(clientId: string): string {
  return `${clientId}${ALERT_CLIENT_ID_SUFFIX}`;
}

/** The topics of each lane (MQTT topic filters, docs/wire-format.md "Topics"). */
export const LANE_TOPICS: Readonly<Record<IntakeLane, readonly string[]>> = {
  main: ['rpm/v1/+/obs', 'rpm/v1/+/status'],
  alert: ['rpm/v1/+/alert'],
};

/** The client id and subscription of one lane. */
export function laneSubscription(
  lane: IntakeLane,
  clientId: string,
  sharedGroup: string | undefined,
): Pick<ClinicIntakeOptions, 'clientId' | 'subscription'> {
  const id = lane === 'main' ? clientId : alertClientId(clientId);
  if (sharedGroup === undefined) return { clientId: id, subscription: { topics: LANE_TOPICS[lane] } };
  return lane === 'main'
    ? { clientId: id, subscription: { sharedGroup, kinds: ['obs', 'status'] } }
    : { clientId: id, subscription: { sharedGroup: `${sharedGroup}-alert`, kinds: ['alert'] } };
}
