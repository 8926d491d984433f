/**
 * Random ops with TensorFlow's numbers (see `philox.ts` for the generator and distributions):
 *
 * - stateful `RandomUniform`, `RandomStandardNormal`, `TruncatedNormal`, `RandomUniformInt`:
 *   each node owns a Philox generator seeded from its `seed`/`seed2` attrs as
 *   GuardedPhiloxRandom does (both 0 → a fresh random seed), kept in the model's resources so
 *   it lives as long as the loaded version, like a kernel of a TensorFlow session; every run
 *   takes the generator's state and advances it by 256 draws per output element
 *   (ReserveRandomOutputs(n, 256)), so the k-th run of a seeded graph returns TensorFlow's k-th
 *   result;
 * - stateless `StatelessRandomUniform`, `StatelessRandomNormal`, `StatelessTruncatedNormal`,
 *   `StatelessRandomUniformInt` (seed pair scrambled by GenerateKey), their V2 forms taking an
 *   explicit key/counter/algorithm (Philox only), and `StatelessRandomGetKeyCounter`,
 *   `StatelessRandomGetAlg`, `StatelessRandomGetKeyCounterAlg` that TF2's
 *   `tf.random.stateless_*` emit before them.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { allocate, DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import type { Resource, Shape, Tensor as TensorT } from "../tensor/tensor.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { numberToBfloat16Bits, numberToHalfBits } from "./elementwise.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import {
  type Distribution,
  fillPhilox,
  normal,
  Philox,
  type RealKind,
  statelessGenerator,
  truncatedNormal,
  uniformInt32,
  uniformInt64,
  uniformReal,
} from "./philox.ts";
import { FLOATS } from "./dtypes.ts";
import { checkedElements } from "./sizes.ts";

const T = DataType;

/** Real output types and their distribution kind. */
const REAL_KINDS = new Map<DataType, RealKind>([
  [T.DT_FLOAT, "float"],
  [T.DT_DOUBLE, "double"],
  [T.DT_HALF, "half"],
  [T.DT_BFLOAT16, "bfloat16"],
]);

function refuse(ctx: KernelContext, attr: string, value: string, supported: string): ServingError {
  return new ServingError(
    Code.UNIMPLEMENTED,
    `${ctx.op} node "${ctx.name}": attr ${attr}=${value} is not supported (supported: ${supported})`,
  );
}

function realKind(ctx: KernelContext, attr = "dtype", allowed = [...REAL_KINDS.keys()]): RealKind {
  const t = ctx.attr.type(attr);
  const kind = REAL_KINDS.get(t);
  if (kind === undefined || !allowed.includes(t)) {
    throw refuse(ctx, attr, dtypeName(t), allowed.map(dtypeName).join(", "));
  }
  return kind;
}

/** A raw int attr as a bigint (seeds are int64; a JS number would lose bits). */
function intAttr(ctx: KernelContext, name: string): bigint {
  const v = ctx.attr.values[name];
  if (v === undefined) return 0n;
  if (v.value.case !== "i") {
    throw invalidArgument(`Cannot read attr "${name}" of node "${ctx.name}": expected i`);
  }
  return v.value.value;
}

/** The output shape from a `shape` input (a vector of int32/int64), size-checked. */
function shapeOf(t: TensorT, op: string): number[] {
  if (t.rank > 1) {
    throw invalidArgument(
      `shape must be a vector of {int32,int64}, got shape ${shapeString(t.shape)}`,
    );
  }
  const dims = toIntArray(t, "shape");
  for (const d of dims) {
    if (d < 0) throw invalidArgument(`Dimension ${d} must be >= 0`);
  }
  checkedElements(dims, op);
  return dims;
}

/** Fills a tensor of `dtype` and `shape` with `dist` drawn from `gen`. */
function generate(dtype: DataType, shape: Shape, gen: Philox, dist: Distribution): Tensor {
  const n = checkedElements(shape, "random output");
  const data = allocate(dtype, n) as NumericArray;
  let store: (i: number, v: number | bigint) => void;
  if (dtype === T.DT_HALF) {
    const d = data as Uint16Array;
    store = (i, v) => d[i] = numberToHalfBits(v as number);
  } else if (dtype === T.DT_BFLOAT16) {
    const d = data as Uint16Array;
    store = (i, v) => d[i] = numberToBfloat16Bits(v as number);
  } else if (dtype === T.DT_INT64) {
    const d = data as BigInt64Array;
    store = (i, v) => d[i] = v as bigint;
  } else {
    const d = data as Float32Array;
    store = (i, v) => d[i] = v as number;
  }
  if (n > 0) fillPhilox(gen, n, dist, store);
  return new Tensor(dtype, shape, data);
}

// ---------------------------------------------------------------------------------------------
// Stateful ops

/** The generator of one stateful random node (GuardedPhiloxRandom). */
class GuardedPhilox implements Resource {
  readonly gen: Philox;
  constructor(readonly key: string, seed: bigint, seed2: bigint) {
    if (seed === 0n && seed2 === 0n) {
      // Both seeds unset: a fresh random seed, as random::New64() gives TensorFlow.
      const r = crypto.getRandomValues(new BigUint64Array(2));
      seed = r[0];
      seed2 = r[1];
    }
    this.gen = Philox.fromSeeds(seed, seed2);
  }

  /** ReserveRandomOutputs(count, 256): the current state, then skip count · 256 draws. */
  reserve(count: number): Philox {
    const local = this.gen.clone();
    this.gen.skip(count * 256);
    return local;
  }
}

function guarded(ctx: KernelContext): GuardedPhilox {
  const seed = intAttr(ctx, "seed");
  const seed2 = intAttr(ctx, "seed2");
  const key = `_random/${ctx.name}`;
  return ctx.resources.lookupOrCreate(key, () => new GuardedPhilox(key, seed, seed2));
}

function checkShapeType(ctx: KernelContext): void {
  if (!ctx.attr.has("T")) return;
  const t = ctx.attr.type("T");
  if (t !== T.DT_INT32 && t !== T.DT_INT64) {
    throw refuse(ctx, "T", dtypeName(t), "DT_INT32, DT_INT64");
  }
}

function statefulReal(op: string, make: (k: RealKind) => Distribution): Kernel {
  return {
    op,
    compile(ctx) {
      const dtype = ctx.attr.type("dtype");
      const kind = realKind(ctx);
      checkShapeType(ctx);
      const dist = make(kind);
      const state = guarded(ctx);
      return ([shapeT]) => {
        const shape = shapeOf(shapeT, op);
        const n = checkedElements(shape, op);
        return [generate(dtype, shape, state.reserve(n), dist)];
      };
    },
  };
}

/** The two 0-D bounds of a uniform-int op, checked as TensorFlow checks them. */
function intBounds(minT: TensorT, maxT: TensorT): [bigint, bigint] {
  if (minT.rank !== 0) {
    throw invalidArgument(`minval must be 0-D, got shape ${shapeString(minT.shape)}`);
  }
  if (maxT.rank !== 0) {
    throw invalidArgument(`maxval must be 0-D, got shape ${shapeString(maxT.shape)}`);
  }
  const lo = BigInt((minT.data as NumericArray)[0]);
  const hi = BigInt((maxT.data as NumericArray)[0]);
  return [lo, hi];
}

function intDist(dtype: DataType, lo: bigint, hi: bigint): Distribution {
  if (!(lo < hi)) throw invalidArgument(`Need minval < maxval, got ${lo} >= ${hi}`);
  return dtype === T.DT_INT64 ? uniformInt64(lo, hi) : uniformInt32(Number(lo), Number(hi));
}

function intType(ctx: KernelContext, attr: string): DataType {
  const t = ctx.attr.type(attr);
  if (t !== T.DT_INT32 && t !== T.DT_INT64) {
    throw refuse(ctx, attr, dtypeName(t), "DT_INT32, DT_INT64");
  }
  return t;
}

const randomUniformInt: Kernel = {
  op: "RandomUniformInt",
  compile(ctx) {
    const dtype = intType(ctx, "Tout");
    checkShapeType(ctx);
    const state = guarded(ctx);
    return ([shapeT, minT, maxT]) => {
      const [lo, hi] = intBounds(minT, maxT);
      const shape = shapeOf(shapeT, ctx.op);
      const n = checkedElements(shape, ctx.op);
      // Zero outputs need no valid range (TensorFlow returns before checking it).
      if (n === 0) return [Tensor.zeros(dtype, shape)];
      return [generate(dtype, shape, state.reserve(n), intDist(dtype, lo, hi))];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Stateless ops

function seedPair(seedT: TensorT): [bigint, bigint] {
  if (!(seedT.rank === 1 && seedT.shape[0] === 2)) {
    throw invalidArgument(`seed must have shape [2], not ${shapeString(seedT.shape)}`);
  }
  if (seedT.dtype !== T.DT_INT32 && seedT.dtype !== T.DT_INT64) {
    throw invalidArgument(`Invalid seed type: ${dtypeName(seedT.dtype)}`);
  }
  // An int32 seed widens to uint64 with its sign, as the C++ assignment does.
  const d = seedT.data as Int32Array | BigInt64Array;
  return [BigInt(d[0]), BigInt(d[1])];
}

function statelessReal(op: string, make: (k: RealKind) => Distribution): Kernel {
  return {
    op,
    compile(ctx) {
      const dtype = ctx.attr.type("dtype", T.DT_FLOAT);
      const kind = REAL_KINDS.get(dtype);
      if (kind === undefined || !FLOATS.includes(dtype)) {
        throw refuse(ctx, "dtype", dtypeName(dtype), FLOATS.map(dtypeName).join(", "));
      }
      checkShapeType(ctx);
      if (ctx.attr.has("Tseed")) intType(ctx, "Tseed");
      const dist = make(kind);
      return ([shapeT, seedT]) => {
        const shape = shapeOf(shapeT, op);
        const [s0, s1] = seedPair(seedT);
        return [generate(dtype, shape, statelessGenerator(s0, s1), dist)];
      };
    },
  };
}

const statelessUniformInt: Kernel = {
  op: "StatelessRandomUniformInt",
  compile(ctx) {
    const dtype = intType(ctx, "dtype");
    checkShapeType(ctx);
    if (ctx.attr.has("Tseed")) intType(ctx, "Tseed");
    return ([shapeT, seedT, minT, maxT]) => {
      const shape = shapeOf(shapeT, ctx.op);
      const [s0, s1] = seedPair(seedT);
      const [lo, hi] = intBounds(minT, maxT);
      if (checkedElements(shape, ctx.op) === 0) return [Tensor.zeros(dtype, shape)];
      return [generate(dtype, shape, statelessGenerator(s0, s1), intDist(dtype, lo, hi))];
    };
  },
};

// V2: an explicit key [1] and counter [2] (uint64) and an algorithm id.

/** RNG_ALG_PHILOX and RNG_ALG_AUTO_SELECT (Philox on CPU); RNG_ALG_THREEFRY = 2 is not here. */
const ALG_PHILOX = 1;
const ALG_AUTO = 3;

function v2Generator(keyT: TensorT, counterT: TensorT, algT: TensorT): Philox {
  if (algT.rank !== 0) {
    throw invalidArgument(`alg must be a scalar, got shape ${shapeString(algT.shape)}`);
  }
  const alg = toIntArray(algT, "alg")[0];
  if (alg !== ALG_PHILOX && alg !== ALG_AUTO) {
    throw new ServingError(Code.UNIMPLEMENTED, `Unsupported algorithm id: ${alg}`);
  }
  if (!(keyT.rank === 1 && keyT.shape[0] === 1)) {
    throw invalidArgument(`key must have shape [1], not ${shapeString(keyT.shape)}`);
  }
  if (counterT.rank !== 1 || counterT.shape[0] < 2) {
    throw invalidArgument(
      `The first dimension of counter must be at least 2, got shape ${shapeString(counterT.shape)}`,
    );
  }
  const k = BigInt.asUintN(64, BigInt((keyT.data as BigUint64Array)[0]));
  const c = counterT.data as BigUint64Array;
  const c0 = BigInt.asUintN(64, BigInt(c[0]));
  const c1 = BigInt.asUintN(64, BigInt(c[1]));
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  const hi = (v: bigint) => Number(v >> 32n);
  return new Philox(
    Uint32Array.of(lo(c0), hi(c0), lo(c1), hi(c1)),
    Uint32Array.of(lo(k), hi(k)),
  );
}

function statelessRealV2(op: string, make: (k: RealKind) => Distribution): Kernel {
  return {
    op,
    compile(ctx) {
      const dtype = ctx.attr.type("dtype", T.DT_FLOAT);
      const kind = REAL_KINDS.get(dtype);
      if (kind === undefined || !FLOATS.includes(dtype)) {
        throw refuse(ctx, "dtype", dtypeName(dtype), FLOATS.map(dtypeName).join(", "));
      }
      if (ctx.attr.has("Tshape")) intType(ctx, "Tshape");
      const dist = make(kind);
      return ([shapeT, keyT, counterT, algT]) => {
        const shape = shapeOf(shapeT, op);
        return [generate(dtype, shape, v2Generator(keyT, counterT, algT), dist)];
      };
    },
  };
}

/** Key and counter of GenerateKey as StatelessRandomGetKeyCounter returns them (uint64). */
function keyCounter(seedT: TensorT): [Tensor, Tensor] {
  const [s0, s1] = seedPair(seedT);
  const g = statelessGenerator(s0, s1);
  const w = (lo: number, hi: number) => (BigInt(hi) << 32n) | BigInt(lo);
  return [
    new Tensor(T.DT_UINT64, [1], BigUint64Array.of(w(g.key[0], g.key[1]))),
    new Tensor(
      T.DT_UINT64,
      [2],
      BigUint64Array.of(w(g.counter[0], g.counter[1]), w(g.counter[2], g.counter[3])),
    ),
  ];
}

const statelessHelpers: Kernel[] = [
  {
    op: "StatelessRandomGetKeyCounter",
    compile: () => ([seedT]) => keyCounter(seedT),
  },
  {
    op: "StatelessRandomGetAlg",
    compile: () => () => [Tensor.scalar(T.DT_INT32, ALG_PHILOX)],
  },
  {
    op: "StatelessRandomGetKeyCounterAlg",
    compile: () => ([seedT]) => [...keyCounter(seedT), Tensor.scalar(T.DT_INT32, ALG_PHILOX)],
  },
];

/** Random kernels. */
export const randomKernels: Kernel[] = [
  statefulReal("RandomUniform", uniformReal),
  statefulReal("RandomStandardNormal", normal),
  statefulReal("TruncatedNormal", truncatedNormal),
  randomUniformInt,
  statelessReal("StatelessRandomUniform", uniformReal),
  statelessReal("StatelessRandomNormal", normal),
  statelessReal("StatelessTruncatedNormal", truncatedNormal),
  statelessUniformInt,
  statelessRealV2("StatelessRandomUniformV2", uniformReal),
  statelessRealV2("StatelessRandomNormalV2", normal),
  statelessRealV2("StatelessTruncatedNormalV2", truncatedNormal),
  ...statelessHelpers,
];
