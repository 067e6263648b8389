import { defineDriver, deviceInformationCharacteristics, glucoseCharacteristics } from 'rpm-gateway/sdk';

/** Any glucose meter that implements the Bluetooth SIG Glucose Service (0x1808). */
export default defineDriver({
  id: 'sig/glucose',
  version: '1.0.0',
  name: 'Bluetooth SIG Glucose Service',
  category: 'glucose-meter',
  match: { services: ['1808'] },
  characteristics: [...glucoseCharacteristics, ...deviceInformationCharacteristics],
  sources: [
    'Bluetooth SIG, Glucose Service 1.0.1, section 3 (service characteristics, Record Access Control Point)',
    'Bluetooth SIG, GATT Specification Supplement: Glucose Measurement (0x2A18), Glucose Measurement Context (0x2A34), Glucose Feature (0x2A51), Record Access Control Point (0x2A52), Date Time (0x2A08)',
    'IEEE 11073-10417 (glucose meter) and 11073-10101 nomenclature',
  ],
});
