import { defineDriver, deviceInformationCharacteristics, thermometerCharacteristics } from 'rpm-gateway/sdk';

/** Any thermometer that implements the Bluetooth SIG Health Thermometer Service (0x1809). */
export default defineDriver({
  id: 'sig/thermometer',
  version: '1.0.0',
  name: 'Bluetooth SIG Health Thermometer Service',
  category: 'thermometer',
  match: { services: ['1809'] },
  characteristics: [...thermometerCharacteristics, ...deviceInformationCharacteristics],
  sources: [
    'Bluetooth SIG, Health Thermometer Service 1.0, section 3 (service characteristics)',
    'Bluetooth SIG, GATT Specification Supplement: Temperature Measurement (0x2A1C), Temperature Type (0x2A1D), Intermediate Temperature (0x2A1E), Measurement Interval (0x2A21)',
    'IEEE 11073-10408 (thermometer) and 11073-10101 nomenclature',
  ],
});
