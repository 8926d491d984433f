/**
 * A worker for `split_test.ts`: adopts the test's kernel memory and joins the kernel team; as
 * "caller" it runs random convolutions, depthwise convolutions, poolings, products, bilinear
 * resizes, sigmoids, exps and fused x·s + r each unsplit and split (its team mate helping) and reports any output that differs by a bit; as
 * "helper" it only helps.
 *
 * @module
 */
import { adoptKernelMemory } from "../../../src/kernels/wasm/shared_memory.ts";
import {
  forceSplitShare,
  joinKernelTeam,
  setKernelSplitting,
  setSplitJudging,
  teamStats,
} from "../../../src/kernels/wasm/team.ts";
import {
  addMeanF32,
  conv2dF32,
  depthwiseF32,
  matmulF32,
  poolF32,
  WasmAct,
} from "../../../src/kernels/wasm/conv.ts";
import type { Geometry } from "../../../src/kernels/window.ts";
import { activateArena, Arena, uninitialized } from "../../../src/tensor/arena.ts";
import { splitBinaryF32 } from "../../../src/kernels/wasm/elementwise_split.ts";
import { mulAddF32 } from "../../../src/kernels/mul_add.ts";
import { resizeBilinearF32 } from "../../../src/kernels/wasm/image.ts";
import { expF32, sigmoidF32 } from "../../../src/kernels/wasm/activation.ts";
import { interpolationWeights } from "../../../src/kernels/image.ts";
import { DataType } from "../../../src/tensor/dtype.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { lcg } from "../../random.ts";

const port = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

function floats(n: number, rand: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
  return a;
}

/** A geometry with output sizes for "SAME"-like or "VALID" padding. */
function geometry(rand: () => number, dw: boolean, pool: boolean): Geometry {
  const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const batch = pick(1, 2);
  // Large enough for depthwise and pooling windows to be worth splitting (≥ 2 MFLOP).
  const inH = dw ? pick(48, 96) : pick(20, 48), inW = dw ? pick(48, 96) : pick(20, 48);
  const inC = pool || dw ? pick(13, 48) : pick(3, 24);
  const fh = pick(dw ? 3 : 1, dw ? 5 : 3), fw = pick(dw ? 3 : 1, dw ? 5 : 3);
  const sh = pick(1, 2), sw = pick(1, 2);
  const dh = pool ? 1 : pick(1, 2), dw_ = pool ? 1 : pick(1, 2);
  const same = rand() < 0.5;
  const eh = (fh - 1) * dh + 1, ew = (fw - 1) * dw_ + 1;
  const outH = same ? Math.ceil(inH / sh) : Math.floor((inH - eh) / sh) + 1;
  const outW = same ? Math.ceil(inW / sw) : Math.floor((inW - ew) / sw) + 1;
  const padTop = same ? Math.max(0, ((outH - 1) * sh + eh - inH) >> 1) : 0;
  const padLeft = same ? Math.max(0, ((outW - 1) * sw + ew - inW) >> 1) : 0;
  const outC = dw || pool ? inC : pick(4, 40);
  return {
    batch,
    inH,
    inW,
    inC,
    fh,
    fw,
    outH,
    outW,
    outC,
    sh,
    sw,
    dh,
    dw: dw_,
    padTop,
    padLeft,
  };
}

/** Runs `f` unsplit, then split (inside an arena, as a plan does); the first differing index. */
function compare(f: () => Float32Array | null): { diff: number; split: boolean } {
  const arena = new Arena();
  const run = (split: boolean) => {
    setKernelSplitting(split);
    activateArena(arena);
    try {
      const out = f()!;
      const copy = out.slice();
      // Poisoned for the next run, which gets the same arena memory: a row a part skips shows.
      out.fill(NaN);
      return copy;
    } finally {
      activateArena(undefined);
      arena.endRun();
    }
  };
  const a = run(false);
  const before = teamStats().split;
  const b = run(true);
  const split = teamStats().split > before;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return { diff: i, split };
  return { diff: a.length === b.length ? -1 : a.length, split };
}

port.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "init") {
    const adopted = adoptKernelMemory(m.memory);
    if (adopted) joinKernelTeam(m.index);
    setSplitJudging(false);
    port.postMessage({ adopted });
    return;
  }
  const rand = lcg(m.seed);
  const failures: string[] = [];
  const splits: Record<string, number> = {
    conv: 0,
    depthwise: 0,
    pool: 0,
    matmul: 0,
    binary: 0,
    resize: 0,
    activation: 0,
    mulAdd: 0,
    addMean: 0,
  };
  for (let t = 0; t < m.cases; t++) {
    // Cuts of two parts anywhere: learned (0.5 at first), or forced off the middle.
    forceSplitShare([undefined, 0.3, 0.7][t % 3]);
    const acts = [WasmAct.None, WasmAct.Relu, WasmAct.Relu6];
    const act = acts[Math.floor(rand() * 3)];
    const note = (kind: string, r: { diff: number; split: boolean }, what: unknown) => {
      if (r.split) splits[kind]++;
      if (r.diff >= 0) failures.push(`${kind} ${JSON.stringify(what)}: differs at ${r.diff}`);
    };
    {
      const g = geometry(rand, false, false);
      const x = floats(g.batch * g.inH * g.inW * g.inC, rand);
      const w = floats(g.fh * g.fw * g.inC * g.outC, rand);
      const b = floats(g.outC, rand);
      const side = rand() < 0.5 ? floats(g.batch * g.outH * g.outW * g.outC, rand) : null;
      note("conv", compare(() => conv2dF32(x, w, b, side, g, act)), g);
    }
    {
      const g = geometry(rand, true, false);
      const x = floats(g.batch * g.inH * g.inW * g.inC, rand);
      const w = floats(g.fh * g.fw * g.inC, rand);
      const b = floats(g.inC, rand);
      note("depthwise", compare(() => depthwiseF32(x, w, b, g, act)), g);
    }
    {
      const g = geometry(rand, false, true);
      const x = floats(g.batch * g.inH * g.inW * g.inC, rand);
      const max = rand() < 0.5;
      note("pool", compare(() => poolF32(x, g, max)), { ...g, max });
    }
    {
      const mm = 40 + Math.floor(rand() * 400), k = 8 + Math.floor(rand() * 120);
      const n = 4 + Math.floor(rand() * 60), transB = rand() < 0.5;
      const a = floats(mm * k, rand), w = floats(k * n, rand), b = floats(n, rand);
      note(
        "matmul",
        compare(() => matmulF32(a, w, b, mm, k, n, transB, act)),
        { m: mm, k, n, transB },
      );
    }
  }
  // Bilinear resizes of images stored in kernel memory (as intermediates are, which is where
  // they split): up, down and odd sizes, both pixel conventions, batch 1 and 2.
  for (let t = 0; t < m.cases; t++) {
    const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const batch = pick(1, 2), inH = pick(5, 70), inW = pick(5, 70), c = pick(1, 40);
    const outH = pick(9, 140), outW = Math.max(pick(9, 140), Math.ceil(65536 / (outH * c)));
    const halfPixel = rand() < 0.5;
    const ys = interpolationWeights(outH, inH, inH / outH, halfPixel, inW * c);
    const xs = interpolationWeights(outW, inW, inW / outW, halfPixel, c);
    const held = new Arena();
    activateArena(held);
    const x = uninitialized(Float32Array, batch * inH * inW * c);
    activateArena(undefined);
    x.set(floats(x.length, rand));
    const what = { batch, inH, inW, c, outH, outW, halfPixel };
    const r = compare(() => resizeBilinearF32(x, batch, inH, inW, c, ys, xs));
    if (r.split) splits.resize++;
    if (r.diff >= 0) failures.push(`resize ${JSON.stringify(what)}: differs at ${r.diff}`);
    held.endRun();
  }
  // Sigmoid and exp over kernel memory, odd lengths and offsets, large values and NaNs.
  for (let t = 0; t < m.cases; t++) {
    const n = 65536 + Math.floor(rand() * 70000), off = Math.floor(rand() * 7);
    const held = new Arena();
    activateArena(held);
    const x = uninitialized(Float32Array, n + off);
    activateArena(undefined);
    for (let i = 0; i < x.length; i++) x[i] = rand() < 0.01 ? NaN : (rand() * 2 - 1) * 100;
    const exp = rand() < 0.5;
    const r = compare(() => {
      const y = uninitialized(Float32Array, n + off);
      const ok = exp ? expF32(x, off, y, off, n) : sigmoidF32(x, off, y, off, n);
      return ok ? y.subarray(off) : null;
    });
    if (r.split) splits.activation++;
    if (r.diff >= 0) failures.push(`${exp ? "exp" : "sigmoid"} n=${n}: differs at ${r.diff}`);
    held.endRun();
  }
  // Elementwise Add / Sub / Mul on tensors stored in kernel memory (as intermediates are),
  // against the float32 result of each element.
  const ops: [string, (a: number, b: number) => number][] = [
    ["AddV2", (a, b) => a + b],
    ["Sub", (a, b) => a - b],
    ["Mul", (a, b) => a * b],
  ];
  for (let t = 0; t < m.cases; t++) {
    const h = 16 + Math.floor(rand() * 60), w = 16 + Math.floor(rand() * 60);
    const c = 1 + Math.floor(rand() * 40);
    const big = [1, h, w, Math.max(c, Math.ceil(65536 / (h * w)))];
    const smalls = [big, [big[3]], [1, 1, 1, big[3]], [], [w, big[3]]];
    const small = smalls[Math.floor(rand() * smalls.length)];
    const [name, fn] = ops[Math.floor(rand() * ops.length)];
    const swap = rand() < 0.5;
    const arena = new Arena();
    activateArena(arena);
    try {
      const n = big.reduce((p, d) => p * d, 1), sn = small.reduce((p, d) => p * d, 1);
      const x = uninitialized(Float32Array, n);
      x.set(floats(n, rand));
      const sv = sn === n ? uninitialized(Float32Array, n) : new Float32Array(sn);
      sv.set(floats(sn, rand));
      const X = new Tensor(DataType.DT_FLOAT, big, x), S = new Tensor(DataType.DT_FLOAT, small, sv);
      setKernelSplitting(true);
      const y = swap ? splitBinaryF32(name, S, X) : splitBinaryF32(name, X, S);
      if (y === null) {
        failures.push(`${name} ${JSON.stringify({ big, small })} was not split`);
        continue;
      }
      splits.binary++;
      const got = y.data as Float32Array;
      for (let i = 0; i < n; i++) {
        const v = Math.fround(swap ? fn(sv[i % sn], x[i]) : fn(x[i], sv[i % sn]));
        if (!Object.is(v, got[i])) {
          failures.push(`${name} ${JSON.stringify({ big, small, swap })}: differs at ${i}`);
          break;
        }
      }
    } finally {
      activateArena(undefined);
      arena.endRun();
    }
  }
  // x·s + r (the fused Mul and Add) on tensors stored in kernel memory: a per-channel, scalar or
  // full scale, a full or scalar r, against each element's two float32 roundings.
  for (let t = 0; t < m.cases; t++) {
    const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const h = pick(16, 70), w = pick(16, 70), c = pick(1, 40);
    const shape = [1, h, w, Math.max(c, Math.ceil(65536 / (h * w)))];
    const n = shape.reduce((p, d) => p * d, 1), ch = shape[3];
    const sShape = [[ch], [1, 1, 1, ch], [], shape][pick(0, 3)];
    const rShape = rand() < 0.7 ? shape : [];
    const held = new Arena();
    activateArena(held);
    const stored = (dims: number[]) => {
      const len = dims.reduce((p, d) => p * d, 1);
      const a = len === n ? uninitialized(Float32Array, len) : new Float32Array(len);
      a.set(floats(len, rand));
      return new Tensor(DataType.DT_FLOAT, dims, a);
    };
    const X = stored(shape), S = stored(sShape), R = stored(rShape);
    activateArena(undefined);
    const what = { shape, s: sShape, r: rShape };
    const r = compare(() => mulAddF32(X, S, R)?.data as Float32Array | null);
    if (r.split) splits.mulAdd++;
    if (r.diff >= 0) failures.push(`mulAdd ${JSON.stringify(what)}: differs at ${r.diff}`);
    // Against each element (the split run's output, rerun).
    setKernelSplitting(true);
    activateArena(held);
    const got = mulAddF32(X, S, R)!.data as Float32Array;
    activateArena(undefined);
    const x = X.data as Float32Array, sv = S.data as Float32Array, rv = R.data as Float32Array;
    for (let i = 0; i < n; i++) {
      const sc = sv.length === n ? sv[i] : sv.length === 1 ? sv[0] : sv[i % ch];
      const want = Math.fround(Math.fround(x[i] * sc) + (rv.length === n ? rv[i] : rv[0]));
      if (!Object.is(want, got[i])) {
        failures.push(`mulAdd ${JSON.stringify(what)}: element ${i} is ${got[i]}, not ${want}`);
        break;
      }
    }
    held.endRun();
  }
  // The global average of a sum (split by rows; the row sums are added in order either way).
  for (let t = 0; t < m.cases; t++) {
    const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const batch = pick(1, 2), h = pick(90, 140), w = pick(90, 140), c = 4 * pick(3, 8);
    const held = new Arena();
    activateArena(held);
    const a = uninitialized(Float32Array, batch * h * w * c);
    const b = uninitialized(Float32Array, a.length);
    activateArena(undefined);
    a.set(floats(a.length, rand));
    b.set(floats(b.length, rand));
    const what = { batch, h, w, c };
    const r = compare(() => addMeanF32(a, b, batch, h, w, c));
    if (r.split) splits.addMean++;
    if (r.diff >= 0) failures.push(`addMean ${JSON.stringify(what)}: differs at ${r.diff}`);
    // New values, split, against each image's float64 mean of the float32 sums (row sums a part
    // skipped would still hold the last call's).
    a.set(floats(a.length, rand));
    setKernelSplitting(true);
    activateArena(held);
    const got = addMeanF32(a, b, batch, h, w, c)!;
    activateArena(undefined);
    for (let img = 0; img < batch; img++) {
      for (let j = 0; j < c; j++) {
        let sum = 0;
        for (let p = img * h * w; p < (img + 1) * h * w; p++) {
          sum += Math.fround(a[p * c + j] + b[p * c + j]);
        }
        const want = Math.fround(sum / (h * w)), v = got[img * c + j];
        if (Math.abs(v - want) > 1e-6 * Math.abs(want) + 1e-9) {
          failures.push(`addMean ${JSON.stringify(what)}: mean ${img},${j} is ${v}, not ${want}`);
        }
      }
    }
    held.endRun();
  }
  port.postMessage({ failures, splits });
};
