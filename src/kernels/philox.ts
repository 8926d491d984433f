/**
 * TensorFlow's random number generation: the Philox4x32-10 counter-based generator
 * (`core/lib/random/philox_random.h`) and the distributions its random kernels draw from
 * (`random_distributions.h`, `random_distributions_utils.h`), laid out over the output the way
 * the CPU kernels lay them (`core/kernels/random_op_cpu.h`, FillPhiloxRandom):
 *
 * - uniform float: the low 23 bits of one 32-bit sample as a mantissa, [1, 2) − 1 (exact);
 *   double: 20 + 32 bits of two samples; half: 10 bits; bfloat16: 7 bits;
 * - uniform int: lo + sample mod (hi − lo) (one 32-bit sample, or two for int64);
 * - normal: Box-Muller on pairs of samples (float: sample 0 → u1 clamped to 1e-7, sample 1 →
 *   angle; double: four samples); four floats (two doubles) per 128-bit draw;
 * - truncated normal: Box-Muller pairs, keeping values with |x| < 2; output group g of 4 values
 *   (double: 2) starts 256 · g (double: 128 · g) draws in, so the result does not depend on how
 *   the work is sharded.
 *
 * Fixed-sample distributions take output group g (4 values; 2 for double and int64) from the
 * generator advanced by g draws. So uniform ints and floats are TensorFlow's bit for bit. The
 * normal distributions call log, sqrt, sin and cos: this port evaluates them in double precision
 * and rounds once to float (correctly rounded), where TensorFlow's Linux build calls glibc's
 * `logf` and `sincosf` (errors below one ulp, with FMA and non-FMA variants chosen by CPU), so a
 * normal value may differ from TensorFlow's in the last place — as TensorFlow's own values may
 * between machines.
 *
 * @module
 */

const M_A = 0xd2511f53;
const M_B = 0xcd9e8d57;
const W_A = 0x9e3779b9;
const W_B = 0xbb67ae85;

/** The high 32 bits of the 64-bit product of two uint32s. */
function mulhi(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16;
  const bLo = b & 0xffff, bHi = b >>> 16;
  const ll = aLo * bLo;
  const hl = aHi * bLo;
  const lh = aLo * bHi;
  const cross = (ll >>> 16) + (hl & 0xffff) + lh; // < 2^33: exact
  return (aHi * bHi + (hl >>> 16) + Math.floor(cross / 65536)) >>> 0;
}

/** Adds one to the 128-bit counter from word `from` up, carrying (words wrap at 2^32). */
function increment(c: Uint32Array, from: number): void {
  for (let i = from; i < 4; i++) {
    c[i] = c[i] + 1; // stored mod 2^32
    if (c[i] !== 0) return;
  }
}

/** A Philox4x32-10 generator state: a 128-bit counter and a 64-bit key (value semantics). */
export class Philox {
  /**
   * @param counter four uint32 words, least significant first
   * @param key two uint32 words
   */
  constructor(
    readonly counter: Uint32Array = new Uint32Array(4),
    readonly key: Uint32Array = new Uint32Array(2),
  ) {}

  /** PhiloxRandom(seed_lo, seed_hi): the key from `seed`, counter words 2–3 from `seed2`. */
  static fromSeeds(seed: bigint, seed2: bigint): Philox {
    const s = BigInt.asUintN(64, seed);
    const s2 = BigInt.asUintN(64, seed2);
    return new Philox(
      Uint32Array.of(0, 0, Number(s2 & 0xffffffffn), Number(s2 >> 32n)),
      Uint32Array.of(Number(s & 0xffffffffn), Number(s >> 32n)),
    );
  }

  /** A copy (the generator is a value in TensorFlow). */
  clone(): Philox {
    return new Philox(this.counter.slice(), this.key.slice());
  }

  /** Skips `count` 128-bit draws (count < 2^53). */
  skip(count: number): void {
    const c = this.counter;
    const lo = count % 4294967296;
    let hi = Math.floor(count / 4294967296);
    const c0 = c[0] + lo;
    c[0] = c0;
    if (c0 >= 4294967296) hi++;
    const c1 = c[1] + hi;
    c[1] = c1;
    if (c1 >= 4294967296) increment(c, 2);
  }

  /** The next 128 bits as four uint32 words (into `out`), advancing the counter by one. */
  next(out: Uint32Array = new Uint32Array(4)): Uint32Array {
    let c0 = this.counter[0], c1 = this.counter[1], c2 = this.counter[2], c3 = this.counter[3];
    let k0 = this.key[0], k1 = this.key[1];
    for (let round = 0; round < 10; round++) {
      if (round > 0) {
        k0 = (k0 + W_A) >>> 0;
        k1 = (k1 + W_B) >>> 0;
      }
      const hi0 = mulhi(M_A, c0), lo0 = Math.imul(M_A, c0) >>> 0;
      const hi1 = mulhi(M_B, c2), lo1 = Math.imul(M_B, c2) >>> 0;
      c0 = (hi1 ^ c1 ^ k0) >>> 0;
      c1 = lo1;
      c2 = (hi0 ^ c3 ^ k1) >>> 0;
      c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
    increment(this.counter, 0);
    return out;
  }
}

const fround = Math.fround;
const FLOAT_EPSILON = fround(1e-7);

/** Uint32ToFloat: 23 random mantissa bits as a float in [0, 1) (exact). */
export function uint32ToFloat(x: number): number {
  return (x & 0x7fffff) / 8388608;
}

/** Uint64ToDouble: 52 random mantissa bits (20 from `x0`, 32 from `x1`) in [0, 1). */
export function uint64ToDouble(x0: number, x1: number): number {
  return ((x0 & 0xfffff) * 4294967296 + x1) / 4503599627370496;
}

/** BoxMullerFloat: two float32 normals from two samples. */
export function boxMullerFloat(x0: number, x1: number, out: number[], at: number): void {
  let u1 = uint32ToFloat(x0);
  if (u1 < FLOAT_EPSILON) u1 = FLOAT_EPSILON;
  // 2.0f * M_PI is a double, so the angle is computed in double and stored as float.
  const v1 = fround(2 * Math.PI * uint32ToFloat(x1));
  const u2 = fround(Math.sqrt(fround(-2 * fround(Math.log(u1)))));
  out[at] = fround(fround(Math.sin(v1)) * u2);
  out[at + 1] = fround(fround(Math.cos(v1)) * u2);
}

/** BoxMullerDouble: two double normals from four samples. */
export function boxMullerDouble(
  x0: number,
  x1: number,
  x2: number,
  x3: number,
  out: number[],
  at: number,
): void {
  let u1 = uint64ToDouble(x0, x1);
  if (u1 < 1e-7) u1 = 1e-7;
  const v1 = 2 * Math.PI * uint64ToDouble(x2, x3);
  const u2 = Math.sqrt(-2 * Math.log(u1));
  out[at] = Math.sin(v1) * u2;
  out[at + 1] = Math.cos(v1) * u2;
}

/**
 * One distribution: how many outputs one group holds and how to compute a group from the
 * generator (fixed) or from a single-sample stream (variable, truncated normal).
 */
export interface Distribution {
  /** Outputs per group. */
  readonly group: number;
  /** True for distributions that take a variable number of samples (SingleSampleAdapter). */
  readonly variable: boolean;
  /** Computes one group into `out[0 … group)`, advancing `gen` by the draws it takes. */
  sample(gen: Philox, out: number[] | bigint[]): void;
}

/** The SingleSampleAdapter: one uint32 at a time from a Philox generator. */
class SingleSample {
  readonly #buf = new Uint32Array(4);
  #used = 4;
  constructor(readonly gen: Philox) {}
  next(): number {
    if (this.#used === 4) {
      this.gen.next(this.#buf);
      this.#used = 0;
    }
    return this.#buf[this.#used++];
  }
}

const scratch = new Uint32Array(4);

/** The element kinds the distributions produce. */
export type RealKind = "float" | "double" | "half" | "bfloat16";

/** UniformDistribution<PhiloxRandom, T> for a floating type (values as numbers). */
export function uniformReal(kind: RealKind): Distribution {
  if (kind === "double") {
    return {
      group: 2,
      variable: false,
      sample(gen, out) {
        const s = gen.next(scratch);
        out[0] = uint64ToDouble(s[0], s[1]);
        out[1] = uint64ToDouble(s[2], s[3]);
      },
    };
  }
  // half: 10 mantissa bits; bfloat16: 7; float: 23 (each exact in its type).
  const bits = kind === "half" ? 1024 : kind === "bfloat16" ? 128 : 8388608;
  return {
    group: 4,
    variable: false,
    sample(gen, out) {
      const s = gen.next(scratch);
      for (let i = 0; i < 4; i++) out[i] = (s[i] & (bits - 1)) / bits;
    },
  };
}

/** UniformDistribution<PhiloxRandom, int32>(lo, hi): lo + sample mod (hi − lo). */
export function uniformInt32(lo: number, hi: number): Distribution {
  const range = (hi - lo) >>> 0;
  return {
    group: 4,
    variable: false,
    sample(gen, out) {
      const s = gen.next(scratch);
      for (let i = 0; i < 4; i++) out[i] = (lo + (s[i] % range)) | 0;
    },
  };
}

/** UniformDistribution<PhiloxRandom, int64>(lo, hi), two samples per value. */
export function uniformInt64(lo: bigint, hi: bigint): Distribution {
  const range = BigInt.asUintN(64, hi - lo);
  return {
    group: 2,
    variable: false,
    sample(gen, out) {
      const s = gen.next(scratch);
      for (let i = 0; i < 2; i++) {
        const bits = BigInt(s[2 * i]) | (BigInt(s[2 * i + 1]) << 32n);
        (out as bigint[])[i] = BigInt.asIntN(64, lo + bits % range);
      }
    },
  };
}

/** NormalDistribution<PhiloxRandom, T>. Half and bfloat16 use the float transform. */
export function normal(kind: RealKind): Distribution {
  if (kind === "double") {
    return {
      group: 2,
      variable: false,
      sample(gen, out) {
        const s = gen.next(scratch);
        boxMullerDouble(s[0], s[1], s[2], s[3], out as number[], 0);
      },
    };
  }
  return {
    group: 4,
    variable: false,
    sample(gen, out) {
      const s = gen.next(scratch);
      boxMullerFloat(s[0], s[1], out as number[], 0);
      boxMullerFloat(s[2], s[3], out as number[], 2);
    },
  };
}

/** TruncatedNormalDistribution<SingleSampleAdapter<PhiloxRandom>, T>: keeps |x| < 2. */
export function truncatedNormal(kind: RealKind): Distribution {
  const double = kind === "double";
  const group = double ? 2 : 4;
  const pair = [0, 0];
  return {
    group,
    variable: true,
    sample(gen, out) {
      const single = new SingleSample(gen);
      let index = 0;
      for (;;) {
        if (double) {
          const x0 = single.next(), x1 = single.next(), x2 = single.next(), x3 = single.next();
          boxMullerDouble(x0, x1, x2, x3, pair, 0);
        } else {
          const x0 = single.next(), x1 = single.next();
          boxMullerFloat(x0, x1, pair, 0);
        }
        for (const v of pair) {
          if (Math.abs(v) < 2) {
            (out as number[])[index++] = v;
            if (index >= group) return;
          }
        }
      }
    },
  };
}

/** Draws FillPhiloxRandomTask reserves per output for variable-sample distributions. */
const RESERVED_SAMPLES_PER_OUTPUT = 256;

/**
 * FillPhiloxRandom: `size` outputs of `dist` from generator state `gen` (not modified),
 * written with `store(i, value)`.
 */
export function fillPhilox(
  gen: Philox,
  size: number,
  dist: Distribution,
  store: (i: number, v: number | bigint) => void,
): void {
  const group = dist.group;
  const out: number[] = new Array(group).fill(0);
  const groups = Math.ceil(size / group);
  if (!dist.variable) {
    const g = gen.clone();
    for (let k = 0; k < groups; k++) {
      dist.sample(g, out);
      const n = Math.min(group, size - k * group);
      for (let i = 0; i < n; i++) store(k * group + i, out[i]);
    }
    return;
  }
  const skipPerGroup = group * RESERVED_SAMPLES_PER_OUTPUT / 4;
  for (let k = 0; k < groups; k++) {
    const g = gen.clone();
    g.skip(k * skipPerGroup);
    dist.sample(g, out);
    const n = Math.min(group, size - k * group);
    for (let i = 0; i < n; i++) store(k * group + i, out[i]);
  }
}

/**
 * GenerateKey of the stateless kernels: scrambles the two seeds through one Philox draw with a
 * fixed key; the draw's words 0–1 become the key and 2–3 the counter's upper half.
 */
export function statelessGenerator(seed0: bigint, seed1: bigint): Philox {
  const s0 = BigInt.asUintN(64, seed0);
  const s1 = BigInt.asUintN(64, seed1);
  const mix = new Philox(
    Uint32Array.of(
      Number(s0 & 0xffffffffn),
      Number(s0 >> 32n),
      Number(s1 & 0xffffffffn),
      Number(s1 >> 32n),
    ),
    Uint32Array.of(0x3ec8f720, 0x02461e29),
  ).next();
  return new Philox(Uint32Array.of(0, 0, mix[2], mix[3]), Uint32Array.of(mix[0], mix[1]));
}
