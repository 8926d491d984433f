/**
 * A seeded generator for the HPACK tests: mulberry32 (32-bit integer steps, period 2^32).
 * tests/random.ts's `lcg` multiplies in floating point past 2^53, so it loses its low bits and
 * falls into a cycle of about 10^4 values whatever the seed, too short for the fuzz rounds here.
 */

/** A generator of values in [0, 1) from `seed`. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
