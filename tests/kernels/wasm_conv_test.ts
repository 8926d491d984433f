/**
 * The WebAssembly SIMD convolution kernels (`src/kernels/wasm/conv.ts`) against straightforward
 * float64 reference loops on randomized shapes: odd sizes, every padding mode, strides,
 * dilations, batch > 1, channel counts that are not multiples of 4 or 8, every epilogue; both
 * the relaxed-SIMD and the plain-SIMD build; and through the Conv2D / DepthwiseConv2dNative /
 * fused kernels, including the cases that stay in JavaScript (channel multipliers, groups).
 *
 * @module
 */
import assert from "node:assert/strict";
import { activationKernels } from "../../src/kernels/activation.ts";
import { batchNormKernels } from "../../src/kernels/batch_norm.ts";
import { biasAddKernels } from "../../src/kernels/bias_add.ts";
import { convKernels } from "../../src/kernels/conv.ts";
import { convBackpropKernels } from "../../src/kernels/conv_backprop.ts";
import { fusedMatMulKernels } from "../../src/kernels/fused_matmul.ts";
import { poolingKernels } from "../../src/kernels/pooling.ts";
import {
  conv2dF32,
  convWasmRelaxed,
  convWasmSupported,
  depthwiseF32,
  matmulF32,
  setConvWasmEnabled,
  useRelaxedConvWasm,
  WasmAct,
} from "../../src/kernels/wasm/conv.ts";
import { type Geometry, windowedOutputSize } from "../../src/kernels/window.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, runOp } from "./harness.ts";
import { isKernelView } from "../../src/kernels/wasm/float_store.ts";
import { activateArena, Arena, setFloatStore } from "../../src/tensor/arena.ts";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";

/** Every neural-network family, as one list. */
const nnKernels = [
  ...activationKernels,
  ...biasAddKernels,
  ...fusedMatMulKernels,
  ...convKernels,
  ...convBackpropKernels,
  ...poolingKernels,
  ...batchNormKernels,
];

/** mulberry32: a small seeded generator, so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randArray(r: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** The reference: float64 sums, and the sums of |terms| for the tolerance. */
interface Ref {
  y: Float64Array;
  mag: Float64Array;
}

function act(v: number, a: WasmAct): number {
  return a === WasmAct.Relu
    ? Math.max(v, 0)
    : a === WasmAct.Relu6
    ? Math.min(Math.max(v, 0), 6)
    : v;
}

/** Direct convolution: NHWC x, HWIO (or depthwise [fh, fw, c, 1]) filter. */
function refConv(
  x: Float32Array,
  f: Float32Array,
  b: Float32Array | null,
  side: Float32Array | null,
  g: Geometry,
  depthwise: boolean,
  a: WasmAct,
): Ref {
  const y = new Float64Array(g.batch * g.outH * g.outW * g.outC);
  const mag = new Float64Array(y.length);
  for (let n = 0; n < g.batch; n++) {
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++) {
        for (let o = 0; o < g.outC; o++) {
          let s = b === null ? 0 : b[o], m = Math.abs(s);
          for (let fy = 0; fy < g.fh; fy++) {
            for (let fx = 0; fx < g.fw; fx++) {
              const iy = oy * g.sh - g.padTop + fy * g.dh;
              const ix = ox * g.sw - g.padLeft + fx * g.dw;
              if (iy < 0 || iy >= g.inH || ix < 0 || ix >= g.inW) continue;
              const xo = ((n * g.inH + iy) * g.inW + ix) * g.inC;
              if (depthwise) {
                const t = x[xo + o] * f[(fy * g.fw + fx) * g.inC + o];
                s += t;
                m += Math.abs(t);
              } else {
                for (let c = 0; c < g.inC; c++) {
                  const t = x[xo + c] * f[((fy * g.fw + fx) * g.inC + c) * g.outC + o];
                  s += t;
                  m += Math.abs(t);
                }
              }
            }
          }
          const i = ((n * g.outH + oy) * g.outW + ox) * g.outC + o;
          if (side !== null) {
            s += side[i];
            m += Math.abs(side[i]);
          }
          y[i] = act(s, a);
          mag[i] = m;
        }
      }
    }
  }
  return { y, mag };
}

/** float32 accumulation: within a few ulps of the terms' magnitude (k ≤ a few hundred). */
function assertNear(got: Float32Array | null, want: Ref, what: string): void {
  assert.ok(got !== null, `${what}: the kernel declined`);
  assert.equal(got.length, want.y.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const tol = 1e-6 + 2e-6 * want.mag[i];
    if (!(Math.abs(got[i] - want.y[i]) <= tol)) {
      assert.fail(`${what}: at ${i} got ${got[i]}, want ${want.y[i]} (tol ${tol})`);
    }
  }
}

/** A random geometry; padding as SAME, VALID or explicit amounts, resolved as TensorFlow does. */
function randomGeometry(r: () => number, depthwise: boolean): Geometry {
  const batch = int(r, 1, 3);
  const inH = int(r, 1, 11), inW = int(r, 1, 11), inC = int(r, 1, 21);
  const fh = int(r, 1, 4), fw = int(r, 1, 4);
  const sh = int(r, 1, 3), sw = int(r, 1, 3), dh = int(r, 1, 2), dw = int(r, 1, 2);
  const mode = (["SAME", "VALID", "EXPLICIT"] as const)[int(r, 0, 2)];
  const pads = [int(r, 0, 2), int(r, 0, 2), int(r, 0, 2), int(r, 0, 2)];
  let outH: number, padTop: number, outW: number, padLeft: number;
  try {
    [outH, padTop] = windowedOutputSize(inH, fh, dh, sh, mode, pads[0], pads[1]);
    [outW, padLeft] = windowedOutputSize(inW, fw, dw, sw, mode, pads[2], pads[3]);
  } catch {
    return randomGeometry(r, depthwise); // a window larger than a VALID input: draw again
  }
  const outC = depthwise ? inC : int(r, 1, 37);
  return { batch, inH, inW, inC, fh, fw, outH, outW, outC, sh, sw, dh, dw, padTop, padLeft };
}

const builds = convWasmRelaxed ? [true, false] : [false];

Deno.test({
  name: "conv2dF32 matches direct convolution on random shapes (both SIMD builds)",
  ignore: !convWasmSupported,
  fn() {
    for (const relaxed of builds) {
      useRelaxedConvWasm(relaxed);
      const r = rng(relaxed ? 11 : 12);
      for (let t = 0; t < 150; t++) {
        const g = randomGeometry(r, false);
        const x = randArray(r, g.batch * g.inH * g.inW * g.inC);
        const f = randArray(r, g.fh * g.fw * g.inC * g.outC);
        const b = r() < 0.8 ? randArray(r, g.outC) : null;
        const side = r() < 0.3 ? randArray(r, g.batch * g.outH * g.outW * g.outC) : null;
        const a = int(r, 0, 2) as WasmAct;
        const got = conv2dF32(x, f, b, side, g, a);
        assertNear(
          got,
          refConv(x, f, b, side, g, false, a),
          `relaxed=${relaxed} ${JSON.stringify(g)}`,
        );
      }
    }
    useRelaxedConvWasm(true);
  },
});

Deno.test({
  name: "conv2dF32: 1×1 convolutions over the input directly, and wide layers",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(5);
    for (const [h, w, c, o, batch] of [[7, 5, 24, 144, 2], [3, 3, 130, 9, 1], [9, 9, 8, 8, 3]]) {
      const g: Geometry = {
        batch,
        inH: h,
        inW: w,
        inC: c,
        fh: 1,
        fw: 1,
        outH: h,
        outW: w,
        outC: o,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        padTop: 0,
        padLeft: 0,
      };
      const x = randArray(r, batch * h * w * c), f = randArray(r, c * o), b = randArray(r, o);
      assertNear(
        conv2dF32(x, f, b, null, g, WasmAct.Relu6),
        refConv(x, f, b, null, g, false, WasmAct.Relu6),
        `1x1 ${h}x${w}x${c}->${o}`,
      );
    }
  },
});

Deno.test({
  name: "depthwiseF32 matches direct depthwise convolution on random shapes (both builds)",
  ignore: !convWasmSupported,
  fn() {
    for (const relaxed of builds) {
      useRelaxedConvWasm(relaxed);
      const r = rng(relaxed ? 21 : 22);
      for (let t = 0; t < 150; t++) {
        const g = randomGeometry(r, true);
        const x = randArray(r, g.batch * g.inH * g.inW * g.inC);
        const f = randArray(r, g.fh * g.fw * g.inC);
        const b = r() < 0.8 ? randArray(r, g.inC) : null;
        const a = int(r, 0, 2) as WasmAct;
        assertNear(
          depthwiseF32(x, f, b, g, a),
          refConv(x, f, b, null, g, true, a),
          `relaxed=${relaxed} ${JSON.stringify(g)}`,
        );
      }
    }
    useRelaxedConvWasm(true);
  },
});

Deno.test({
  name:
    "depthwiseF32 3×3 and fh×5 (rows of interior columns at a time), random shapes, both builds",
  ignore: !convWasmSupported,
  fn() {
    const hs = { scale: Math.fround(1 / 6), offset: 3 };
    const f32 = Math.fround;
    const epilogue = (v: number, a: WasmAct) =>
      a === WasmAct.HardSwish
        ? f32(f32(v * hs.scale) * Math.min(Math.max(f32(v + hs.offset), 0), 6))
        : act(v, a);
    for (const relaxed of builds) {
      useRelaxedConvWasm(relaxed);
      const r = rng(relaxed ? 23 : 24);
      for (let t = 0; t < 100; t++) {
        // Wide rows (chunks of 8 columns, pairs and a last single column), every padding.
        const fw = r() < 0.5 ? 3 : 5, fh = fw === 3 ? 3 : int(r, 1, 5);
        const inH = int(r, 1, 11), inW = int(r, 1, 31), c = int(r, 1, 13);
        const sh = int(r, 1, 2), sw = int(r, 1, 2), dh = int(r, 1, 2), dw = int(r, 1, 2);
        const mode = (["SAME", "VALID", "EXPLICIT"] as const)[int(r, 0, 2)];
        const pads = [int(r, 0, 2), int(r, 0, 2), int(r, 0, 2), int(r, 0, 2)];
        let outH: number, padTop: number, outW: number, padLeft: number;
        try {
          [outH, padTop] = windowedOutputSize(inH, fh, dh, sh, mode, pads[0], pads[1]);
          [outW, padLeft] = windowedOutputSize(inW, fw, dw, sw, mode, pads[2], pads[3]);
        } catch {
          continue; // the window is larger than a VALID input
        }
        const batch = int(r, 1, 2);
        const g: Geometry = {
          batch,
          inH,
          inW,
          inC: c,
          fh,
          fw,
          outH,
          outW,
          outC: c,
          sh,
          sw,
          dh,
          dw,
          padTop,
          padLeft,
        };
        const x = randArray(r, batch * inH * inW * c).map((v) => v * 4);
        const f = randArray(r, fh * fw * c), b = randArray(r, c);
        const what = `relaxed=${relaxed} ${JSON.stringify(g)}`;
        const plain = depthwiseF32(x, f, b, g, WasmAct.None);
        assertNear(plain, refConv(x, f, b, null, g, true, WasmAct.None), what);
        const a = int(r, 1, 3) as WasmAct;
        const side = r() < 0.5 ? randArray(r, plain!.length) : null;
        const got = depthwiseF32(x, f, b, g, a, a === WasmAct.HardSwish ? hs : null, side);
        assert.ok(got !== null);
        for (let i = 0; i < got.length; i++) {
          const want = side === null
            ? epilogue(plain![i], a)
            : f32(epilogue(plain![i], a) + side[i]);
          if (got[i] !== want) assert.fail(`${what} act ${a}: at ${i} got ${got[i]}, want ${want}`);
        }
      }
    }
    useRelaxedConvWasm(true);
  },
});

Deno.test({
  name:
    "depthwiseF32 sums bias then the taps in (fy, fx) order in float32: every path, both builds, exactly",
  ignore: !convWasmSupported,
  fn() {
    const f32 = Math.fround;
    const hs = { scale: f32(1 / 6), offset: 3 };
    for (const relaxed of builds) {
      const fusedBuild = useRelaxedConvWasm(relaxed);
      const r = rng(relaxed ? 41 : 42);
      for (let t = 0; t < 70; t++) {
        // 5 and 3 columns wide, channels in groups of 16 and of 4, odd and even runs of columns.
        const fw = [3, 5, 5][int(r, 0, 2)], fh = fw === 3 && r() < 0.5 ? 3 : int(r, 1, 5);
        const inH = int(r, 1, 12), inW = int(r, 1, 26);
        const c = [1, 3, 4, 8, 13, 16, 20, 24, 36, 50][int(r, 0, 9)];
        const sh = int(r, 1, 2), sw = int(r, 1, 2), dh = int(r, 1, 2), dw = int(r, 1, 2);
        const mode = (["SAME", "VALID"] as const)[int(r, 0, 1)];
        let outH: number, padTop: number, outW: number, padLeft: number;
        try {
          [outH, padTop] = windowedOutputSize(inH, fh, dh, sh, mode, 0, 0);
          [outW, padLeft] = windowedOutputSize(inW, fw, dw, sw, mode, 0, 0);
        } catch {
          continue;
        }
        const g: Geometry = {
          batch: 1,
          inH,
          inW,
          inC: c,
          fh,
          fw,
          outH,
          outW,
          outC: c,
          sh,
          sw,
          dh,
          dw,
          padTop,
          padLeft,
        };
        const x = randArray(r, inH * inW * c).map((v) => v * 4);
        const f = randArray(r, fh * fw * c), b = randArray(r, c);
        const a = int(r, 0, 3) as WasmAct;
        const side = r() < 0.5 ? randArray(r, outH * outW * c) : null;
        const got = depthwiseF32(x, f, b, g, a, a === WasmAct.HardSwish ? hs : null, side);
        assert.ok(got !== null);
        // Sequential float32 sums, each step one rounding (fused) or two (unfused).
        const reference = (fused: boolean) => {
          const y = new Float32Array(outH * outW * c);
          for (let oy = 0; oy < outH; oy++) {
            for (let ox = 0; ox < outW; ox++) {
              for (let ch = 0; ch < c; ch++) {
                let acc = b[ch];
                for (let fy = 0; fy < fh; fy++) {
                  const iy = oy * sh - padTop + fy * dh;
                  if (iy < 0 || iy >= inH) continue;
                  for (let fx = 0; fx < fw; fx++) {
                    const ix = ox * sw - padLeft + fx * dw;
                    if (ix < 0 || ix >= inW) continue;
                    const p = x[(iy * inW + ix) * c + ch] * f[(fy * fw + fx) * c + ch];
                    acc = fused ? f32(acc + p) : f32(acc + f32(p));
                  }
                }
                let v = a === WasmAct.HardSwish
                  ? f32(f32(acc * hs.scale) * Math.min(Math.max(f32(acc + hs.offset), 0), 6))
                  : act(acc, a);
                const o = (oy * outW + ox) * c + ch;
                if (side !== null) v = f32(v + side[o]);
                y[o] = v;
              }
            }
          }
          return y;
        };
        const what = `relaxed=${relaxed} act ${a} ${JSON.stringify(g)}`;
        const same = (want: Float32Array) => want.every((v, i) => Object.is(v, got[i]));
        const plainRef = reference(false);
        if (!fusedBuild) {
          const at = plainRef.findIndex((v, i) => !Object.is(v, got[i]));
          assert.equal(at, -1, `${what}: at ${at} got ${got[at]}, want ${plainRef[at]}`);
        } else {
          // relaxed_madd may be fused or not, but the same everywhere in one run.
          assert.ok(same(reference(true)) || same(plainRef), what);
        }
      }
    }
    useRelaxedConvWasm(true);
  },
});

Deno.test({
  name: "matmulF32 matches a float64 product, W as [k, n] and as [n, k]",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(31);
    for (let t = 0; t < 60; t++) {
      const m = int(r, 1, 13), k = int(r, 1, 70), n = int(r, 1, 40);
      const transB = r() < 0.5;
      const a = randArray(r, m * k), w = randArray(r, k * n), b = randArray(r, n);
      const y = new Float64Array(m * n), mag = new Float64Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = b[j], mm = Math.abs(b[j]);
          for (let kk = 0; kk < k; kk++) {
            const v = a[i * k + kk] * (transB ? w[j * k + kk] : w[kk * n + j]);
            s += v;
            mm += Math.abs(v);
          }
          y[i * n + j] = Math.max(s, 0);
          mag[i * n + j] = mm;
        }
      }
      assertNear(matmulF32(a, w, b, m, k, n, transB, WasmAct.Relu), { y, mag }, `${m}x${k}x${n}`);
    }
  },
});

Deno.test({
  name: "a GEMM row gives the same floats whatever block of rows computes it (both builds)",
  ignore: !convWasmSupported,
  fn() {
    // The kernel computes rows in blocks of 6, then 4, then 1; a split cuts rows anywhere: each
    // pixel of a 1×1 convolution over m pixels must equal the same pixel convolved alone.
    const hs = { scale: Math.fround(1 / 6), offset: 3 };
    for (const relaxed of builds) {
      useRelaxedConvWasm(relaxed);
      const r = rng(relaxed ? 61 : 62);
      for (let t = 0; t < 40; t++) {
        const m = int(r, 1, 23), c = int(r, 1, 40), o = int(r, 1, 27);
        const a = int(r, 0, 3) as WasmAct;
        const one = (px: number): Geometry => ({
          batch: 1,
          inH: 1,
          inW: px,
          inC: c,
          fh: 1,
          fw: 1,
          outH: 1,
          outW: px,
          outC: o,
          sh: 1,
          sw: 1,
          dh: 1,
          dw: 1,
          padTop: 0,
          padLeft: 0,
        });
        const x = randArray(r, m * c).map((v) => v * 4), f = randArray(r, c * o);
        const b = randArray(r, o);
        const side = r() < 0.5 ? randArray(r, m * o) : null;
        const h = a === WasmAct.HardSwish ? hs : null;
        const all = conv2dF32(x, f, b, side, one(m), a, h);
        assert.ok(all !== null);
        for (let p = 0; p < m; p++) {
          const alone = conv2dF32(
            x.slice(p * c, (p + 1) * c),
            f,
            b,
            side === null ? null : side.slice(p * o, (p + 1) * o),
            one(1),
            a,
            h,
          );
          assert.ok(alone !== null);
          assert.deepEqual(
            all.subarray(p * o, (p + 1) * o),
            alone,
            `m=${m} c=${c} o=${o} row ${p}`,
          );
        }
      }
    }
    useRelaxedConvWasm(true);
  },
});

Deno.test({
  name: "a convolution's pixel is the same floats read in place or through im2col (both builds)",
  ignore: !convWasmSupported,
  fn() {
    // Groups of 6 pixels whose taps are all inside the input are read in place, the others
    // (edges, the last pixels) through im2col: a VALID convolution's pixel (oy, ox) is the
    // SAME one's (oy + 1, ox + 1) with a 3×3 window, whichever path each took.
    for (const relaxed of builds) {
      useRelaxedConvWasm(relaxed);
      const r = rng(relaxed ? 63 : 64);
      for (let t = 0; t < 30; t++) {
        const h = int(r, 3, 14), w = int(r, 3, 20), c = int(r, 1, 12), o = int(r, 1, 20);
        const batch = int(r, 1, 2);
        const geo = (pad: number): Geometry => ({
          batch,
          inH: h,
          inW: w,
          inC: c,
          fh: 3,
          fw: 3,
          outH: h - 2 + 2 * pad,
          outW: w - 2 + 2 * pad,
          outC: o,
          sh: 1,
          sw: 1,
          dh: 1,
          dw: 1,
          padTop: pad,
          padLeft: pad,
        });
        const x = randArray(r, batch * h * w * c), f = randArray(r, 9 * c * o);
        const b = randArray(r, o);
        const valid = conv2dF32(x, f, b, null, geo(0), WasmAct.Relu);
        const same = conv2dF32(x, f, b, null, geo(1), WasmAct.Relu);
        assert.ok(valid !== null && same !== null);
        for (let n = 0; n < batch; n++) {
          for (let oy = 0; oy < h - 2; oy++) {
            for (let ox = 0; ox < w - 2; ox++) {
              const vi = ((n * (h - 2) + oy) * (w - 2) + ox) * o;
              const si = ((n * h + oy + 1) * w + ox + 1) * o;
              assert.deepEqual(
                valid.subarray(vi, vi + o),
                same.subarray(si, si + o),
                `${h}x${w}x${c}->${o} pixel ${n},${oy},${ox}`,
              );
            }
          }
        }
      }
    }
    useRelaxedConvWasm(true);
  },
});

Deno.test({
  name: "the same filter array seen under another shape is packed again",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(41);
    const f = randArray(r, 24);
    const x = randArray(r, 2 * 3 * 4);
    const g1: Geometry = {
      batch: 1,
      inH: 2,
      inW: 3,
      inC: 4,
      fh: 1,
      fw: 1,
      outH: 2,
      outW: 3,
      outC: 6,
      sh: 1,
      sw: 1,
      dh: 1,
      dw: 1,
      padTop: 0,
      padLeft: 0,
    };
    const g2: Geometry = { ...g1, inC: 2, inW: 6, outW: 6, outC: 12 };
    assertNear(conv2dF32(x, f, null, null, g1, 0), refConv(x, f, null, null, g1, false, 0), "g1");
    assertNear(conv2dF32(x, f, null, null, g2, 0), refConv(x, f, null, null, g2, false, 0), "g2");
    assertNear(conv2dF32(x, f, null, null, g1, 0), refConv(x, f, null, null, g1, false, 0), "g1");
  },
});

// Through the kernels: padding attrs, NCHW, multipliers and groups (JavaScript), fused epilogues.

function tensor(shape: number[], data: Float32Array): Tensor {
  return new Tensor(DataType.DT_FLOAT, shape, data);
}

function convAttrs(
  strides: number[],
  dilations: number[],
  padding: string,
  explicit: number[] = [],
): Record<string, AttrValue> {
  return {
    T: attr.type(DataType.DT_FLOAT),
    strides: attr.ints([1, strides[0], strides[1], 1]),
    dilations: attr.ints([1, dilations[0], dilations[1], 1]),
    padding: attr.string(padding),
    ...(padding === "EXPLICIT"
      ? { explicit_paddings: attr.ints([0, 0, ...explicit.slice(0, 4), 0, 0]) }
      : {}),
  };
}

Deno.test({
  name: "Conv2D / DepthwiseConv2dNative kernels agree with and without WebAssembly",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(51);
    for (let t = 0; t < 80; t++) {
      const depthwise = r() < 0.5;
      const mult = depthwise ? int(r, 1, 3) : 1;
      const n = int(r, 1, 2), h = int(r, 2, 9), w = int(r, 2, 9), c = int(r, 1, 10);
      const fh = int(r, 1, 3), fw = int(r, 1, 3);
      const padding = ["SAME", "VALID", "EXPLICIT"][int(r, 0, 2)];
      const explicit = [int(r, 0, 2), int(r, 0, 2), int(r, 0, 2), int(r, 0, 2)];
      const groups = !depthwise && c % 2 === 0 && r() < 0.2 ? 2 : 1;
      const o = depthwise ? mult : int(r, 1, 9) * groups;
      const x = tensor([n, h, w, c], randArray(r, n * h * w * c));
      const f = tensor(
        [fh, fw, c / groups, o],
        randArray(r, fh * fw * (c / groups) * o),
      );
      const attrs = convAttrs([int(r, 1, 2), int(r, 1, 2)], [1, 1], padding, explicit);
      const op = depthwise ? "DepthwiseConv2dNative" : "Conv2D";
      let want: Tensor;
      const was = setConvWasmEnabled(false);
      try {
        want = runOp(nnKernels, op, [x, f], attrs)[0];
      } catch {
        setConvWasmEnabled(was);
        continue; // a window larger than a VALID input
      }
      setConvWasmEnabled(was);
      const got = runOp(nnKernels, op, [x, f], attrs)[0];
      assert.deepEqual(got.shape, want.shape);
      const gd = got.data as Float32Array, wd = want.data as Float32Array;
      for (let i = 0; i < gd.length; i++) {
        assert.ok(Math.abs(gd[i] - wd[i]) <= 1e-5 + 1e-5 * Math.abs(wd[i]), `${op} at ${i}`);
      }
    }
  },
});

Deno.test({
  name: "_FusedConv2D and _FusedDepthwiseConv2dNative with BiasAdd, Add and activations",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(61);
    const cases: [string, string[], number][] = [
      ["_FusedConv2D", ["BiasAdd"], 1],
      ["_FusedConv2D", ["BiasAdd", "Relu"], 1],
      ["_FusedConv2D", ["BiasAdd", "Relu6"], 1],
      ["_FusedConv2D", ["BiasAdd", "Elu"], 1],
      ["_FusedConv2D", ["BiasAdd", "LeakyRelu"], 1],
      ["_FusedConv2D", ["BiasAdd", "Add", "Relu"], 2],
      ["_FusedDepthwiseConv2dNative", ["BiasAdd", "Relu6"], 1],
      ["_FusedDepthwiseConv2dNative", ["BiasAdd"], 1],
    ];
    for (const [op, ops, numArgs] of cases) {
      const x = tensor([2, 7, 6, 5], randArray(r, 2 * 7 * 6 * 5));
      const depthwise = op === "_FusedDepthwiseConv2dNative";
      const o = depthwise ? 5 : 11;
      const f = tensor([3, 3, 5, depthwise ? 1 : o], randArray(r, 9 * 5 * (depthwise ? 1 : o)));
      const b = tensor([o], randArray(r, o));
      const attrs = {
        ...convAttrs([2, 1], [1, 2], "SAME"),
        fused_ops: attr.strings(ops),
        num_args: attr.int(numArgs),
        leakyrelu_alpha: attr.float(0.3),
      };
      const side = tensor([2, 4, 6, o], randArray(r, 2 * 4 * 6 * o).map((v) => v * 3));
      const inputs = numArgs === 2 ? [x, f, b, side] : [x, f, b];
      const was = setConvWasmEnabled(false);
      const want = runOp(nnKernels, op, inputs, attrs)[0];
      setConvWasmEnabled(was);
      const got = runOp(nnKernels, op, inputs, attrs)[0];
      assert.deepEqual(got.shape, want.shape);
      const gd = got.data as Float32Array, wd = want.data as Float32Array;
      for (let i = 0; i < gd.length; i++) {
        assert.ok(
          Math.abs(gd[i] - wd[i]) <= 1e-5 + 1e-5 * Math.abs(wd[i]),
          `${op} [${ops}] at ${i}: ${gd[i]} vs ${wd[i]}`,
        );
      }
    }
  },
});

Deno.test({
  name: "the hard-swish epilogue equals the graph's Mul, AddV2, Relu6, Mul in float32",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(71);
    const hs = { scale: Math.fround(1 / 6), offset: 3 };
    const f32 = Math.fround;
    const swish = (v: number) =>
      f32(f32(v * hs.scale) * Math.min(Math.max(f32(v + hs.offset), 0), 6));
    for (let t = 0; t < 20; t++) {
      const depthwise = t % 2 === 1;
      const g = randomGeometry(r, depthwise);
      const x = randArray(r, g.batch * g.inH * g.inW * g.inC).map((v) => v * 4);
      const f = randArray(r, g.fh * g.fw * g.inC * (depthwise ? 1 : g.outC));
      const b = randArray(r, g.outC);
      const plain = depthwise
        ? depthwiseF32(x, f, b, g, WasmAct.None)
        : conv2dF32(x, f, b, null, g, WasmAct.None);
      const got = depthwise
        ? depthwiseF32(x, f, b, g, WasmAct.HardSwish, hs)
        : conv2dF32(x, f, b, null, g, WasmAct.HardSwish, hs);
      assert.ok(plain !== null && got !== null);
      for (let i = 0; i < got.length; i++) assert.equal(got[i], swish(plain[i]), `at ${i}`);
    }
  },
});

Deno.test({
  name: "Conv2DBackpropInput agrees with and without WebAssembly on random shapes",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(81);
    let ran = 0;
    for (let t = 0; t < 60; t++) {
      const n = int(r, 1, 2), h = int(r, 1, 9), w = int(r, 1, 9), c = int(r, 1, 6);
      const fh = int(r, 1, 3), fw = int(r, 1, 3), o = int(r, 1, 17);
      const padding = ["SAME", "VALID", "EXPLICIT"][int(r, 0, 2)];
      const explicit = [int(r, 0, 2), int(r, 0, 2), int(r, 0, 2), int(r, 0, 2)];
      const strides = [int(r, 1, 3), int(r, 1, 3)], dilations = [int(r, 1, 2), int(r, 1, 2)];
      let oh: number, ow: number;
      try {
        [oh] = windowedOutputSize(
          h,
          fh,
          dilations[0],
          strides[0],
          padding as "SAME",
          explicit[0],
          explicit[1],
        );
        [ow] = windowedOutputSize(
          w,
          fw,
          dilations[1],
          strides[1],
          padding as "SAME",
          explicit[2],
          explicit[3],
        );
      } catch {
        continue;
      }
      const sizes = new Tensor(DataType.DT_INT32, [4], Int32Array.of(n, h, w, c));
      const f = tensor([fh, fw, c, o], randArray(r, fh * fw * c * o));
      const dy = tensor([n, oh, ow, o], randArray(r, n * oh * ow * o));
      const attrs = convAttrs(strides, dilations, padding, explicit);
      const was = setConvWasmEnabled(false);
      const want = runOp(nnKernels, "Conv2DBackpropInput", [sizes, f, dy], attrs)[0];
      setConvWasmEnabled(was);
      const got = runOp(nnKernels, "Conv2DBackpropInput", [sizes, f, dy], attrs)[0];
      assert.deepEqual(got.shape, want.shape);
      const gd = got.data as Float32Array, wd = want.data as Float32Array;
      for (let i = 0; i < gd.length; i++) {
        assert.ok(Math.abs(gd[i] - wd[i]) <= 1e-5 + 1e-5 * Math.abs(wd[i]), `at ${i}`);
      }
      ran++;
    }
    assert.ok(ran > 20);
  },
});

/**
 * A random Conv2DBackpropInput with non-overlapping windows (strides at least the dilated window
 * extent, up to `extra` more: every image pixel takes at most one tap), up to `maxC` image
 * channels, explicit paddings up to `maxPad`, image sides from `lo` to `hi`; undefined when the
 * padding leaves no output.
 */
function nonOverlappingBackprop(
  r: () => number,
  maxC: number,
  extra: number,
  maxPad: number,
  lo: number,
  hi: number,
) {
  const n = int(r, 1, 2), c = int(r, 1, maxC), o = int(r, 1, 17);
  const fh = int(r, 1, 3), fw = int(r, 1, 3), dh = int(r, 1, 2), dw = int(r, 1, 2);
  const strides = [(fh - 1) * dh + 1 + int(r, 0, extra), (fw - 1) * dw + 1 + int(r, 0, extra)];
  const padding = ["SAME", "VALID", "EXPLICIT"][int(r, 0, 2)];
  const explicit = [int(r, 0, maxPad), int(r, 0, maxPad), int(r, 0, maxPad), int(r, 0, maxPad)];
  const h = int(r, lo, hi), w = int(r, lo, hi);
  let oh: number, ow: number;
  try {
    [oh] = windowedOutputSize(h, fh, dh, strides[0], padding as "SAME", explicit[0], explicit[1]);
    [ow] = windowedOutputSize(w, fw, dw, strides[1], padding as "SAME", explicit[2], explicit[3]);
  } catch {
    return undefined;
  }
  return {
    sizes: new Tensor(DataType.DT_INT32, [4], Int32Array.of(n, h, w, c)),
    f: tensor([fh, fw, c, o], randArray(r, fh * fw * c * o)),
    dy: tensor([n, oh, ow, o], randArray(r, n * oh * ow * o)),
    attrs: convAttrs(strides, [dh, dw], padding, explicit),
  };
}

Deno.test({
  name: "Conv2DBackpropInput with non-overlapping windows (kernel ≤ stride) equals the loops",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(83);
    let ran = 0;
    for (let t = 0; t < 60; t++) {
      const k = nonOverlappingBackprop(r, 5, 1, 2, 1, 13);
      if (k === undefined) continue;
      const { sizes, f, dy, attrs } = k;
      const was = setConvWasmEnabled(false);
      const want = runOp(nnKernels, "Conv2DBackpropInput", [sizes, f, dy], attrs)[0];
      setConvWasmEnabled(was);
      const got = runOp(nnKernels, "Conv2DBackpropInput", [sizes, f, dy], attrs)[0];
      assert.deepEqual(got.shape, want.shape);
      const gd = got.data as Float32Array, wd = want.data as Float32Array;
      for (let i = 0; i < gd.length; i++) {
        assert.ok(Math.abs(gd[i] - wd[i]) <= 1e-5 + 1e-5 * Math.abs(wd[i]), `at ${i}`);
      }
      ran++;
    }
    assert.ok(ran > 20);
  },
});

Deno.test({
  name:
    "Conv2DBackpropInput's scatter in WebAssembly (outputs in the kernel memory) gives the JavaScript scatter's floats",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(87);
    let ran = 0, inKernelMemory = 0;
    for (let t = 0; t < 80; t++) {
      const k = nonOverlappingBackprop(r, 6, 2, 3, 30, 80);
      if (k === undefined) continue;
      const { sizes, f, dy, attrs } = k;
      // Without an arena the outputs are ordinary arrays: the JavaScript scatter.
      const want = runOp(nnKernels, "Conv2DBackpropInput", [sizes, f, dy], attrs)[0];
      const arena = new Arena();
      const prev = activateArena(arena);
      let got: Tensor;
      try {
        // Twice: the second run gets recycled (not zero-filled by the engine) storage.
        runOp(nnKernels, "Conv2DBackpropInput", [sizes, f, dy], attrs);
        arena.endRun();
        got = runOp(nnKernels, "Conv2DBackpropInput", [sizes, f, dy], attrs)[0];
      } finally {
        activateArena(prev);
      }
      // Small outputs are ordinary arrays even then (tensor/arena.ts): count the others.
      if (isKernelView(got.data as Float32Array)) inKernelMemory++;
      assert.deepEqual(got.shape, want.shape);
      const gd = got.data as Float32Array, wd = want.data as Float32Array;
      for (let i = 0; i < gd.length; i++) assert.ok(Object.is(gd[i], wd[i]), `at ${i}`);
      ran++;
    }
    assert.ok(ran > 30 && inKernelMemory > 20, `${ran} ran, ${inKernelMemory} in kernel memory`);
  },
});

Deno.test({
  name: "MaxPool / AvgPool agree with and without WebAssembly on random shapes",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(91);
    let ran = 0;
    for (let t = 0; t < 80; t++) {
      const n = int(r, 1, 2), h = int(r, 1, 9), w = int(r, 1, 9), c = int(r, 1, 11);
      const kh = int(r, 1, 4), kw = int(r, 1, 4);
      const padding = ["SAME", "VALID"][int(r, 0, 1)];
      const x = tensor([n, h, w, c], randArray(r, n * h * w * c));
      const xd = x.data as Float32Array;
      if (t % 5 === 0) xd[int(r, 0, xd.length - 1)] = NaN;
      const attrs = {
        T: attr.type(DataType.DT_FLOAT),
        ksize: attr.ints([1, kh, kw, 1]),
        strides: attr.ints([1, int(r, 1, 3), int(r, 1, 3), 1]),
        padding: attr.string(padding),
      };
      for (const op of ["MaxPool", "AvgPool"]) {
        let want: Tensor;
        const was = setConvWasmEnabled(false);
        try {
          want = runOp(nnKernels, op, [x], attrs)[0];
        } catch {
          setConvWasmEnabled(was);
          continue; // a window larger than a VALID input
        }
        setConvWasmEnabled(was);
        const got = runOp(nnKernels, op, [x], attrs)[0];
        assert.deepEqual(got.shape, want.shape);
        const gd = got.data as Float32Array, wd = want.data as Float32Array;
        for (let i = 0; i < gd.length; i++) {
          if (Number.isNaN(wd[i])) assert.ok(Number.isNaN(gd[i]), `${op} NaN at ${i}`);
          else assert.ok(Math.abs(gd[i] - wd[i]) <= 1e-6 + 1e-6 * Math.abs(wd[i]), `${op} at ${i}`);
        }
        ran++;
      }
    }
    assert.ok(ran > 60);
  },
});

Deno.test({
  name:
    "MaxPool, AvgPool and DepthwiseConv2dNative of channels not a multiple of 4 give the same floats from the kernel memory as from ordinary arrays",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(97);
    const store = setFloatStore(undefined);
    setFloatStore(store);
    assert.ok(store, "the float store is registered");
    let ran = 0, inMemory = 0;
    for (let t = 0; t < 60; t++) {
      const c = [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14][int(r, 0, 10)];
      const n = int(r, 1, 2), h = int(r, 8, 40), w = int(r, 8, 40);
      const kh = int(r, 1, 5), kw = int(r, 1, 5);
      const padding = ["SAME", "VALID"][int(r, 0, 1)];
      const x = tensor([n, h, w, c], randArray(r, n * h * w * c));
      const xd = x.data as Float32Array;
      if (t % 5 === 0) xd[int(r, 0, xd.length - 1)] = NaN;
      // The same values in the kernel memory (a plan's intermediates live there).
      const stored = store!.alloc(xd.length)!;
      stored.set(xd);
      const xk = new Tensor(DataType.DT_FLOAT, x.shape, stored);
      const strides = attr.ints([1, int(r, 1, 3), int(r, 1, 3), 1]);
      const f = tensor([kh, kw, c, 1], randArray(r, kh * kw * c));
      const cases: [string, Tensor[], Tensor[], Record<string, AttrValue>][] = [
        ["MaxPool", [x], [xk], { ksize: attr.ints([1, kh, kw, 1]) }],
        ["AvgPool", [x], [xk], { ksize: attr.ints([1, kh, kw, 1]) }],
        ["DepthwiseConv2dNative", [x, f], [xk, f], {}],
      ];
      for (const [op, plain, placed, extra] of cases) {
        const attrs = {
          T: attr.type(DataType.DT_FLOAT),
          strides,
          padding: attr.string(padding),
          ...extra,
        };
        let want: Tensor;
        try {
          want = runOp(nnKernels, op, plain, attrs)[0];
        } catch {
          continue; // a window larger than a VALID input
        }
        const arena = new Arena();
        const prev = activateArena(arena);
        let got: Tensor;
        try {
          got = runOp(nnKernels, op, placed, attrs)[0];
        } finally {
          activateArena(prev);
        }
        if (isKernelView(got.data as Float32Array)) inMemory++;
        assert.deepEqual(got.shape, want.shape);
        const gd = got.data as Float32Array, wd = want.data as Float32Array;
        for (let i = 0; i < gd.length; i++) {
          assert.ok(Object.is(gd[i], wd[i]), `${op} c=${c} at ${i}: ${gd[i]} vs ${wd[i]}`);
        }
        ran++;
      }
      store!.free(stored);
    }
    assert.ok(ran > 100 && inMemory > 20, `${ran} ran, ${inMemory} outputs in the kernel memory`);
  },
});

Deno.test({
  name: "AvgPool of large windows sums in float64 in WebAssembly as in the loops",
  ignore: !convWasmSupported,
  fn() {
    // Thousands of values near 100: a float32 running sum would drift by ~1e-5 relative.
    const r = rng(93);
    for (
      const [n, h, w, c, kh, kw, s, padding] of [
        [1, 70, 70, 5, 70, 70, 1, "VALID"],
        [2, 40, 33, 18, 9, 11, 4, "SAME"],
        [1, 17, 90, 3, 17, 80, 7, "VALID"],
      ] as const
    ) {
      const x = tensor([n, h, w, c], randArray(r, n * h * w * c).map((v) => 100 + v));
      const attrs = {
        T: attr.type(DataType.DT_FLOAT),
        ksize: attr.ints([1, kh, kw, 1]),
        strides: attr.ints([1, s, s, 1]),
        padding: attr.string(padding),
      };
      const was = setConvWasmEnabled(false);
      const want = runOp(nnKernels, "AvgPool", [x], attrs)[0];
      setConvWasmEnabled(was);
      const got = runOp(nnKernels, "AvgPool", [x], attrs)[0];
      assert.deepEqual(got.shape, want.shape);
      const gd = got.data as Float32Array, wd = want.data as Float32Array;
      for (let i = 0; i < gd.length; i++) {
        assert.ok(Math.abs(gd[i] - wd[i]) <= 2e-7 * Math.abs(wd[i]), `${kh}x${kw} at ${i}`);
      }
    }
  },
});

Deno.test({
  name: "depthwiseF32 adds a side tensor after the activation",
  ignore: !convWasmSupported,
  fn() {
    const r = rng(101);
    for (let t = 0; t < 30; t++) {
      const g = randomGeometry(r, true);
      const x = randArray(r, g.batch * g.inH * g.inW * g.inC);
      const f = randArray(r, g.fh * g.fw * g.inC);
      const b = randArray(r, g.inC);
      const side = randArray(r, g.batch * g.outH * g.outW * g.inC);
      const a = int(r, 0, 2) as WasmAct;
      const plain = depthwiseF32(x, f, b, g, a);
      const got = depthwiseF32(x, f, b, g, a, null, side);
      assert.ok(plain !== null && got !== null);
      for (let i = 0; i < got.length; i++) {
        assert.equal(got[i], Math.fround(plain[i] + side[i]), `at ${i}`);
      }
    }
  },
});
