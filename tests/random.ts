/**
 * Seeded pseudo-random test data shared by the tests (a linear congruential generator: the same
 * seed gives the same values on every run, so a failure reproduces).
 */
import { DataType } from "../src/proto/gen/tensorflow/core/framework/types_pb.ts";
import { Tensor } from "../src/tensor/tensor.ts";

/** A generator of values in [0, 1) from `seed`. */
export function lcg(seed: number): () => number {
  // 32-bit integer arithmetic (Math.imul): the product in floating point would pass 2^53, lose
  // its low bits and fall into a cycle of ~10^4 values.
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 2147483648;
  };
}

/** A float32 tensor of `shape` with values uniform in [-scale, scale), from `seed`. */
export function randomFloats(shape: number[], seed: number, scale = 1): Tensor {
  const next = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
  return new Tensor(DataType.DT_FLOAT, shape, data);
}
