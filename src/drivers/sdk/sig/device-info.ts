import {
  ADJUST_REASON_NAMES,
  dayOfWeekName,
  decodeBatteryLevel,
  decodeCurrentTime,
  decodeLocalTimeInformation,
  decodePnpId,
  decodeRegulatoryCertificationDataList,
  decodeSystemId,
  decodeUtf8String,
  pnpProductVersionText,
} from '../../../gatt/device-info.js';
import type { JsonValue, Reading } from '../../../model/observation.js';
import type { CharacteristicSpec, Decoder } from '../define-driver.js';
import { bitNames } from '../observe.js';

export {
  type AdjustReasonName,
  type CurrentTimeFields,
  encodeCurrentTime,
  encodeLocalTimeInformation,
} from '../../../gatt/device-info.js';

/**
 * Decoders for the characteristics every device has besides its health profile: Battery Level (BAS), the
 * Device Information Service (DIS) and the Current Time Service (CTS). Every reading is kind 'info'. A SIG
 * driver lists them with `characteristics: [...profileCharacteristics, ...deviceInformationCharacteristics]`;
 * all are optional, so a device without one of these services loses nothing.
 */
export const BATTERY_SERVICE = '180f';
export const DEVICE_INFORMATION_SERVICE = '180a';
export const CURRENT_TIME_SERVICE = '1805';

function info(details: { readonly [k: string]: JsonValue }): Reading[] {
  return [{ observations: [], time: null, kind: 'info', details }];
}

/** Battery Level (0x2A19): MDC_ATTR_VAL_BATT_CHARGE in %; 101-255 are reserved -> value null, invalid 'reserved'. */
export const batteryLevelDecoder: Decoder = (bytes) => {
  const b = decodeBatteryLevel(bytes);
  return [
    {
      observations: [
        b.percent === null
          ? { code: 'MDC_ATTR_VAL_BATT_CHARGE', value: null, unit: '%', invalid: 'reserved' }
          : { code: 'MDC_ATTR_VAL_BATT_CHARGE', value: b.percent, unit: '%' },
      ],
      time: null,
      kind: 'info',
    },
  ];
};

export const manufacturerNameDecoder: Decoder = (bytes) =>
  info({ manufacturerName: decodeUtf8String(bytes, 'Manufacturer Name String') });

export const modelNumberDecoder: Decoder = (bytes) =>
  info({ modelNumber: decodeUtf8String(bytes, 'Model Number String') });

/**
 * Serial Number String (0x2A25). A serial number identifies one physical device, and an RPM device belongs to
 * one patient: it is PHI-adjacent. It stays in `details` (the receiver needs it to tell devices apart), but logs
 * and error messages MUST redact it; never log a 2a25 reading's details verbatim.
 */
export const serialNumberDecoder: Decoder = (bytes) =>
  info({ serialNumber: decodeUtf8String(bytes, 'Serial Number String') });

export const hardwareRevisionDecoder: Decoder = (bytes) =>
  info({ hardwareRevision: decodeUtf8String(bytes, 'Hardware Revision String') });

export const firmwareRevisionDecoder: Decoder = (bytes) =>
  info({ firmwareRevision: decodeUtf8String(bytes, 'Firmware Revision String') });

export const softwareRevisionDecoder: Decoder = (bytes) =>
  info({ softwareRevision: decodeUtf8String(bytes, 'Software Revision String') });

/**
 * System ID (0x2A23). Often derived from the device's public Bluetooth address, so, like the serial number, it
 * identifies one device (PHI-adjacent): kept in details, redacted in logs.
 */
export const systemIdDecoder: Decoder = (bytes) => {
  const s = decodeSystemId(bytes);
  return info({
    manufacturerIdentifier: s.manufacturerIdentifier,
    organizationallyUniqueIdentifier: s.organizationallyUniqueIdentifier,
  });
};

/** IEEE 11073-20601 Regulatory Certification Data List (0x2A2A): opaque, as hex. */
export const regulatoryCertificationDataListDecoder: Decoder = (bytes) =>
  info({ regulatoryCertificationDataList: decodeRegulatoryCertificationDataList(bytes).hex });

/** PnP ID (0x2A50). */
export const pnpIdDecoder: Decoder = (bytes) => {
  const p = decodePnpId(bytes);
  return info({
    vendorIdSource: p.vendorIdSourceName,
    vendorIdSourceCode: p.vendorIdSource,
    vendorId: p.vendorId,
    productId: p.productId,
    productVersion: p.productVersion,
    productVersionText: pnpProductVersionText(p.productVersion),
  });
};

/**
 * Current Time (0x2A2B): `time` is the device's clock as ISO local time (null when the device says the date is
 * unknown), so a session can compare it with the gateway's clock and write encodeCurrentTime(...) if it drifted.
 */
export const currentTimeDecoder: Decoder = (bytes) => {
  const c = decodeCurrentTime(bytes);
  const details: { [k: string]: JsonValue } = {
    dayOfWeek: dayOfWeekName(c.dayOfWeek),
    fractions256: c.fractions256,
    adjustReason: bitNames(c.adjustReason, ADJUST_REASON_NAMES),
  };
  if (!c.dateTime.valid) details['deviceTimeInvalid'] = true;
  return [{ observations: [], time: c.dateTime.iso, kind: 'info', details }];
};

/** Local Time Information (0x2A0F): offsets in minutes, null when unknown or reserved. */
export const localTimeInformationDecoder: Decoder = (bytes) => {
  const l = decodeLocalTimeInformation(bytes);
  return info({ timeZoneMinutes: l.timeZoneMinutes, dstOffsetMinutes: l.dstOffsetMinutes });
};

function spec(
  uuid: string,
  service: string,
  name: string,
  decode: Decoder,
  emits: CharacteristicSpec['emits'] = [],
): CharacteristicSpec {
  return Object.freeze({ uuid, service, access: 'read', optional: true, name, decode, emits });
}

/**
 * Battery (0x180F), Device Information (0x180A) and Current Time (0x1805) characteristics, all optional reads.
 * Spread into every SIG driver's characteristics.
 */
export const deviceInformationCharacteristics: readonly CharacteristicSpec[] = Object.freeze([
  spec('2a19', BATTERY_SERVICE, 'Battery Level', batteryLevelDecoder, [
    { code: 'MDC_ATTR_VAL_BATT_CHARGE', units: ['%'] },
  ]),
  spec('2a29', DEVICE_INFORMATION_SERVICE, 'Manufacturer Name String', manufacturerNameDecoder),
  spec('2a24', DEVICE_INFORMATION_SERVICE, 'Model Number String', modelNumberDecoder),
  spec('2a25', DEVICE_INFORMATION_SERVICE, 'Serial Number String', serialNumberDecoder),
  spec('2a27', DEVICE_INFORMATION_SERVICE, 'Hardware Revision String', hardwareRevisionDecoder),
  spec('2a26', DEVICE_INFORMATION_SERVICE, 'Firmware Revision String', firmwareRevisionDecoder),
  spec('2a28', DEVICE_INFORMATION_SERVICE, 'Software Revision String', softwareRevisionDecoder),
  spec('2a23', DEVICE_INFORMATION_SERVICE, 'System ID', systemIdDecoder),
  spec(
    '2a2a',
    DEVICE_INFORMATION_SERVICE,
    'IEEE 11073-20601 Regulatory Certification Data List',
    regulatoryCertificationDataListDecoder,
  ),
  spec('2a50', DEVICE_INFORMATION_SERVICE, 'PnP ID', pnpIdDecoder),
  spec('2a2b', CURRENT_TIME_SERVICE, 'Current Time', currentTimeDecoder),
  spec('2a0f', CURRENT_TIME_SERVICE, 'Local Time Information', localTimeInformationDecoder),
]);
