import {
  defineDriver,
  deviceInformationCharacteristics,
  PULSE_OXIMETER_SERVICE,
  pulseOximetryCharacteristics,
} from 'rpm-gateway/sdk';

/**
 * Any pulse oximeter that implements the Bluetooth SIG Pulse Oximeter Service (0x1822, PLXS 1.0.1): the
 * optional spot-check (indicated, may carry a device timestamp) and continuous (notified, with optional fast
 * and slow averages) measurements, plus the mandatory PLX Features read.
 */
export default defineDriver({
  id: 'sig/pulse-oximeter',
  version: '1.0.0',
  name: 'Bluetooth SIG Pulse Oximeter Service (PLXS 1.0.1)',
  category: 'pulse-oximeter',
  match: { services: [PULSE_OXIMETER_SERVICE] },
  characteristics: [...pulseOximetryCharacteristics, ...deviceInformationCharacteristics],
  sources: [
    'Bluetooth SIG, Pulse Oximeter Service (PLXS) v1.0.1, section 3 (characteristics)',
    'Bluetooth SIG, Pulse Oximeter Profile (PLXP) v1.0.1',
    'Bluetooth SIG, GATT Specification Supplement: PLX Spot-Check Measurement, PLX Continuous Measurement, PLX Features',
    'IEEE 11073-10404 (pulse oximeter device specialisation) for the MDC terms',
  ],
});
