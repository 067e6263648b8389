import { defineDriver, deviceInformationCharacteristics, heartRateCharacteristics } from 'rpm-gateway/sdk';

/** Any sensor implementing the Bluetooth SIG Heart Rate Profile/Service (advertises service 0x180D). */
export default defineDriver({
  id: 'sig/heart-rate',
  version: '1.0.0',
  name: 'Bluetooth SIG Heart Rate Sensor (HRS 1.0)',
  category: 'heart-rate',
  match: { services: ['180d'] },
  characteristics: [...heartRateCharacteristics, ...deviceInformationCharacteristics],
  sources: [
    'Bluetooth SIG, Heart Rate Service 1.0 (HRS_SPEC_V10), section 3.1 Heart Rate Measurement, 3.2 Body Sensor Location, 3.3 Heart Rate Control Point',
    'Bluetooth SIG, Heart Rate Profile 1.0 (HRP_V10)',
    'Bluetooth SIG, GATT Specification Supplement: Heart Rate Measurement, Body Sensor Location',
    'Bluetooth SIG, Battery Service 1.0; Device Information Service 1.1; Current Time Service 1.1',
  ],
});
