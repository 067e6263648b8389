import {
  bloodPressureCharacteristics,
  defineDriver,
  deviceInformationCharacteristics,
} from 'rpm-gateway/sdk';

/** Any cuff that implements the Bluetooth SIG Blood Pressure Service (0x1810). */
export default defineDriver({
  id: 'sig/blood-pressure',
  version: '1.0.0',
  name: 'Bluetooth SIG Blood Pressure Service',
  category: 'blood-pressure',
  match: { services: ['1810'] },
  characteristics: [...bloodPressureCharacteristics, ...deviceInformationCharacteristics],
  sources: [
    'Bluetooth SIG, Blood Pressure Service 1.1.1, section 3 (service characteristics)',
    'Bluetooth SIG, GATT Specification Supplement: Blood Pressure Measurement (0x2A35), Intermediate Cuff Pressure (0x2A36), Blood Pressure Feature (0x2A49)',
    'IEEE 11073-10407 (blood pressure monitor) and 11073-10101 nomenclature',
  ],
});
