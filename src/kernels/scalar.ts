/**
 * Scalar functions of the math kernels, testable without tensors: C++ integer division and
 * remainder, floor division and modulo, C's pow, round half to even, NaN-propagating max/min,
 * sign, erf/erfc, byte-string helpers.
 *
 * @module
 */
import { invalidArgument, ServingError } from "../errors.ts";

// ---------------------------------------------------------------------------------------------
// Scalar helpers
// ---------------------------------------------------------------------------------------------

function divisionByZero(): ServingError {
  return invalidArgument("Integer division by zero");
}

function negativePower(): ServingError {
  return invalidArgument("Integers to negative integer powers are not allowed");
}

/** C++ integer division: truncates toward zero. Exact: |a| < 2^53 keeps the quotient exact. */
export function truncDivInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return Math.trunc(a / b);
}

export function truncDivBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  return a / b;
}

/** Integer division rounding toward negative infinity (TensorFlow's FloorDiv). */
export function floorDivInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return Math.floor(a / b);
}

export function floorDivBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  const q = a / b;
  return q * b !== a && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

/** Remainder with the divisor's sign (TensorFlow's FloorMod); also right for floats. */
export function floorModNumber(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && (b < 0) !== (r < 0) ? r + b : r;
}

export function floorModInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return floorModNumber(a, b);
}

export function floorModBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  const r = a % b;
  return r !== 0n && (b < 0n) !== (r < 0n) ? r + b : r;
}

export function truncModInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return a % b;
}

export function truncModBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  return a % b;
}

/** C's pow: 1^y = 1 and (-1)^±inf = 1, where JavaScript gives NaN. */
export function powFloat(a: number, b: number): number {
  if (a === 1 || (a === -1 && (b === Infinity || b === -Infinity))) return 1;
  return a ** b;
}

/** Integer power by squaring with 32-bit wrap-around (wider results wrap the same mod 2^k). */
export function powInt(x: number, y: number): number {
  if (y < 0) throw negativePower();
  let r = 1;
  let base = x | 0;
  let e = y >>> 0;
  while (e > 0) {
    if (e & 1) r = Math.imul(r, base);
    base = Math.imul(base, base);
    e >>>= 1;
  }
  return r;
}

export function powBig(x: bigint, y: bigint): bigint {
  if (y < 0n) throw negativePower();
  let r = 1n;
  let base = x;
  let e = y;
  while (e > 0n) {
    if (e & 1n) r = BigInt.asIntN(64, r * base);
    base = BigInt.asIntN(64, base * base);
    e >>= 1n;
  }
  return r;
}

/** Rounds half to even, as TensorFlow's Round (and numpy's) does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // rounds halves up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Maximum that propagates NaN and keeps `a` on ties, as std::max does. */
export function maxNaN(a: number, b: number): number {
  if (a !== a || b !== b) return a + b;
  return a < b ? b : a;
}

/** Minimum that propagates NaN and keeps `a` on ties, as std::min does. */
export function minNaN(a: number, b: number): number {
  if (a !== a || b !== b) return a + b;
  return b < a ? b : a;
}

/** sign(x) with sign(NaN) = NaN and sign(±0) = 0, as Eigen does. */
export function signNumber(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : x;
}

/**
 * erf for float32: Eigen's rational approximation (the one TensorFlow's float kernel uses),
 * accurate to float32 precision; |x| > 4 is ±1 in float32 anyway.
 */
export function erfFloat32(v: number): number {
  const x = Math.min(4, Math.max(-4, v));
  const x2 = x * x;
  let p = x2 * -2.72614225801306e-10 + 2.77068142495902e-8;
  p = x2 * p - 2.10102402082508e-6;
  p = x2 * p - 5.69250639462346e-5;
  p = x2 * p - 7.34990630326855e-4;
  p = x2 * p - 2.95459980854025e-3;
  p = x2 * p - 1.60960333262415e-2;
  let q = x2 * -1.45660718464996e-5 - 2.13374055278905e-4;
  q = x2 * q - 1.68282697438203e-3;
  q = x2 * q - 7.37332916720468e-3;
  q = x2 * q - 1.42647390514189e-2;
  return (x * p) / q;
}

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/**
 * erf for float64, to about 1e-15: a positive-term series below 3 (no cancellation), and
 * 1 - erfc from its continued fraction between 3 and 6; beyond 6 erf is ±1 in double.
 */
export function erfFloat64(x: number): number {
  if (x !== x) return x;
  const ax = Math.abs(x);
  let r: number;
  if (ax >= 6) {
    r = 1;
  } else if (ax < 3) {
    // erf(x) = 2/√π e^{-x²} Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))
    const x2 = 2 * ax * ax;
    let term = ax;
    let sum = ax;
    for (let n = 1; term > sum * 1e-17; n++) {
      term *= x2 / (2 * n + 1);
      sum += term;
    }
    r = TWO_OVER_SQRT_PI * Math.exp(-ax * ax) * sum;
  } else {
    // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up.
    let f = ax;
    for (let n = 80; n >= 1; n--) f = ax + n / 2 / f;
    r = 1 - (ONE_OVER_SQRT_PI * Math.exp(-ax * ax)) / f;
  }
  return x < 0 ? -r : r;
}

/**
 * erfc for float64, to about 1e-15 relative: 1 - erf below 0.5 (no cancellation there), the
 * continued fraction of erfc above (evaluated bottom-up; 3000 terms near 0.5 fall to 30 by 6),
 * 2 - erfc(-x) for negative x; erfc underflows to 0 past about 27.3.
 */
export function erfcFloat64(x: number): number {
  if (x !== x) return x;
  if (x < 0) return 2 - erfcFloat64(-x);
  if (x < 0.5) return 1 - erfFloat64(x);
  if (x > 27.3) return 0;
  // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))).
  const terms = Math.ceil(20 + 400 / (x * x));
  let f = x;
  for (let n = terms; n >= 1; n--) f = x + n / 2 / f;
  return (ONE_OVER_SQRT_PI * Math.exp(-x * x)) / f;
}

/** Byte-string equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
