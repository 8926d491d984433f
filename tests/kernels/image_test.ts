import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { encodeFloat16 } from "../../src/kernels/elementwise.ts";
import { imageKernels } from "../../src/kernels/image.ts";
import { imageWasmSupported, setImageWasmEnabled } from "../../src/kernels/wasm/image.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, attr, compileOp, runOp } from "./harness.ts";

const T = DataType;

/** A [1, h, w, 1] float image from rows. */
const image = (rows: number[][]) =>
  Tensor.float32(rows.flat(), [1, rows.length, rows[0].length, 1]);

function resize(
  op: string,
  x: Tensor,
  size: number[],
  alignCorners = false,
  halfPixel = false,
): Tensor {
  return runOp(imageKernels, op, [x, Tensor.int32(size)], {
    T: attr.type(x.dtype),
    align_corners: attr.bool(alignCorners),
    half_pixel_centers: attr.bool(halfPixel),
  })[0];
}

const bilinear = (x: Tensor, size: number[], ac = false, hp = false) =>
  resize("ResizeBilinear", x, size, ac, hp);
const nearest = (x: Tensor, size: number[], ac = false, hp = false) =>
  resize("ResizeNearestNeighbor", x, size, ac, hp);

const vals = (t: Tensor) => Array.from(t.data as ArrayLike<number>);

function rejects(fn: () => unknown, message: string, code = Code.INVALID_ARGUMENT) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, `not a ServingError: ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.message, message);
    return true;
  });
}

const SQUARE = image([[0, 10], [20, 30]]);

Deno.test("ResizeBilinear: legacy, half-pixel and align-corners coordinates", () => {
  const legacy = bilinear(SQUARE, [4, 4]);
  assert.equal(legacy.dtype, T.DT_FLOAT);
  assert.deepEqual([...legacy.shape], [1, 4, 4, 1]);
  // Sources x · 0.5 = 0, 0.5, 1, 1.5: the last clamps its upper neighbour to the edge.
  assert.deepEqual(vals(legacy), [
    ...[0, 5, 10, 10],
    ...[10, 15, 20, 20],
    ...[20, 25, 30, 30],
    ...[20, 25, 30, 30],
  ]);
  // Sources (x + 0.5) · 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped at both edges.
  assert.deepEqual(vals(bilinear(SQUARE, [4, 4], false, true)), [
    ...[0, 2.5, 7.5, 10],
    ...[5, 7.5, 12.5, 15],
    ...[15, 17.5, 22.5, 25],
    ...[20, 22.5, 27.5, 30],
  ]);
  // Corners aligned: scale (2 - 1) / (3 - 1).
  assert.deepEqual(vals(bilinear(SQUARE, [3, 3], true)), [0, 5, 10, 10, 15, 20, 20, 25, 30]);
  // align_corners with an output of 1 falls back to in / out.
  assert.deepEqual(vals(bilinear(SQUARE, [1, 1], true)), [0]);
  // Downscaling by 2 samples every other pixel (legacy) or between them (half pixel).
  const big = image([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]);
  assert.deepEqual(vals(bilinear(big, [2, 2])), [0, 2, 8, 10]);
  assert.deepEqual(vals(bilinear(big, [2, 2], false, true)), [2.5, 4.5, 10.5, 12.5]);
  // Non-square sizes.
  assert.deepEqual(vals(bilinear(SQUARE, [1, 4])), [0, 5, 10, 10]);
});

Deno.test("ResizeBilinear: channels, batches, other input types, no-op sizes", () => {
  // Two images of two channels; channel 1 is channel 0 plus 100.
  const data: number[] = [];
  for (const b of [0, 1]) {
    for (const v of [0, 10, 20, 30]) data.push(v + 1000 * b, v + 1000 * b + 100);
  }
  const x = Tensor.float32(data, [2, 2, 2, 2]);
  const y = bilinear(x, [3, 3], true);
  assert.deepEqual([...y.shape], [2, 3, 3, 2]);
  const expect = [0, 5, 10, 10, 15, 20, 20, 25, 30];
  const want: number[] = [];
  for (const b of [0, 1]) for (const v of expect) want.push(v + 1000 * b, v + 1000 * b + 100);
  assert.deepEqual(vals(y), want);
  // Three channels (TensorFlow's vectorised path) give the same per-channel answer.
  const rgb = Tensor.float32([0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32], [1, 2, 2, 3]);
  const r3 = vals(bilinear(rgb, [4, 4], false, true));
  const r1 = vals(bilinear(SQUARE, [4, 4], false, true));
  assert.deepEqual(r3.filter((_, i) => i % 3 === 0), r1);
  assert.deepEqual(r3.filter((_, i) => i % 3 === 2), r1.map((v) => v + 2));
  // Integer, uint8, double and half inputs all give float32.
  for (const dtype of [T.DT_INT32, T.DT_UINT8, T.DT_INT64, T.DT_DOUBLE]) {
    const t = Tensor.zeros(dtype, [1, 2, 2, 1]);
    const d = t.data as Int32Array | BigInt64Array;
    [0, 10, 20, 30].forEach((v, i) => (d[i] = (typeof d[0] === "bigint" ? BigInt(v) : v) as never));
    const r = bilinear(t, [4, 4]);
    assert.equal(r.dtype, T.DT_FLOAT, `${dtype}`);
    assert.deepEqual(vals(r), vals(legacyOf()), `${dtype}`);
  }
  const half = new Tensor(T.DT_HALF, [1, 2, 2, 1], encodeFloat16([0, 10, 20, 30], T.DT_HALF));
  assert.deepEqual(vals(bilinear(half, [4, 4])), vals(legacyOf()));
  // Same size: a cast to float.
  const same = bilinear(Tensor.int32([1, 2, 3, 4], [1, 2, 2, 1]), [2, 2]);
  assert.equal(same.dtype, T.DT_FLOAT);
  assert.deepEqual(vals(same), [1, 2, 3, 4]);
  // An empty batch.
  assert.deepEqual([...bilinear(Tensor.float32([], [0, 2, 2, 1]), [3, 3]).shape], [0, 3, 3, 1]);
});

function legacyOf(): Tensor {
  return bilinear(SQUARE, [4, 4]);
}

Deno.test("ResizeBilinear computes in float32 as TensorFlow", () => {
  // 3 → 7 with half-pixel centres: scale 3/7 and every lerp rounded to float32.
  const x = image([[0.1, 0.7, 0.3]]);
  const y = vals(bilinear(x, [1, 7], false, true));
  const f = Math.fround;
  const scale = f(3 / 7);
  const px = [f(0.1), f(0.7), f(0.3)];
  const want = Array.from({ length: 7 }, (_, i) => {
    const src = f(f((i + 0.5) * scale) - 0.5);
    const lo = Math.max(Math.floor(src), 0);
    const hi = Math.min(Math.ceil(src), 2);
    const l = src - Math.floor(src);
    return f(px[lo] + f(f(px[hi] - px[lo]) * l));
  });
  assert.deepEqual(y, want);
  assertClose(y, [0.1, 0.1857143, 0.4428571, 0.7, 0.5285714, 0.3571429, 0.3], 1e-6);
});

Deno.test("ResizeNearestNeighbor: floor, round and half-pixel sources; input type kept", () => {
  assert.deepEqual(vals(nearest(SQUARE, [4, 4])), [
    ...[0, 0, 10, 10],
    ...[0, 0, 10, 10],
    ...[20, 20, 30, 30],
    ...[20, 20, 30, 30],
  ]);
  const row = image([[0, 10]]);
  // x · 2/3 floored: 0, 0, 1.
  assert.deepEqual(vals(nearest(row, [1, 3])), [0, 0, 10]);
  // Corners aligned: x · 1/2 rounded half away from zero: 0, 1, 1.
  assert.deepEqual(vals(nearest(row, [1, 3], true)), [0, 10, 10]);
  // Half pixel: (x + 0.5) · 2/3 floored: 0, 1, 1.
  assert.deepEqual(vals(nearest(row, [1, 3], false, true)), [0, 10, 10]);
  const wide = image([[0, 1, 2, 3]]);
  assert.deepEqual(vals(nearest(wide, [1, 2])), [0, 2]);
  assert.deepEqual(vals(nearest(wide, [1, 2], false, true)), [1, 3]);
  const ints = nearest(Tensor.int32([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]), [2, 4]);
  assert.equal(ints.dtype, T.DT_INT32);
  assert.deepEqual([...ints.shape], [1, 2, 4, 3]);
  assert.deepEqual(vals(ints), [
    1,
    2,
    3,
    1,
    2,
    3,
    4,
    5,
    6,
    4,
    5,
    6,
    1,
    2,
    3,
    1,
    2,
    3,
    4,
    5,
    6,
    4,
    5,
    6,
  ]);
  const big = nearest(Tensor.int64([7, 8], [1, 1, 2, 1]), [1, 4]);
  assert.deepEqual(Array.from(big.data as BigInt64Array), [7n, 7n, 8n, 8n]);
  rejects(
    () => nearest(Tensor.float32([], [0, 1, 1 << 24, 1]), [1, 1]),
    "nearest neighbor requires max height & width of 2^24",
  );
});

Deno.test("resize errors as TensorFlow words them", () => {
  for (const op of ["ResizeBilinear", "ResizeNearestNeighbor"]) {
    rejects(
      () => resize(op, SQUARE, [3, 3], true, true),
      "If half_pixel_centers is True, align_corners must be False.",
    );
    rejects(
      () => resize(op, Tensor.float32([1, 2, 3, 4], [2, 2, 1]), [3, 3]),
      "input must be 4-dimensional[2,2,1]",
    );
    rejects(
      () => resize(op, Tensor.float32([], [1, 2, 2, 0]), [3, 3]),
      "image must have at least one channel",
    );
    rejects(
      () => resize(op, Tensor.float32([], [1, 0, 2, 1]), [3, 3]),
      "input image must be of non-zero size",
    );
    rejects(() => resize(op, SQUARE, [3]), "shape_t must have two elements[1]");
    rejects(() => resize(op, SQUARE, [3, 0]), "output dimensions must be positive");
    rejects(
      () =>
        runOp(imageKernels, op, [SQUARE, Tensor.int32([3, 3], [1, 2])], {
          align_corners: attr.bool(false),
        }),
      "shape_t must be 1-dimensional[1,2]",
    );
    assert.throws(
      () => compileOp(imageKernels, op, { T: attr.type(T.DT_STRING) }),
      (e: unknown) => e instanceof ServingError && e.code === Code.UNIMPLEMENTED,
    );
  }
});

Deno.test("resize refuses an output over the tensor size limit before allocating", () => {
  for (const op of ["ResizeBilinear", "ResizeNearestNeighbor"]) {
    assert.throws(
      () => resize(op, SQUARE, [1 << 30, 1 << 30]),
      (e: unknown) =>
        e instanceof ServingError && e.code === Code.RESOURCE_EXHAUSTED &&
        e.message.includes(`${op} output`),
    );
  }
});

/**
 * ResizeBilinear written out per output element from TensorFlow's formulas
 * (resize_bilinear_op.cc: compute_interpolation_weights, compute_lerp), float32 throughout.
 */
function referenceBilinear(x: Tensor, outH: number, outW: number, ac: boolean, hp: boolean) {
  const [n, h, w, c] = x.shape;
  const f = Math.fround;
  const scale = (i: number, o: number) => ac && o > 1 ? f((i - 1) / (o - 1)) : f(i / o);
  const sh = scale(h, outH), sw = scale(w, outW);
  const src = (i: number, s: number) => hp ? f(f((i + 0.5) * s) - 0.5) : f(i * s);
  const d = x.data as Float32Array;
  const at = (b: number, yy: number, xx: number, ch: number) => d[((b * h + yy) * w + xx) * c + ch];
  const out = new Float32Array(n * outH * outW * c);
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outH; oy++) {
      const sy = src(oy, sh);
      const y0 = Math.max(Math.floor(sy), 0), y1 = Math.min(Math.ceil(sy), h - 1);
      const yl = f(sy - Math.floor(sy));
      for (let ox = 0; ox < outW; ox++) {
        const sx = src(ox, sw);
        const x0 = Math.max(Math.floor(sx), 0), x1 = Math.min(Math.ceil(sx), w - 1);
        const xl = f(sx - Math.floor(sx));
        for (let ch = 0; ch < c; ch++) {
          const tl = at(b, y0, x0, ch), tr = at(b, y0, x1, ch);
          const bl = at(b, y1, x0, ch), br = at(b, y1, x1, ch);
          const top = f(tl + f(f(tr - tl) * xl));
          const bottom = f(bl + f(f(br - bl) * xl));
          out[o++] = f(top + f(f(bottom - top) * yl));
        }
      }
    }
  }
  return out;
}

Deno.test("ResizeBilinear (WebAssembly and JavaScript) equals the reference on random shapes", () => {
  let seed = 7;
  const rand = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  assert.ok(imageWasmSupported, "Deno runs WebAssembly SIMD");
  const was = setImageWasmEnabled(true);
  try {
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + rand(3), h = 1 + rand(9), w = 1 + rand(9);
      const c = [1, 3, 4, 5, 8, 13, 16][rand(7)];
      const outH = 1 + rand(17), outW = 1 + rand(17);
      const mode = rand(3); // legacy, align_corners, half_pixel_centers
      const ac = mode === 1, hp = mode === 2;
      const len = n * h * w * c;
      const x = Tensor.float32(
        Array.from({ length: len }, () => (rand(20001) - 10000) / 997),
        [n, h, w, c],
      );
      const want = referenceBilinear(x, outH, outW, ac, hp);
      const what = `[${n},${h},${w},${c}] → ${outH}×${outW} mode ${mode}`;
      setImageWasmEnabled(true);
      const fast = bilinear(x, [outH, outW], ac, hp);
      setImageWasmEnabled(false);
      const js = bilinear(x, [outH, outW], ac, hp);
      assert.deepEqual([...fast.shape], [n, outH, outW, c], what);
      if (outH === h && outW === w) continue; // a copy: no interpolation
      assert.deepEqual(fast.data, want, `WebAssembly ${what}`);
      assert.deepEqual(js.data, want, `JavaScript ${what}`);
    }
  } finally {
    setImageWasmEnabled(was);
  }
});
