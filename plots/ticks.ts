// Choosing "nice" tick positions and formatting their labels.
//
// Linear axes follow the 1-2-5 rule: the spacing between ticks is 1, 2 or 5 times a power of ten,
// picked so that at most `maxTicks` ticks fit in the range. Log axes put ticks on powers of ten
// (every decade, or every 2nd, 3rd... when the range spans many decades) with unlabelled minor
// ticks at 2..9 times each power; a range narrower than a decade falls back to 1-2-5 multiples.

/** The smallest step of the form {1, 2, 5} x 10^k that is at least `rough`. */
export function niceStep(rough: number): number {
  if (!(rough > 0) || !Number.isFinite(rough))
    throw new Error(`niceStep needs a positive step, got ${rough}`);
  const exponent = Math.floor(Math.log10(rough));
  const magnitude = 10 ** exponent;
  const fraction = rough / magnitude; // in [1, 10), up to rounding
  const eps = 1e-9;
  const nice = fraction <= 1 + eps ? 1 : fraction <= 2 + eps ? 2 : fraction <= 5 + eps ? 5 : 10;
  return cleanNumber(nice * magnitude);
}

/** Rounds away binary noise such as 0.30000000000000004 -> 0.3. */
function cleanNumber(x: number): number {
  return Number.parseFloat(x.toPrecision(12));
}

/**
 * The tick spacing `niceTicks(min, max, maxTicks)` uses: the smallest 1-2-5 step that puts at most
 * `maxTicks` multiples of itself inside [min, max], but never fewer than two.
 */
export function tickStep(min: number, max: number, maxTicks = 6): number {
  const span = max - min;
  if (!Number.isFinite(span) || span < 0) return NaN;
  if (span === 0) return niceStep(Math.abs(min) || 1);
  let step = niceStep(span / Math.max(1, maxTicks));
  // a narrow range can fall between two multiples of the first guess: refine 5 -> 2 -> 1 -> 0.5 ...
  while (multiplesInRange(min, max, step).length < 2) {
    const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    step = cleanNumber(step * (mantissa > 4 ? 0.4 : 0.5));
  }
  while (multiplesInRange(min, max, step).length > Math.max(2, maxTicks)) {
    // never coarsen to a step that leaves fewer than two labelled ticks: one label gives no scale
    const coarser = niceStep(step * 1.001);
    if (multiplesInRange(min, max, coarser).length < 2) break;
    step = coarser;
  }
  return step;
}

/**
 * Multiples of a 1-2-5 step inside [min, max], at most `maxTicks` of them.
 * Example: niceTicks(0, 1, 6) = [0, 0.2, 0.4, 0.6, 0.8, 1].
 */
export function niceTicks(min: number, max: number, maxTicks = 6): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) return [];
  if (max === min) return [min];
  return multiplesInRange(min, max, tickStep(min, max, maxTicks));
}

function multiplesInRange(min: number, max: number, step: number): number[] {
  const tol = step * 1e-9;
  const first = Math.ceil((min - tol) / step);
  const last = Math.floor((max + tol) / step);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(cleanNumber(k * step));
  return ticks;
}

/** 10^k written exactly (10 ** -3 would give 0.0010000000000000002 on some engines). */
export function pow10(k: number): number {
  return Number.parseFloat(`1e${k}`);
}

export interface LogTicks {
  /** Labelled ticks. */
  major: number[];
  /** Unlabelled small ticks between the majors. */
  minor: number[];
}

/**
 * Ticks for a log10 axis on [min, max] (both > 0). Example: logTicks(1e-3, 10).major =
 * [0.001, 0.01, 0.1, 1, 10].
 */
export function logTicks(min: number, max: number, maxTicks = 8): LogTicks {
  if (!(min > 0) || !(max >= min) || !Number.isFinite(max)) return { major: [], minor: [] };
  const lo = Math.floor(Math.log10(min) + 1e-9);
  const hi = Math.ceil(Math.log10(max) - 1e-9);
  const inRange = (v: number): boolean => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  const decades: number[] = [];
  for (let k = lo; k <= hi; k++) if (inRange(pow10(k))) decades.push(k);
  if (decades.length >= 2) {
    const every = Math.ceil(decades.length / Math.max(2, maxTicks));
    // Keep decades that are multiples of `every` so the labels stay regular (1e-4, 1e-2, 1, ...).
    const major = decades.filter((k) => k % every === 0).map(pow10);
    const minor: number[] = [];
    for (let k = lo; k <= hi; k++) {
      if (every === 1) {
        for (let m = 2; m <= 9; m++) if (inRange(m * pow10(k))) minor.push(cleanNumber(m * pow10(k)));
      } else if (k % every !== 0 && inRange(pow10(k))) {
        minor.push(pow10(k));
      }
    }
    return { major, minor };
  }
  // Less than a decade: label 1-2-5 multiples, or every integer multiple if that is too sparse.
  for (const mantissas of [
    [1, 2, 5],
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  ]) {
    const major: number[] = [];
    for (let k = lo; k <= hi; k++) {
      for (const m of mantissas) if (inRange(m * pow10(k))) major.push(cleanNumber(m * pow10(k)));
    }
    if (major.length >= 2) return { major, minor: [] };
  }
  // Narrower still (e.g. [2.1, 2.9]): linear ticks read fine on such a short log stretch.
  return { major: niceTicks(min, max, maxTicks), minor: [] };
}

/** Writes x as mantissa-e-exponent with `digits` decimals, without '+' or trailing zeros: 1.5e-4. */
function formatExponential(x: number, digits: number): string {
  const [mantissa, exponent] = x.toExponential(Math.max(0, Math.min(20, digits))).split('e');
  const m = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
  return `${m}e${Number.parseInt(exponent, 10)}`;
}

/**
 * Labels for the ticks of a linear axis spaced `step` apart, all in one style: fixed decimals
 * (as many as the step needs: [0, 0.5, 1] -> '0.0', '0.5', '1.0'), or exponent notation
 * ('0', '5e4', '1e5') when the largest tick is at least 1e5 or smaller than 1e-3.
 */
export function formatTicks(values: readonly number[], step: number): string[] {
  const largest = Math.max(0, ...values.map(Math.abs));
  const exponential = largest >= 1e5 || (largest > 0 && largest < 1e-3);
  const stepExponent = Math.floor(Math.log10(step) + 1e-9);
  const decimals = Math.min(20, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
  return values.map((v) => {
    const zero = Math.abs(v) < Math.abs(step) * 1e-6;
    if (!exponential) return (zero ? 0 : v).toFixed(decimals);
    if (zero) return '0';
    return formatExponential(v, Math.floor(Math.log10(Math.abs(v)) + 1e-9) - stepExponent);
  });
}

/** Label for a log-axis tick: plain decimals from 0.001 to 9999, exponent notation outside. */
export function formatLogTick(value: number): string {
  if (value >= 1e-3 && value < 1e4) return String(cleanNumber(value));
  return formatExponential(value, 2);
}
