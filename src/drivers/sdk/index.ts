/**
 * The driver SDK: the one module a driver may import (as `rpm-gateway/sdk`). Everything exported here is a
 * stable API under semantic versioning; the gateway's internals can change without breaking drivers.
 * See devices/README.md for the vendor's guide.
 */
export { DecodeError, FrameError } from '../../errors.js';
export { ByteReader } from '../../gatt/byte-reader.js';
export { type DeviceDateTime, dateTimeFromFields, encodeDateTime } from '../../gatt/date-time.js';
export {
  decodeFloat,
  decodeSfloat,
  encodeFloat,
  encodeSfloat,
  type MderNumber,
} from '../../gatt/mder-float.js';
export { normalizeUuid } from '../../gatt/uuid.js';
export type { MdcCode } from '../../model/codes.js';
export type { InvalidReason, JsonValue, Observation, Reading } from '../../model/observation.js';
export type { UcumUnit } from '../../model/units.js';
export {
  CHECKSUMS,
  type Checksum,
  type ChecksumName,
  CRC8_MAXIM_DOW,
  CRC8_SMBUS,
  CRC16_IBM_3740,
  CRC16_MODBUS,
  type CrcModel,
  crc,
  crc8,
  crc8Maxim,
  crc16CcittFalse,
  crc16Modbus,
  sum7,
  xor8,
} from './checksums.js';
export {
  type CharacteristicSpec,
  type DecodeContext,
  type Decoder,
  type DeviceCategory,
  type Driver,
  type DriverDefinition,
  defineDriver,
  type Emits,
  type FramePattern,
  type MatchRule,
  type Quirk,
  type SetupAnswer,
  type SetupContext,
  type SetupValue,
  type SetupWrite,
  setupValue,
  type Thinning,
} from './define-driver.js';
export {
  createFramer,
  type FrameChecksum,
  type FrameEvent,
  type FrameFormat,
  type FrameLength,
  type Framer,
  type Framing,
  framingProblems,
  isStreamFraming,
  type LengthField,
  MAX_FRAME_LENGTH,
  type StreamDecoder,
  type StreamFraming,
} from './framing.js';
export { bitNames, observe, observeInteger } from './observe.js';
export * from './sig/blood-pressure.js';
export * from './sig/device-info.js';
export * from './sig/glucose.js';
export * from './sig/heart-rate.js';
export * from './sig/pulse-oximetry.js';
export * from './sig/thermometer.js';
export * from './sig/weight-scale.js';
