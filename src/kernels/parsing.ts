/**
 * tf.Example parsing: `ParseExample`, `ParseExampleV2` and `ParseSingleExample`, following
 * `tensorflow/core/kernels/example_parsing_ops.cc` and `util/example_proto_fast_parsing.cc`
 * (FastParseExample / FastParseSingleExample), including their error messages.
 *
 * Each serialized Example is scanned once; only the configured keys are looked at, and their
 * values are read straight into the output storage (dense float features: one byte copy per
 * Example).
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import {
  FeatureKind,
  featureKind,
  FeatureLocator,
  KeyIndex,
  readBytesList,
  readFloatList,
  readInt64List,
  unparsableExample,
} from "../tensor/example.ts";
import { shapeString, sizeOf, Tensor } from "../tensor/tensor.ts";
import type { Attrs } from "./attrs.ts";
import { checkedElements } from "./sizes.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";

const decoder = new TextDecoder();

/** TensorFlow's DataTypeString: `float`, `int64`, `string`. */
function typeString(t: DataType): string {
  return dtypeName(t).replace(/^DT_/, "").toLowerCase();
}

/** PartialTensorShape::DebugString: `[?,2]`, or `<unknown>` for unknown rank. */
function partialShapeString(shape: readonly number[] | undefined): string {
  if (shape === undefined) return "<unknown>";
  return `[${shape.map((d) => (d < 0 ? "?" : String(d))).join(",")}]`;
}

function kindOf(dtype: DataType): FeatureKind {
  switch (dtype) {
    case DataType.DT_STRING:
      return FeatureKind.Bytes;
    case DataType.DT_FLOAT:
      return FeatureKind.Float;
    default:
      return FeatureKind.Int64;
  }
}

const KIND_TYPES: Record<number, DataType> = {
  [FeatureKind.Bytes]: DataType.DT_STRING,
  [FeatureKind.Float]: DataType.DT_FLOAT,
  [FeatureKind.Int64]: DataType.DT_INT64,
};

const LIST_NAMES: Record<number, string> = {
  [FeatureKind.Bytes]: "bytes",
  [FeatureKind.Float]: "float",
  [FeatureKind.Int64]: "int64",
};

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** A dense feature's static config (from attrs). */
interface DenseAttr {
  readonly dtype: DataType;
  /** The `dense_shapes` entry, possibly with a leading -1 (variable length). */
  readonly shape: readonly number[];
  readonly variableLength: boolean;
  /** Elements per row: the product of the shape without a variable first dim. */
  readonly stride: number;
  /** The shape after the variable first dim (variable-length features only). */
  readonly inner: readonly number[];
}

/** The attrs of one parse node, validated once at compile time. */
interface ParseAttrs {
  readonly dense: readonly DenseAttr[];
  readonly sparseTypes: readonly DataType[];
  readonly raggedTypes: readonly DataType[];
  readonly raggedSplitTypes: readonly DataType[];
}

function checkValidType(t: DataType): void {
  if (t !== DataType.DT_INT64 && t !== DataType.DT_FLOAT && t !== DataType.DT_STRING) {
    throw invalid(`Received input dtype: ${typeString(t)}`);
  }
}

/** ParseExampleAttrs::Init + GetDenseShapes + FinishInit. */
function readAttrs(attr: Attrs, version: 1 | 2 | "single"): ParseAttrs {
  const sparseTypes = attr.types("sparse_types", []);
  const denseTypes = attr.types("Tdense", []);
  const denseShapes = attr.shapes("dense_shapes", []);
  let numSparse: number;
  let numDense = denseTypes.length;
  let raggedTypes: DataType[] = [];
  let raggedSplitTypes: DataType[] = [];
  if (version === 1) {
    numSparse = attr.int("Nsparse", sparseTypes.length);
    numDense = attr.int("Ndense", denseTypes.length);
  } else if (version === 2) {
    numSparse = attr.int("num_sparse", sparseTypes.length);
    raggedTypes = attr.types("ragged_value_types", []);
    raggedSplitTypes = attr.types("ragged_split_types", []);
  } else {
    numSparse = attr.int("num_sparse", sparseTypes.length);
  }
  if (numSparse !== sparseTypes.length) throw invalid("len(sparse_keys) != len(sparse_types)");
  if (numDense !== denseTypes.length) throw invalid("len(dense_keys) != len(dense_types)");
  if (numDense !== denseShapes.length) throw invalid("len(dense_keys) != len(dense_shapes)");
  if (raggedTypes.length !== raggedSplitTypes.length) {
    throw invalid("len(ragged_keys) != len(ragged_split_types)");
  }
  for (const t of [...denseTypes, ...sparseTypes, ...raggedTypes]) checkValidType(t);
  for (const t of raggedSplitTypes) {
    if (t !== DataType.DT_INT32 && t !== DataType.DT_INT64) {
      throw invalid(`Invalid ragged_split_type: ${typeString(t)}`);
    }
  }
  const dense = denseShapes.map((shape, i): DenseAttr => {
    if (shape === undefined || shape.slice(1).some((d) => d < 0)) {
      throw invalid(
        `dense_shapes[${i}] has unknown rank or unknown inner dimensions: ${
          partialShapeString(shape)
        }`,
      );
    }
    const variableLength = shape.length > 0 && shape[0] < 0;
    const inner = variableLength ? shape.slice(1) : shape;
    return { dtype: denseTypes[i], shape, variableLength, stride: sizeOf(inner), inner };
  });
  return { dense, sparseTypes, raggedTypes, raggedSplitTypes };
}

/** The keys of one run, resolved against the attrs (cached while the key tensors repeat). */
interface KeyConfig {
  readonly denseNames: string[];
  readonly sparseNames: string[];
  readonly raggedNames: string[];
  /** Dense keys first, then sparse, then ragged. */
  readonly index: KeyIndex;
}

function buildKeyConfig(dense: Uint8Array[], sparse: Uint8Array[], ragged: Uint8Array[]) {
  const all = [...dense, ...sparse, ...ragged];
  return {
    denseNames: dense.map((k) => decoder.decode(k)),
    sparseNames: sparse.map((k) => decoder.decode(k)),
    raggedNames: ragged.map((k) => decoder.decode(k)),
    index: new KeyIndex(all),
  };
}

/** Remembers the KeyConfig of the last run while the same key tensors come back. */
class KeyCache {
  #tensors: readonly Tensor[] = [];
  #config: KeyConfig | undefined;

  get(tensors: readonly Tensor[], make: () => KeyConfig): KeyConfig {
    if (
      this.#config !== undefined && tensors.length === this.#tensors.length &&
      tensors.every((t, i) => t === this.#tensors[i])
    ) {
      return this.#config;
    }
    const config = make();
    this.#tensors = tensors;
    this.#config = config;
    return config;
  }
}

/** Growable storage for the values of one sparse, ragged or variable-length dense feature. */
class ValueBuffer {
  f32: Float32Array = new Float32Array(16);
  f32bits: Int32Array = new Int32Array(this.f32.buffer);
  i64: BigInt64Array = new BigInt64Array(16);
  i32: Int32Array = new Int32Array(this.i64.buffer);
  bytes: Uint8Array[] = [];
  length = 0;
  /** Cumulative value count after each Example. */
  readonly ends: Int32Array;

  constructor(readonly kind: FeatureKind, batch: number) {
    this.ends = new Int32Array(batch);
  }

  /** Appends the list of the Feature at `buf[start, end)`; returns its length or -1. */
  append(buf: Uint8Array, start: number, end: number): number {
    const at = this.length;
    let n: number;
    if (this.kind === FeatureKind.Float) {
      n = readFloatList(buf, start, end, this.f32bits, at, this.f32.length - at);
      if (n > this.f32.length - at) {
        this.grow(at + n);
        readFloatList(buf, start, end, this.f32bits, at, n);
      }
    } else if (this.kind === FeatureKind.Int64) {
      n = readInt64List(buf, start, end, this.i32, at, this.i64.length - at);
      if (n > this.i64.length - at) {
        this.grow(at + n);
        readInt64List(buf, start, end, this.i32, at, n);
      }
    } else {
      n = readBytesList(buf, start, end, this.bytes, at, Infinity);
    }
    if (n > 0) this.length += n;
    return n;
  }

  private grow(need: number): void {
    let cap = Math.max(16, this.kind === FeatureKind.Float ? this.f32.length : this.i64.length);
    while (cap < need) cap *= 2;
    if (this.kind === FeatureKind.Float) {
      const next = new Float32Array(cap);
      next.set(this.f32.subarray(0, this.length));
      this.f32 = next;
      this.f32bits = new Int32Array(next.buffer);
    } else {
      const next = new BigInt64Array(cap);
      next.set(this.i64.subarray(0, this.length));
      this.i64 = next;
      this.i32 = new Int32Array(next.buffer);
    }
  }

  /** The values as a flat tensor of `shape`. */
  tensor(dtype: DataType, shape: readonly number[]): Tensor {
    const n = this.length;
    if (this.kind === FeatureKind.Float) return new Tensor(dtype, shape, this.f32.slice(0, n));
    if (this.kind === FeatureKind.Int64) return new Tensor(dtype, shape, this.i64.slice(0, n));
    return new Tensor(dtype, shape, this.bytes.length === n ? this.bytes : this.bytes.slice(0, n));
  }

  /** Largest per-Example count. */
  maxCount(): number {
    let max = 0;
    let prev = 0;
    for (let i = 0; i < this.ends.length; i++) {
      const c = this.ends[i] - prev;
      if (c > max) max = c;
      prev = this.ends[i];
    }
    return max;
  }
}

/** Everything one parse needs: resolved keys, defaults and the mode. */
interface Job {
  readonly attrs: ParseAttrs;
  readonly keys: KeyConfig;
  readonly defaults: readonly Tensor[];
  /** Serialized Examples. */
  readonly serialized: readonly Uint8Array[];
  /** Example names for messages (may be empty). */
  readonly names: readonly Uint8Array[];
  /** A scalar input (FastParseSingleExample): no batch dimension, other messages. */
  readonly single: boolean;
}

interface ParseResult {
  sparseIndices: Tensor[];
  sparseValues: Tensor[];
  sparseShapes: Tensor[];
  denseValues: Tensor[];
  raggedValues: Tensor[];
  raggedSplits: Tensor[];
}

/** Checks the dense defaults against the attrs (CheckInputShapes upstream). */
function checkDefaults(attrs: ParseAttrs, defaults: readonly Tensor[]): void {
  if (defaults.length !== attrs.dense.length) {
    throw invalid(
      `Expected len(dense_defaults) == len(dense_keys) but got: ${defaults.length} vs. ${attrs.dense.length}`,
    );
  }
  attrs.dense.forEach((d, i) => {
    const def = defaults[i];
    if (d.variableLength) {
      if (def.size !== 1) {
        throw invalid(
          `dense_shape[${i}] is a variable length shape: ${
            partialShapeString(d.shape)
          }, therefore def_value[${i}] must contain a single element (the padding element).  But its shape is: ${
            shapeString(def.shape)
          }`,
        );
      }
    } else if (def.size > 0) {
      const ok = def.rank === d.shape.length &&
        d.shape.every((n, j) => n < 0 || n === def.shape[j]);
      if (!ok) {
        throw invalid(
          `def_value[${i}].shape() == ${
            shapeString(def.shape)
          } is not compatible with dense_shapes_[${i}] == ${partialShapeString(d.shape)}`,
        );
      }
    }
    if (def.dtype !== d.dtype) {
      throw invalid(
        `dense_defaults[${i}].dtype() == ${typeString(def.dtype)} != dense_types_[${i}] == ${
          typeString(d.dtype)
        }`,
      );
    }
  });
}

/** FastParseExample (batch) and FastParseSingleExample (single) over one Job. */
function parse(job: Job): ParseResult {
  const { attrs, keys, defaults, serialized, single } = job;
  const batch = serialized.length;
  const numDense = attrs.dense.length;
  const numSparse = attrs.sparseTypes.length;
  const numRagged = attrs.raggedTypes.length;
  const locator = new FeatureLocator(keys.index);
  const { starts, ends } = locator;

  // Fixed-length dense outputs are written in place; the others are buffered.
  const denseOut: (Float32Array | BigInt64Array | Uint8Array[] | null)[] = [];
  // Int32Array views of float and int64 outputs: values are written as raw words.
  const denseOut32: (Int32Array | null)[] = [];
  const varlen: (ValueBuffer | null)[] = [];
  for (const d of attrs.dense) {
    if (d.variableLength) {
      denseOut.push(null);
      denseOut32.push(null);
      varlen.push(new ValueBuffer(kindOf(d.dtype), batch));
      continue;
    }
    // The batch comes from the request, the row size from the model: their product is checked
    // before the outputs are allocated (an empty serialized Example costs the client 2 bytes).
    const n = checkedElements([batch, d.stride], "ParseExample dense output");
    varlen.push(null);
    if (d.dtype === DataType.DT_FLOAT) {
      const a = new Float32Array(n);
      denseOut.push(a);
      denseOut32.push(new Int32Array(a.buffer));
    } else if (d.dtype === DataType.DT_INT64) {
      const a = new BigInt64Array(n);
      denseOut.push(a);
      denseOut32.push(new Int32Array(a.buffer));
    } else {
      denseOut.push(new Array<Uint8Array>(n));
      denseOut32.push(null);
    }
  }
  const sparse = attrs.sparseTypes.map((t) => new ValueBuffer(kindOf(t), batch));
  const ragged = attrs.raggedTypes.map((t) => new ValueBuffer(kindOf(t), batch));

  const nameOf = (e: number) => job.names.length > 0 ? decoder.decode(job.names[e]) : "<unknown>";
  const exampleError = (e: number, key: string, suffix: string) =>
    invalid(
      single
        ? `Key: ${key}.  ${suffix}`
        : `Name: ${nameOf(e)}, Key: ${key}, Index: ${e}.  ${suffix}`,
    );
  const parseError = (e: number, key: string, kind: FeatureKind, detail: "parse" | "count") =>
    single
      ? invalid(
        `Key: ${key}.  Can't parse serialized Example: ${
          detail === "parse"
            ? `Parsing ${LIST_NAMES[kind]}_list failed.`
            : `Some ${LIST_NAMES[kind]}_list slice was not parsed.`
        }`,
      )
      : exampleError(e, key, "Can't parse serialized Example.");

  for (let e = 0; e < batch; e++) {
    const buf = serialized[e];
    if (!locator.locate(buf)) throw unparsableExample(buf);

    for (let d = 0; d < numDense; d++) {
      const cfg = attrs.dense[d];
      const s = starts[d];
      const kind = s < 0 ? FeatureKind.None : featureKind(buf, s, ends[d]);
      if (kind < 0) throw invalid("Unsupported datatype.");
      const key = keys.denseNames[d];
      if (kind !== FeatureKind.None && KIND_TYPES[kind] !== cfg.dtype) {
        throw exampleError(
          e,
          key,
          `Data types don't match. Data type: ${typeString(KIND_TYPES[kind])} but expected type: ${
            typeString(cfg.dtype)
          }`,
        );
      }
      const vbuf = varlen[d];
      if (vbuf !== null) {
        if (kind !== FeatureKind.None) {
          const n = vbuf.append(buf, s, ends[d]);
          if (n < 0) throw parseError(e, key, kind, "parse");
          if (n % cfg.stride !== 0) {
            throw single
              ? invalid(
                `Error while parsing feature with key ${key}: number of elements should be divisible by ${cfg.stride}, found ${n} instead`,
              )
              : exampleError(
                e,
                key,
                `Number of ${
                  LIST_NAMES[kind]
                } values is not a multiple of stride length. Saw ${n} values but output shape is: ${
                  partialShapeString(cfg.shape)
                }`,
              );
          }
        }
        vbuf.ends[e] = vbuf.length;
        continue;
      }
      const stride = cfg.stride;
      const offset = e * stride;
      const out = denseOut[d]!;
      if (kind === FeatureKind.None) {
        const def = defaults[d];
        if (def.size === 0) {
          throw invalid(
            `${single ? "" : `Name: ${nameOf(e)}, `}Feature: ${key} (data type: ${
              typeString(cfg.dtype)
            }) is required but could not be found.`,
          );
        }
        if (out instanceof Float32Array) out.set(def.data as Float32Array, offset);
        else if (out instanceof BigInt64Array) out.set(def.data as BigInt64Array, offset);
        else {
          const src = def.data as Uint8Array[];
          for (let i = 0; i < stride; i++) out[offset + i] = src[i];
        }
        continue;
      }
      let n: number;
      if (kind === FeatureKind.Float) {
        n = readFloatList(buf, s, ends[d], denseOut32[d]!, offset, stride);
      } else if (kind === FeatureKind.Int64) {
        n = readInt64List(buf, s, ends[d], denseOut32[d]!, offset, stride);
      } else {
        n = readBytesList(buf, s, ends[d], out as Uint8Array[], offset, stride);
        // Upstream's bytes reader fails outright when the list overflows the row.
        if (n > stride) throw parseError(e, key, kind, "parse");
      }
      if (n < 0) throw parseError(e, key, kind, "parse");
      if (n !== stride) {
        throw single ? parseError(e, key, kind, "count") : exampleError(
          e,
          key,
          `Number of ${LIST_NAMES[kind]} values != expected.  Values size: ${n} but output shape: ${
            partialShapeString(cfg.shape)
          }`,
        );
      }
    }

    // Sparse and ragged features: append values, record where this Example ends.
    for (let j = 0; j < numSparse + numRagged; j++) {
      const isSparse = j < numSparse;
      const slot = numDense + j;
      const vbuf = isSparse ? sparse[j] : ragged[j - numSparse];
      const dtype = isSparse ? attrs.sparseTypes[j] : attrs.raggedTypes[j - numSparse];
      const s = starts[slot];
      if (s >= 0) {
        const kind = featureKind(buf, s, ends[slot]);
        if (kind < 0) throw invalid("Unsupported datatype.");
        const key = isSparse ? keys.sparseNames[j] : keys.raggedNames[j - numSparse];
        if (kind !== FeatureKind.None) {
          if (KIND_TYPES[kind] !== dtype) {
            throw exampleError(
              e,
              key,
              `Data types don't match. Expected type: ${typeString(dtype)}, Actual type: ${
                typeString(KIND_TYPES[kind])
              }`,
            );
          }
          if (vbuf.append(buf, s, ends[slot]) < 0) throw parseError(e, key, kind, "parse");
        }
      }
      vbuf.ends[e] = vbuf.length;
    }
  }

  const result: ParseResult = {
    sparseIndices: [],
    sparseValues: [],
    sparseShapes: [],
    denseValues: [],
    raggedValues: [],
    raggedSplits: [],
  };

  attrs.dense.forEach((cfg, d) => {
    const vbuf = varlen[d];
    if (vbuf === null) {
      const shape = single ? cfg.shape : [batch, ...cfg.shape];
      result.denseValues.push(new Tensor(cfg.dtype, shape, denseOut[d]!));
      return;
    }
    if (single) {
      result.denseValues.push(vbuf.tensor(cfg.dtype, [vbuf.length / cfg.stride, ...cfg.inner]));
      return;
    }
    result.denseValues.push(padVarLen(vbuf, cfg, defaults[d], batch));
  });

  sparse.forEach((vbuf, j) => {
    const dtype = attrs.sparseTypes[j];
    const total = vbuf.length;
    if (single) {
      const idx = new BigInt64Array(total);
      const idx32 = new Int32Array(idx.buffer);
      for (let i = 0; i < total; i++) idx32[2 * i] = i;
      result.sparseIndices.push(new Tensor(DataType.DT_INT64, [total, 1], idx));
      result.sparseValues.push(vbuf.tensor(dtype, [total]));
      result.sparseShapes.push(Tensor.int64([total]));
      return;
    }
    const idx = new BigInt64Array(total * 2);
    const idx32 = new Int32Array(idx.buffer);
    let k = 0;
    for (let e = 0; e < batch; e++) {
      const end = vbuf.ends[e];
      for (let f = 0; k < end; k++, f++) {
        idx32[4 * k] = e;
        idx32[4 * k + 2] = f;
      }
    }
    result.sparseIndices.push(new Tensor(DataType.DT_INT64, [total, 2], idx));
    result.sparseValues.push(vbuf.tensor(dtype, [total]));
    result.sparseShapes.push(Tensor.int64([batch, vbuf.maxCount()]));
  });

  ragged.forEach((vbuf, j) => {
    const dtype = attrs.raggedTypes[j];
    const splitType = attrs.raggedSplitTypes[j];
    result.raggedValues.push(vbuf.tensor(dtype, [vbuf.length]));
    if (single) {
      result.raggedSplits.push(Tensor.zeros(splitType, [0]));
      return;
    }
    const splits = [0, ...vbuf.ends];
    result.raggedSplits.push(
      splitType === DataType.DT_INT32 ? Tensor.int32(splits) : Tensor.int64(splits),
    );
  });
  return result;
}

/** Builds `[batch, maxRows, ...inner]` from a variable-length dense buffer, padding with the default. */
function padVarLen(vbuf: ValueBuffer, cfg: DenseAttr, def: Tensor, batch: number): Tensor {
  const maxRows = vbuf.maxCount() / cfg.stride;
  const shape = [batch, maxRows, ...cfg.inner];
  // One long Example pads every other Example of the batch to its length: checked first.
  const total = checkedElements(shape, "ParseExample variable-length dense output");
  const perExample = maxRows * cfg.stride;
  let prev = 0;
  if (vbuf.kind === FeatureKind.Bytes) {
    const pad = (def.data as Uint8Array[])[0];
    const out = new Array<Uint8Array>(total).fill(pad);
    for (let e = 0; e < batch; e++) {
      const end = vbuf.ends[e];
      for (let i = prev; i < end; i++) out[e * perExample + i - prev] = vbuf.bytes[i];
      prev = end;
    }
    return new Tensor(cfg.dtype, shape, out);
  }
  if (vbuf.kind === FeatureKind.Float) {
    const out = new Float32Array(total).fill((def.data as Float32Array)[0]);
    for (let e = 0; e < batch; e++) {
      const end = vbuf.ends[e];
      out.set(vbuf.f32.subarray(prev, end), e * perExample);
      prev = end;
    }
    return new Tensor(cfg.dtype, shape, out);
  }
  const out = new BigInt64Array(total).fill((def.data as BigInt64Array)[0]);
  for (let e = 0; e < batch; e++) {
    const end = vbuf.ends[e];
    out.set(vbuf.i64.subarray(prev, end), e * perExample);
    prev = end;
  }
  return new Tensor(cfg.dtype, shape, out);
}

function stringsOf(t: Tensor, what: string): Uint8Array[] {
  if (t.dtype !== DataType.DT_STRING) {
    throw invalid(`Expected ${what} to be a string tensor, got ${typeString(t.dtype)}`);
  }
  return t.data as Uint8Array[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Checks `names` against `serialized` (CheckInputShapes upstream). */
function checkNames(serialized: Tensor, names: Tensor): Uint8Array[] {
  const n = stringsOf(names, "names");
  if (n.length > 0 && !sameShape(names.shape, serialized.shape)) {
    throw invalid(
      `Expected names have the same shape as serialized: name.shape=${
        shapeString(names.shape)
      }, serialized.shape=${shapeString(serialized.shape)}`,
    );
  }
  return n;
}

function flatOutputs(r: ParseResult, withRagged: boolean): Tensor[] {
  const out = [...r.sparseIndices, ...r.sparseValues, ...r.sparseShapes, ...r.denseValues];
  if (withRagged) out.push(...r.raggedValues, ...r.raggedSplits);
  return out;
}

/** `ParseExample`: serialized [B], names, Nsparse scalar keys, Ndense scalar keys, defaults. */
function compileParseExample(ctx: KernelContext): KernelRun {
  const attrs = readAttrs(ctx.attr, 1);
  const numSparse = attrs.sparseTypes.length;
  const numDense = attrs.dense.length;
  const cache = new KeyCache();
  return (inputs) => {
    const [serialized, names] = inputs;
    if (serialized.rank !== 1) {
      throw invalid(
        `Expected serialized to be a vector, got shape: ${shapeString(serialized.shape)}`,
      );
    }
    const nameBytes = checkNames(serialized, names);
    const keyTensors = inputs.slice(2, 2 + numSparse + numDense);
    const keys = cache.get(keyTensors, () => {
      const scalarKey = (t: Tensor) => stringsOf(t, "a key")[0] ?? new Uint8Array(0);
      return buildKeyConfig(
        keyTensors.slice(numSparse).map(scalarKey),
        keyTensors.slice(0, numSparse).map(scalarKey),
        [],
      );
    });
    const defaults = inputs.slice(2 + numSparse + numDense);
    checkDefaults(attrs, defaults);
    const result = parse({
      attrs,
      keys,
      defaults,
      serialized: stringsOf(serialized, "serialized"),
      names: nameBytes,
      single: false,
    });
    return flatOutputs(result, false);
  };
}

/** `ParseExampleV2`: serialized (scalar or [B]), names, key vectors, defaults; ragged outputs. */
function compileParseExampleV2(ctx: KernelContext): KernelRun {
  const attrs = readAttrs(ctx.attr, 2);
  const cache = new KeyCache();
  return (inputs) => {
    const [serialized, names, sparseKeys, denseKeys, raggedKeys] = inputs;
    if (serialized.rank > 1) {
      throw invalid(
        `Expected serialized to be a scalar or vector, got shape: ${shapeString(serialized.shape)}`,
      );
    }
    const nameBytes = checkNames(serialized, names);
    const keys = cache.get([sparseKeys, denseKeys, raggedKeys], () => {
      const dense = stringsOf(denseKeys, "dense_keys");
      const sparse = stringsOf(sparseKeys, "sparse_keys");
      const ragged = stringsOf(raggedKeys, "ragged_keys");
      if (dense.length !== attrs.dense.length) {
        throw invalid(
          `Expected len(dense_keys) == len(dense_types) but got: ${dense.length} vs. ${attrs.dense.length}`,
        );
      }
      if (sparse.length !== attrs.sparseTypes.length) {
        throw invalid(
          `Expected len(sparse_keys) == num_sparse but got: ${sparse.length} vs. ${attrs.sparseTypes.length}`,
        );
      }
      if (ragged.length !== attrs.raggedTypes.length) {
        throw invalid(
          `Expected len(ragged_keys) == len(ragged_value_types) but got: ${ragged.length} vs. ${attrs.raggedTypes.length}`,
        );
      }
      return buildKeyConfig(dense, sparse, ragged);
    });
    const defaults = inputs.slice(5);
    checkDefaults(attrs, defaults);
    const result = parse({
      attrs,
      keys,
      defaults,
      serialized: stringsOf(serialized, "serialized"),
      names: nameBytes,
      single: serialized.rank === 0,
    });
    return flatOutputs(result, true);
  };
}

/** `ParseSingleExample`: a scalar serialized Example; keys are attrs. */
function compileParseSingleExample(ctx: KernelContext): KernelRun {
  const attrs = readAttrs(ctx.attr, "single");
  const enc = new TextEncoder();
  const sparseKeys = ctx.attr.strings("sparse_keys", []);
  const denseKeys = ctx.attr.strings("dense_keys", []);
  if (sparseKeys.length !== attrs.sparseTypes.length) {
    throw invalid("len(sparse_keys) != len(sparse_types)");
  }
  if (denseKeys.length !== attrs.dense.length) {
    throw invalid("len(dense_keys) != len(dense_types)");
  }
  const keys = buildKeyConfig(
    denseKeys.map((k) => enc.encode(k)),
    sparseKeys.map((k) => enc.encode(k)),
    [],
  );
  return (inputs) => {
    const [serialized, ...defaults] = inputs;
    if (serialized.rank !== 0) {
      throw invalid(
        `Expected serialized to be a scalar, got shape: ${shapeString(serialized.shape)}`,
      );
    }
    checkDefaults(attrs, defaults);
    const result = parse({
      attrs,
      keys,
      defaults,
      serialized: stringsOf(serialized, "serialized"),
      names: [],
      single: true,
    });
    return flatOutputs(result, false);
  };
}

/** tf.Example parsing kernels. */
export const parsingKernels: Kernel[] = [
  { op: "ParseExample", compile: compileParseExample },
  { op: "ParseExampleV2", compile: compileParseExampleV2 },
  { op: "ParseSingleExample", compile: compileParseSingleExample },
];
