import { defineDriver, deviceInformationCharacteristics, weightScaleCharacteristics } from 'rpm-gateway/sdk';

/** Any scale implementing the Bluetooth SIG Weight Scale Profile/Service (advertises service 0x181D). */
export default defineDriver({
  id: 'sig/weight-scale',
  version: '1.0.0',
  name: 'Bluetooth SIG Weight Scale (WSS 1.0)',
  category: 'weight-scale',
  match: { services: ['181d'] },
  characteristics: [...weightScaleCharacteristics, ...deviceInformationCharacteristics],
  sources: [
    'Bluetooth SIG, Weight Scale Service 1.0 (WSS_V10), section 3.1 Weight Scale Feature, 3.2 Weight Measurement',
    'Bluetooth SIG, Weight Scale Profile 1.0 (WSP_V10)',
    'Bluetooth SIG, GATT Specification Supplement: Weight Measurement, Weight Scale Feature, Date Time',
    'Bluetooth SIG, Battery Service 1.0; Device Information Service 1.1; Current Time Service 1.1',
    'IEEE 11073-10415 (weighing scale) nomenclature: MDC_MASS_BODY_ACTUAL, MDC_LEN_BODY_ACTUAL, MDC_RATIO_MASS_BODY_LEN_SQ',
  ],
});
