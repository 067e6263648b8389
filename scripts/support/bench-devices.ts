/**
 * The streaming devices of bench:runtime: pulse oximeters and heart-rate straps in turn, each notifying once a
 * second (one reading per notification), at addresses of their own. The hub (through $RPM_SIM_SCENARIO) and the
 * simulator baseline build the same list.
 */
export interface BenchDevice {
  readonly driver: 'sig/pulse-oximeter' | 'sig/heart-rate';
  readonly category: 'pulse-oximeter' | 'heart-rate';
  readonly address: string;
  readonly streamEveryMs: number;
}

export function benchDevices(count: number): BenchDevice[] {
  return Array.from({ length: count }, (_, i) => {
    const oximeter = i % 2 === 0;
    return {
      driver: oximeter ? 'sig/pulse-oximeter' : 'sig/heart-rate',
      category: oximeter ? 'pulse-oximeter' : 'heart-rate',
      address: `D0:5E:00:00:01:${(i + 1).toString(16).padStart(2, '0').toUpperCase()}`,
      streamEveryMs: 1000,
    };
  });
}
