import { clamp, type Random } from './random.js';

/**
 * A simulated patient. Spot measurements (blood pressure, temperature, weight, glucose) are functions of the
 * time they are taken, so records can be made for any past moment in any order; the continuous signals
 * (oximetry, heart beats) are processes stepped forward in time. Ranges and rhythms are textbook adult values:
 * SpO2 94-99 % with slow drift and rare desaturations, pulse 55-95 /min with beat-to-beat variability, blood
 * pressure around 120/80 mmHg higher by day than by night, temperature 36.4-37.2 Cel with its afternoon peak,
 * weight within 0.3 kg, glucose 80-160 mg/dL rising after meals.
 */
export interface SubjectProfile {
  /**
   * Resting SpO2, %: 97 for a healthy adult; lower for a patient with chronic lung disease (COPD patients often
   * rest at 88-92 %), which is what the alert-lane rules watch for.
   */
  readonly spo2: number;
  readonly systolic: number;
  readonly diastolic: number;
  readonly restingPulse: number;
  readonly weightKg: number;
  readonly heightM: number;
  readonly fastingGlucose: number;
}

export const DEFAULT_SUBJECT: SubjectProfile = {
  spo2: 97,
  systolic: 120,
  diastolic: 80,
  restingPulse: 72,
  weightKg: 75,
  heightM: 1.76,
  fastingGlucose: 90,
};

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Hour of the day (0-24, fractional) of an epoch time, on the subject's wall clock. */
function hourOf(t: number): number {
  return (((t % DAY) + DAY) % DAY) / HOUR;
}

/** A 24-hour rhythm peaking at `peakHour`, from -1 to 1. */
function circadian(t: number, peakHour: number): number {
  return Math.cos((2 * Math.PI * (hourOf(t) - peakHour)) / 24);
}

export interface BloodPressureSample {
  readonly systolic: number;
  readonly diastolic: number;
  readonly meanArterialPressure: number;
  readonly pulseRate: number;
}

export interface GlucoseSample {
  readonly mgPerDl: number;
  /** GLS meal code: 1 preprandial, 2 postprandial, 3 fasting, 4 casual. */
  readonly meal: 1 | 2 | 3 | 4;
}

/** Meal times (hours of the day) of the glucose model. */
const BREAKFAST = 7.5;
const MEALS = [BREAKFAST, 12.5, 19];

export class Subject {
  readonly profile: SubjectProfile;

  constructor(
    private readonly random: Random,
    profile: Partial<SubjectProfile> = {},
  ) {
    this.profile = { ...DEFAULT_SUBJECT, ...profile };
  }

  /** Cuff reading at `t`: day-time rise of about 8/5 mmHg, a night dip, measurement scatter. */
  bloodPressure(t: number): BloodPressureSample {
    const p = this.profile;
    const day = circadian(t, 14);
    const systolic = Math.round(
      clamp(p.systolic + 8 * day + this.random.gaussian(0, 5), p.systolic - 25, p.systolic + 35),
    );
    const diastolic = Math.round(
      clamp(
        p.diastolic + 5 * day + 0.3 * (systolic - p.systolic) + this.random.gaussian(0, 3),
        55,
        systolic - 25,
      ),
    );
    const pulseRate = Math.round(
      clamp(p.restingPulse + 5 * circadian(t, 15) + this.random.gaussian(0, 5), 55, 95),
    );
    return {
      systolic,
      diastolic,
      meanArterialPressure: Math.round(diastolic + (systolic - diastolic) / 3),
      pulseRate,
    };
  }

  /** Body temperature at `t`: lowest before dawn, highest late afternoon; 0.1 Cel resolution. */
  temperature(t: number): number {
    const value = 36.8 + 0.25 * circadian(t, 17) + this.random.gaussian(0, 0.08);
    return Math.round(clamp(value, 36.4, 37.2) * 10) / 10;
  }

  /** Weight at `t`: stable within 0.3 kg (hydration, meals), to the scale's 0.05 kg resolution. */
  weight(t: number): number {
    const w = this.profile.weightKg;
    const value = w + 0.15 * Math.sin((2 * Math.PI * t) / (7 * DAY)) + this.random.gaussian(0, 0.07);
    return Math.round(clamp(value, w - 0.3, w + 0.3) * 20) / 20;
  }

  /** Glucose at `t`: fasting level plus a rise after each meal peaking about 45 minutes later. */
  glucose(t: number): GlucoseSample {
    const hour = hourOf(t);
    let rise = 0;
    let meal: GlucoseSample['meal'] = 4;
    for (const mealHour of MEALS) {
      const minutesAfter = (hour - mealHour) * 60;
      if (minutesAfter >= 0 && minutesAfter < 240) {
        const x = minutesAfter / 45;
        rise += 55 * x * Math.exp(1 - x); // gamma-like meal response, peak 55 mg/dL at 45 min
        if (minutesAfter <= 180) meal = 2;
      } else if (minutesAfter < 0 && minutesAfter > -45) {
        meal = 1;
      }
    }
    if (hour >= 4 && hour < BREAKFAST - 0.75) meal = 3;
    const value = this.profile.fastingGlucose + rise + this.random.gaussian(0, 4);
    return { mgPerDl: Math.round(clamp(value, 80, 160)), meal };
  }

  /** BMI from a weight and the profile's height, to 0.1. */
  bmi(weightKg: number): number {
    return Math.round((weightKg / this.profile.heightM ** 2) * 10) / 10;
  }
}

/**
 * The continuous signals of a finger probe or chest strap: SpO2 (an Ornstein-Uhlenbeck drift around the
 * subject's resting value, 97 % held in 94-99 % for a healthy adult, with a desaturation of 4-8 points lasting 20-60 s roughly every 10 minutes), the pulse (a slower
 * drift in 55-95 /min) and individual beats whose RR intervals vary by a few percent (with a respiratory
 * rhythm), as heart-rate variability does.
 */
export class CardioProcess {
  private spo2Base: number;
  private pulse: number;
  private dipRemainingMs = 0;
  private dipLengthMs = 0;
  private dipDepth = 0;
  private untilBeatMs = 0;
  private elapsedMs = 0;
  private lastRr: number;
  private readonly recentRr: number[] = [];
  private perfusion = 4;

  constructor(
    private readonly random: Random,
    restingPulse = DEFAULT_SUBJECT.restingPulse,
    private readonly restingSpo2 = DEFAULT_SUBJECT.spo2,
  ) {
    this.spo2Base = restingSpo2;
    this.pulse = restingPulse;
    this.lastRr = 60 / restingPulse;
    this.untilBeatMs = this.random.uniform(0, this.lastRr * 1000);
  }

  /**
   * Moves the process `dtMs` forward and returns the RR intervals (seconds) of the beats that fell in that
   * time (each beat reports the interval since the previous one).
   */
  advance(dtMs: number): number[] {
    const dt = dtMs / 1000;
    const sqrtDt = Math.sqrt(dt);
    this.spo2Base = clamp(
      this.spo2Base +
        (this.restingSpo2 - this.spo2Base) * (dt / 300) +
        0.08 * sqrtDt * this.random.gaussian(),
      this.restingSpo2 - 3,
      Math.min(100, this.restingSpo2 + 2),
    );
    this.pulse = clamp(
      this.pulse + (72 - this.pulse) * (dt / 120) + 1.1 * sqrtDt * this.random.gaussian(),
      55,
      95,
    );
    this.perfusion = clamp(
      this.perfusion + (4 - this.perfusion) * (dt / 60) + 0.1 * sqrtDt * this.random.gaussian(),
      1,
      10,
    );
    if (this.dipRemainingMs > 0) {
      this.dipRemainingMs = Math.max(0, this.dipRemainingMs - dtMs);
    } else if (this.random.chance(dt / 600)) {
      this.dipLengthMs = this.random.uniform(20_000, 60_000);
      this.dipRemainingMs = this.dipLengthMs;
      this.dipDepth = this.random.uniform(4, 8);
    }
    const beats: number[] = [];
    let left = dtMs;
    while (left >= this.untilBeatMs) {
      left -= this.untilBeatMs;
      this.elapsedMs += this.untilBeatMs;
      const respiratory = 0.03 * Math.sin((2 * Math.PI * this.elapsedMs) / 4_000);
      const rr = clamp((60 / this.pulse) * (1 + respiratory + this.random.gaussian(0, 0.025)), 0.45, 1.3);
      beats.push(rr);
      this.lastRr = rr;
      this.recentRr.push(rr);
      if (this.recentRr.length > 8) this.recentRr.shift();
      this.untilBeatMs = rr * 1000;
    }
    this.untilBeatMs -= left;
    this.elapsedMs += left;
    return beats;
  }

  /** SpO2 now, whole percent (what a display shows). */
  get spo2(): number {
    const dip =
      this.dipRemainingMs > 0
        ? this.dipDepth * Math.sin((Math.PI * this.dipRemainingMs) / this.dipLengthMs)
        : 0;
    return Math.round(clamp(this.spo2Base - dip, Math.min(85, this.restingSpo2 - 12), 100));
  }

  /** Pulse rate averaged over the last beats (as oximeters and straps display it), whole /min. */
  get pulseRate(): number {
    const n = this.recentRr.length;
    if (n === 0) return Math.round(this.pulse);
    return Math.round(60 / (this.recentRr.reduce((a, b) => a + b, 0) / n));
  }

  /** Perfusion index, %, to 0.1. */
  get perfusionIndex(): number {
    return Math.round(this.perfusion * 10) / 10;
  }

  /** Where in the current beat the pulse wave is, 0 (beat) to 1 (next beat). */
  get beatPhase(): number {
    return clamp(1 - this.untilBeatMs / (this.lastRr * 1000), 0, 1);
  }
}

/** A plethysmogram sample (0-100) at a phase of the beat: steep upstroke, dicrotic notch, slow decay. */
export function plethAt(phase: number): number {
  const up = phase < 0.15 ? Math.sin((phase / 0.15) * (Math.PI / 2)) : 0;
  const down = phase >= 0.15 ? Math.exp(-(phase - 0.15) * 3.2) : 0;
  const notch = 0.12 * Math.exp(-(((phase - 0.45) / 0.06) ** 2));
  return Math.round(clamp(10 + 80 * (up + down) + 60 * notch, 0, 100));
}
