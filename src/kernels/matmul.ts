/**
 * Matrix products: MatMul and BatchMatMul (V1, V2 with broadcasting, V3 with output type).
 * float32 weights take the WebAssembly path where it has one.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { allocate, DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, shapeString, Tensor } from "../tensor/tensor.ts";
import { broadcastShapes, forEachBlock, stridedPlan } from "./broadcast.ts";
import {
  checkAllowed,
  decodeFloat16,
  encodeFloat16,
  isFloat16,
  specialize,
  unsupportedDtype,
} from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";
import { denseF32, isWeightSource } from "./wasm/dense.ts";

const T = DataType;

// ---------------------------------------------------------------------------------------------
// MatMul
// ---------------------------------------------------------------------------------------------

/**
 * out[M,N] = op(A) · op(B) for matrices at offsets in flat storage; op transposes when `ta`/`tb`.
 * The element type's arithmetic comes from `add`, `mul`, `zero` and the accumulator array `Acc`.
 */
type Gemm = (
  a: NumericArray,
  aOff: number,
  b: NumericArray,
  bOff: number,
  o: NumericArray,
  oOff: number,
  M: number,
  K: number,
  N: number,
  ta: boolean,
  tb: boolean,
) => void;

// Two loop orders. When B is transposed (its rows are our columns; with many rows of A it is
// transposed back first) or N is small, each output is a dot product, computed four outputs at a time so each A element is loaded once per four
// products. Otherwise i-k-j: four rows of A at a time sweep rows of B, accumulating four output
// rows, which reads B once per four rows and keeps every inner access contiguous.
const GEMM_SOURCE = `return function gemm(a, aOff, b, bOff, o, oOff, M, K, N, ta, tb) {
  const ais = ta ? 1 : K, aks = ta ? M : 1;
  if (tb && M >= 8 && N > 16) {
    // Enough rows to pay for transposing B once and taking the faster i-k-j path.
    const t = new b.constructor(K * N);
    for (let j = 0; j < N; j++) {
      for (let k = 0, src = bOff + j * K; k < K; k++) t[k * N + j] = b[src + k];
    }
    b = t; bOff = 0; tb = false;
  }
  if (tb || N <= 16) {
    const bjs = tb ? K : 1, bks = tb ? 1 : N;
    const b1 = bjs, b2 = 2 * bjs, b3 = 3 * bjs;
    for (let i = 0; i < M; i++) {
      const ai = aOff + i * ais, oi = oOff + i * N;
      let j = 0;
      for (; j + 4 <= N; j += 4) {
        let s0 = zero, s1 = zero, s2 = zero, s3 = zero;
        for (let k = 0, ak = ai, bk = bOff + j * bjs; k < K; k++, ak += aks, bk += bks) {
          const av = a[ak];
          s0 = add(s0, mul(av, b[bk]));
          s1 = add(s1, mul(av, b[bk + b1]));
          s2 = add(s2, mul(av, b[bk + b2]));
          s3 = add(s3, mul(av, b[bk + b3]));
        }
        o[oi + j] = s0; o[oi + j + 1] = s1; o[oi + j + 2] = s2; o[oi + j + 3] = s3;
      }
      for (; j < N; j++) {
        let s = zero;
        for (let k = 0, ak = ai, bk = bOff + j * bjs; k < K; k++, ak += aks, bk += bks) {
          s = add(s, mul(a[ak], b[bk]));
        }
        o[oi + j] = s;
      }
    }
    return;
  }
  const acc = new Acc(4 * N);
  const N2 = 2 * N, N3 = 3 * N;
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    acc.fill(zero);
    const a0 = aOff + i * ais, a1 = a0 + ais, a2 = a1 + ais, a3 = a2 + ais;
    for (let k = 0, ko = 0, bo = bOff; k < K; k++, ko += aks, bo += N) {
      const v0 = a[a0 + ko], v1 = a[a1 + ko], v2 = a[a2 + ko], v3 = a[a3 + ko];
      for (let j = 0; j < N; j++) {
        const bv = b[bo + j];
        acc[j] = add(acc[j], mul(v0, bv));
        acc[N + j] = add(acc[N + j], mul(v1, bv));
        acc[N2 + j] = add(acc[N2 + j], mul(v2, bv));
        acc[N3 + j] = add(acc[N3 + j], mul(v3, bv));
      }
    }
    const oi = oOff + i * N;
    for (let j = 0; j < 4 * N; j++) o[oi + j] = acc[j];
  }
  for (; i < M; i++) {
    acc.fill(zero, 0, N);
    for (let k = 0, ak = aOff + i * ais, bo = bOff; k < K; k++, ak += aks, bo += N) {
      const v = a[ak];
      for (let j = 0; j < N; j++) acc[j] = add(acc[j], mul(v, b[bo + j]));
    }
    const oi = oOff + i * N;
    for (let j = 0; j < N; j++) o[oi + j] = acc[j];
  }
};`;

const gemms = new Map<DataType, Gemm>();

/** The matrix product loop for a dtype (float32/float64 accumulate in double). */
function gemmFor(dtype: DataType): Gemm {
  let g = gemms.get(dtype);
  if (g !== undefined) return g;
  const params = ["add", "mul", "zero", "Acc"];
  switch (dtype) {
    case T.DT_FLOAT:
    case T.DT_DOUBLE:
      g = specialize<Gemm>(
        params,
        GEMM_SOURCE,
        (s: number, p: number) => s + p,
        (x: number, y: number) => x * y,
        0,
        Float64Array,
      );
      break;
    case T.DT_INT32:
      g = specialize<Gemm>(
        params,
        GEMM_SOURCE,
        (s: number, p: number) => (s + p) | 0,
        Math.imul,
        0,
        Float64Array,
      );
      break;
    default: // DT_INT64
      g = specialize<Gemm>(
        params,
        GEMM_SOURCE,
        (s: bigint, p: bigint) => BigInt.asIntN(64, s + p),
        (x: bigint, y: bigint) => x * y,
        0n,
        BigInt64Array,
      );
  }
  gemms.set(dtype, g);
  return g;
}

export const MATMUL_TYPES = [
  T.DT_FLOAT,
  T.DT_DOUBLE,
  T.DT_HALF,
  T.DT_BFLOAT16,
  T.DT_INT32,
  T.DT_INT64,
];

/** Storage to multiply: 16-bit floats decoded to float32. */
export function gemmInput(t: Tensor): NumericArray {
  return isFloat16(t.dtype) ? decodeFloat16(t.data as Uint16Array, t.dtype) : t.numbers;
}

/** Wraps a gemm result in the output dtype (16-bit floats encoded back). */
export function gemmOutput(dtype: DataType, shape: Shape, data: NumericArray): Tensor {
  if (isFloat16(dtype)) return new Tensor(dtype, shape, encodeFloat16(data as Float32Array, dtype));
  return new Tensor(dtype, shape, data);
}

function checkSameType(op: string, node: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) {
    throw invalidArgument(
      `${op} needs two inputs of one type, got ${dtypeName(a.dtype)} and ` +
        `${dtypeName(b.dtype)} (node "${node}")`,
    );
  }
  if (!MATMUL_TYPES.includes(a.dtype)) throw unsupportedDtype(op, node, a.dtype);
}

/**
 * MatMul: attrs transpose_a, transpose_b. float32 products with a persistent right-hand operand
 * and no transpose_a run in the WebAssembly SIMD kernel; the rest in the JavaScript loops.
 */
const matMulKernel: Kernel = {
  op: "MatMul",
  compile(ctx) {
    const node = ctx.name;
    if (ctx.attr.has("T")) checkAllowed("MatMul", node, MATMUL_TYPES, ctx.attr.type("T"));
    const ta = ctx.attr.bool("transpose_a", false);
    const tb = ctx.attr.bool("transpose_b", false);
    // Only weights (constants, variables) go to WebAssembly (see isWeightSource).
    const wasm = !ta && isWeightSource(ctx.inputOps[1] ?? "");
    return (inputs) => {
      const [a, b] = inputs;
      checkSameType("MatMul", node, a, b);
      if (a.rank !== 2) {
        throw invalidArgument(
          `In[0] is not a matrix. Instead it has shape ${shapeString(a.shape)}`,
        );
      }
      if (b.rank !== 2) {
        throw invalidArgument(
          `In[1] is not a matrix. Instead it has shape ${shapeString(b.shape)}`,
        );
      }
      const M = ta ? a.shape[1] : a.shape[0];
      const K = ta ? a.shape[0] : a.shape[1];
      const K2 = tb ? b.shape[1] : b.shape[0];
      const N = tb ? b.shape[0] : b.shape[1];
      if (K !== K2) {
        throw invalidArgument(
          `Matrix size-incompatible: In[0]: ${shapeString(a.shape)}, In[1]: ${
            shapeString(b.shape)
          }`,
        );
      }
      // M × N comes from two inputs of size M × K and K × N: a request can make it huge.
      checkedElements([M, N], "MatMul output");
      if (wasm && a.dtype === T.DT_FLOAT) {
        // WebAssembly SIMD, accumulating in float32 as TensorFlow's Eigen kernel does; null
        // (no SIMD, switched off, out of memory, empty product) falls through to the loops.
        const y = denseF32(
          a.data as Float32Array,
          b.data as Float32Array,
          null,
          M,
          K,
          N,
          tb,
          false,
        );
        if (y !== null) return [new Tensor(T.DT_FLOAT, [M, N], y)];
      }
      const work = isFloat16(a.dtype) ? T.DT_FLOAT : a.dtype;
      const out = allocate(work, M * N);
      gemmFor(work)(gemmInput(a), 0, gemmInput(b), 0, out, 0, M, K, N, ta, tb);
      return [gemmOutput(a.dtype, [M, N], out)];
    };
  },
};

/**
 * Batched products: for every index of the broadcast `batch` shape, the M×N product of the
 * matching matrices of `a` (batch dims `aBatch`, then M×K, or K×M with `ta`) and `b` (batch dims
 * `bBatch`, then K×N, or N×K with `tb`). Shared by BatchMatMul and Einsum.
 */
export function batchedGemm(
  work: DataType,
  a: NumericArray,
  aBatch: Shape,
  b: NumericArray,
  bBatch: Shape,
  batch: Shape,
  M: number,
  K: number,
  N: number,
  ta: boolean,
  tb: boolean,
): NumericArray {
  const gemm = gemmFor(work);
  const mn = M * N;
  const out = allocate(work, checkedElements([...batch, M, N], "BatchMatMul output"));
  const plan = stridedPlan([aBatch, bBatch], batch);
  const r = plan.dims.length;
  const n0 = plan.dims[r - 2], n1 = plan.dims[r - 1];
  const [sx, sy] = plan.strides;
  const am = M * K, bm = K * N;
  forEachBlock(plan, (off, first) => {
    let o = first * mn;
    for (let i = 0; i < n0; i++) {
      let xi = off[0] + i * sx[r - 2];
      let yi = off[1] + i * sy[r - 2];
      for (let j = 0; j < n1; j++, xi += sx[r - 1], yi += sy[r - 1], o += mn) {
        gemm(a, xi * am, b, yi * bm, out, o, M, K, N, ta, tb);
      }
    }
  });
  return out;
}

/**
 * BatchMatMul (V1: equal batch dims), BatchMatMulV2 and V3 (broadcast batch dims): attrs
 * adj_x, adj_y (adjoint = transpose for real types).
 */
function batchMatMulKernel(op: "BatchMatMul" | "BatchMatMulV2" | "BatchMatMulV3"): Kernel {
  return {
    op,
    compile(ctx) {
      const node = ctx.name;
      const adjX = ctx.attr.bool("adj_x", false);
      const adjY = ctx.attr.bool("adj_y", false);
      if (op === "BatchMatMulV3") {
        const ta = ctx.attr.type("Ta");
        const tb = ctx.attr.type("Tb");
        const tout = ctx.attr.type("Tout");
        if (ta !== tb || ta !== tout) {
          throw new ServingError(
            Code.UNIMPLEMENTED,
            `BatchMatMulV3 with Ta=${dtypeName(ta)}, Tb=${dtypeName(tb)}, Tout=${
              dtypeName(tout)
            } is not implemented (node "${node}")`,
          );
        }
        checkAllowed(op, node, MATMUL_TYPES, ta);
      } else if (ctx.attr.has("T")) {
        checkAllowed(op, node, MATMUL_TYPES, ctx.attr.type("T"));
      }
      return (inputs) => {
        const [x, y] = inputs;
        checkSameType(op, node, x, y);
        const rx = x.rank;
        const ry = y.rank;
        if (op === "BatchMatMul") {
          if (rx !== ry) {
            throw invalidArgument(
              `In[0] and In[1] has different ndims: ${shapeString(x.shape)} vs. ${
                shapeString(y.shape)
              }`,
            );
          }
          if (rx < 2) throw invalidArgument(`In[0] ndims must be >= 2: ${rx}`);
          for (let i = 0; i < rx - 2; i++) {
            if (x.shape[i] !== y.shape[i]) {
              throw invalidArgument(
                `In[0].dim(${i}) and In[1].dim(${i}) must be the same: ${shapeString(x.shape)} vs ${
                  shapeString(y.shape)
                }`,
              );
            }
          }
        }
        if (rx < 2) throw invalidArgument(`In[0] ndims must be >= 2: ${rx}`);
        if (ry < 2) throw invalidArgument(`In[1] ndims must be >= 2: ${ry}`);
        const xBatch = x.shape.slice(0, rx - 2);
        const yBatch = y.shape.slice(0, ry - 2);
        let batch: number[];
        try {
          batch = broadcastShapes(xBatch, yBatch);
        } catch {
          throw invalidArgument(
            `In[0] and In[1] must have compatible batch dimensions: ${shapeString(x.shape)} vs. ${
              shapeString(y.shape)
            }`,
          );
        }
        const xr = x.shape[rx - 2], xc = x.shape[rx - 1];
        const yr = y.shape[ry - 2], yc = y.shape[ry - 1];
        const M = adjX ? xc : xr;
        const K = adjX ? xr : xc;
        const K2 = adjY ? yc : yr;
        const N = adjY ? yr : yc;
        if (K !== K2) {
          throw invalidArgument(
            `In[0] mismatch In[1] shape: ${K} vs. ${K2}: ${shapeString(x.shape)} ${
              shapeString(y.shape)
            } ${adjX ? 1 : 0} ${adjY ? 1 : 0}`,
          );
        }
        const work = isFloat16(x.dtype) ? T.DT_FLOAT : x.dtype;
        const out = batchedGemm(
          work,
          gemmInput(x),
          xBatch,
          gemmInput(y),
          yBatch,
          batch,
          M,
          K,
          N,
          adjX,
          adjY,
        );
        return [gemmOutput(x.dtype, [...batch, M, N], out)];
      };
    },
  };
}

/** The matrix product kernels: MatMul, BatchMatMul, BatchMatMulV2, BatchMatMulV3. */
export const matMulKernels: Kernel[] = [
  matMulKernel,
  batchMatMulKernel("BatchMatMul"),
  batchMatMulKernel("BatchMatMulV2"),
  batchMatMulKernel("BatchMatMulV3"),
];
