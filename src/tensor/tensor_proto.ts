/**
 * TensorProto ⇄ Tensor, following TensorFlow's `Tensor::FromProto` / `AsProtoField` rules.
 *
 * - `tensor_content` holds little-endian bytes; it is viewed in place where aligned, else copied
 *   once.
 * - The typed repeated fields (`float_val`, `int_val`, …) may hold fewer values than the shape
 *   needs: none means all zeros, otherwise the last value is repeated (tensor.cc FromProtoField).
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  type TensorProto,
  TensorProtoSchema,
} from "../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import {
  type TensorShapeProto,
  TensorShapeProtoSchema,
} from "../proto/gen/tensorflow/core/framework/tensor_shape_pb.ts";
import { Code, ServingError } from "../errors.ts";
import {
  allocate,
  DataType,
  dtypeName,
  elementBytes,
  fromBytes,
  isNumeric,
  lanes,
  type NumericArray,
  toBytes,
} from "./dtype.ts";
import { checkedElementCount, DecodeBudget, STRING_ELEMENT_BYTES } from "./limits.ts";

/** The offset between a type and its reference type in `tensorflow.DataType`. */
const REF_OFFSET = 100;
import { Tensor } from "./tensor.ts";

/**
 * What {@link tensorFromProto} reads of a TensorProto: a decoded message, or a view of its wire
 * bytes built without one (src/tensor/tensor_wire.ts, the request hot path), whose repeated
 * fields may be typed arrays over the wire bytes.
 */
export interface TensorProtoValues {
  readonly dtype: DataType;
  readonly tensorShape?: { readonly dim: ArrayLike<{ readonly size: bigint }> };
  readonly tensorContent: Uint8Array;
  readonly halfVal: ArrayLike<number>;
  readonly floatVal: ArrayLike<number>;
  readonly doubleVal: ArrayLike<number>;
  readonly intVal: ArrayLike<number>;
  readonly stringVal: ArrayLike<Uint8Array>;
  readonly scomplexVal: ArrayLike<number>;
  readonly int64Val: ArrayLike<bigint>;
  /** Booleans, or 0/1 numbers in a view. */
  readonly boolVal: ArrayLike<boolean | number>;
  readonly dcomplexVal: ArrayLike<number>;
  readonly uint32Val: ArrayLike<number>;
  readonly uint64Val: ArrayLike<bigint>;
}

/** Reads a fully defined shape; `-1` dims or unknown rank are rejected. */
export function shapeFromProto(p: TensorShapeProto | undefined, what = "tensor"): number[] {
  if (!p) return [];
  if (p.unknownRank) {
    throw new ServingError(Code.INVALID_ARGUMENT, `Cannot use a ${what} of unknown rank`);
  }
  return p.dim.map((d) => {
    const n = Number(d.size);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot use a ${what} with dimension size ${d.size}`,
      );
    }
    return n;
  });
}

/** Reads a possibly partial shape: `undefined` for unknown rank, `-1` for unknown dims. */
export function partialShapeFromProto(p: TensorShapeProto | undefined): number[] | undefined {
  if (!p) return [];
  if (p.unknownRank) return undefined;
  return p.dim.map((d) => Number(d.size));
}

/** Writes a shape. */
export function shapeToProto(shape: readonly number[]): TensorShapeProto {
  return create(TensorShapeProtoSchema, {
    dim: shape.map((size) => ({ size: BigInt(size) })),
  });
}

interface Fillable<T> {
  readonly length: number;
  [i: number]: T;
  fill(value: T, start?: number): unknown;
}

/** FromProtoField: the values given, then the last one repeated; none given means zeros. */
function fill<T>(out: Fillable<T>, values: ArrayLike<T>, zero: T): void {
  const m = values.length;
  if (m === 0) {
    out.fill(zero);
    return;
  }
  const k = Math.min(out.length, m);
  for (let i = 0; i < k; i++) out[i] = values[i];
  if (k < out.length) out.fill(values[m - 1], k);
}

/** Element bytes a decoded tensor of `dtype` holds (TensorFlow's `sizeof(tstring)` for strings). */
function decodedElementBytes(dtype: DataType): number {
  return dtype === DataType.DT_STRING ? STRING_ELEMENT_BYTES : elementBytes(dtype);
}

/**
 * A lower bound of a TensorProto's encoded size, from the values it holds: what the decode
 * limit's expansion ratio is applied to. Exact for `tensor_content` and fixed-width fields; a
 * varint counts one byte, a string its bytes plus two.
 */
export function encodedSizeLowerBound(p: TensorProtoValues): number {
  let n = p.tensorContent.byteLength + 4 * (p.floatVal.length + p.scomplexVal.length) +
    8 * (p.doubleVal.length + p.dcomplexVal.length) + p.intVal.length + p.int64Val.length +
    p.uint32Val.length + p.uint64Val.length + p.boolVal.length + p.halfVal.length;
  const strings = p.stringVal;
  for (let i = 0; i < strings.length; i++) n += strings[i].byteLength + 2;
  return n + 2 * (p.tensorShape?.dim.length ?? 0);
}

/**
 * Converts a TensorProto to a Tensor, as TensorFlow's `Tensor::FromProto`, with every size
 * checked before anything is allocated: the shape as `TensorShape::IsValidShape` (rank ≤ 254, an
 * element count without int64 overflow), the dtype (reference types and `DT_INVALID` are
 * refused), `tensor_content`'s length, and then the decoded size against `budget`.
 *
 * @param what names the tensor in error messages (e.g. `input "x"`)
 * @param budget the request's decode allowance; every request path passes one. Without it
 *   (tensors of a model's own graph, such as `Const` values, which TensorFlow also builds without
 *   a limit and which often use the repeat rule for large fills) only the checks apply.
 * @throws ServingError INVALID_ARGUMENT for a malformed proto, UNIMPLEMENTED for a type that
 *   cannot be held here, RESOURCE_EXHAUSTED over a decode limit
 */
export function tensorFromProto(
  p: TensorProtoValues,
  what = "tensor",
  budget?: DecodeBudget,
): Tensor {
  const dtype = p.dtype;
  const dimsProto = p.tensorShape?.dim ?? [];
  const rank = dimsProto.length;
  // The common shape (a few dims below 2^31, a product below 2^53) is counted in doubles,
  // exactly; anything else goes through the int64 checks and their messages.
  let shape: number[] | undefined = rank <= 8 ? new Array(rank) : undefined;
  let n = 1;
  for (let i = 0; shape !== undefined && i < rank; i++) {
    const d = dimsProto[i].size;
    if (d < 0n || d > 0x7fffffffn) shape = undefined;
    else n *= shape[i] = Number(d);
  }
  if (shape === undefined || n > Number.MAX_SAFE_INTEGER) {
    const dims: bigint[] = new Array(rank);
    for (let i = 0; i < rank; i++) dims[i] = dimsProto[i].size;
    try {
      n = checkedElementCount(dims);
    } catch (e) {
      throw ServingError.from(e).withPrefix(`Cannot read ${what}: `);
    }
    shape = dims.map(Number);
  }
  if (dtype === DataType.DT_INVALID || dtype > REF_OFFSET || DataType[dtype] === undefined) {
    // Tensor::FromProto refuses DT_INVALID, reference types (*_REF) and unknown numbers.
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot read ${what}: a tensor of type ${dtypeName(dtype)} cannot be made from a TensorProto`,
    );
  }
  if (dtype === DataType.DT_VARIANT) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot convert ${what} of type ${dtypeName(dtype)}`,
    );
  }
  if (dtype === DataType.DT_RESOURCE) {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `Cannot convert ${what} of type DT_RESOURCE from a TensorProto`,
    );
  }
  if (dtype !== DataType.DT_STRING && !isNumeric(dtype)) {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `Cannot convert ${what} of type ${dtypeName(dtype)}`,
    );
  }
  const hasContent = p.tensorContent.byteLength > 0 && dtype !== DataType.DT_STRING;
  if (hasContent && n > 0) {
    const need = n * elementBytes(dtype);
    if (p.tensorContent.byteLength !== need) {
      // Helper<T>::Decode: the content must hold exactly N elements.
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot read ${what}: ${p.tensorContent.byteLength} bytes of tensor_content do not ` +
          `hold ${n} ${dtypeName(dtype)} values (need ${need})`,
      );
    }
  }
  // Everything below allocates at most what is charged here.
  budget?.charge(what, n * decodedElementBytes(dtype), encodedSizeLowerBound(p));
  if (dtype === DataType.DT_STRING) {
    const out: Uint8Array[] = new Array(n);
    fill(out, p.stringVal, new Uint8Array(0));
    return new Tensor(dtype, shape, out);
  }
  if (hasContent && n > 0) {
    return new Tensor(dtype, shape, fromBytes(dtype, p.tensorContent, n));
  }
  if (n === 0) return new Tensor(dtype, shape, allocate(dtype, 0));
  // Exactly n values already in the storage's array type (a view of the wire bytes made by the
  // hot path's reader) are the storage: nothing to repeat, nothing to copy.
  const exact = exactValues(p, dtype, n);
  if (exact !== undefined) return new Tensor(dtype, shape, exact);
  const data = allocate(dtype, n);
  switch (dtype) {
    case DataType.DT_FLOAT:
      fill(data as Float32Array, p.floatVal, 0);
      break;
    case DataType.DT_DOUBLE:
      fill(data as Float64Array, p.doubleVal, 0);
      break;
    case DataType.DT_INT32:
    case DataType.DT_INT16:
    case DataType.DT_INT8:
    case DataType.DT_UINT8:
    case DataType.DT_UINT16:
    case DataType.DT_QINT8:
    case DataType.DT_QUINT8:
    case DataType.DT_QINT16:
    case DataType.DT_QUINT16:
    case DataType.DT_QINT32:
      fill(data as Int32Array, p.intVal, 0);
      break;
    case DataType.DT_INT64:
      fill(data as BigInt64Array, p.int64Val, 0n);
      break;
    case DataType.DT_UINT32:
      fill(data as Uint32Array, p.uint32Val, 0);
      break;
    case DataType.DT_UINT64:
      fill(data as BigUint64Array, p.uint64Val, 0n);
      break;
    case DataType.DT_BOOL:
      fillBool(data as Uint8Array, p.boolVal);
      break;
    case DataType.DT_HALF:
    case DataType.DT_BFLOAT16:
      // Both are stored as their 16 raw bits in half_val.
      fill(data as Uint16Array, p.halfVal, 0);
      break;
    case DataType.DT_COMPLEX64:
    case DataType.DT_COMPLEX128: {
      const vals = dtype === DataType.DT_COMPLEX64 ? p.scomplexVal : p.dcomplexVal;
      fillComplex(data as Float32Array | Float64Array, vals);
      break;
    }
    default:
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Cannot convert ${what} of type ${dtypeName(dtype)}`,
      );
  }
  return new Tensor(dtype, shape, data);
}

/** The values field itself when it is a typed array of the dtype's storage holding n values. */
function exactValues(
  p: TensorProtoValues,
  dtype: DataType,
  n: number,
): NumericArray | undefined {
  switch (dtype) {
    case DataType.DT_FLOAT:
      return p.floatVal instanceof Float32Array && p.floatVal.length === n ? p.floatVal : undefined;
    case DataType.DT_DOUBLE:
      return p.doubleVal instanceof Float64Array && p.doubleVal.length === n
        ? p.doubleVal
        : undefined;
    case DataType.DT_INT32:
      return p.intVal instanceof Int32Array && p.intVal.length === n ? p.intVal : undefined;
    case DataType.DT_INT64:
      return p.int64Val instanceof BigInt64Array && p.int64Val.length === n
        ? p.int64Val
        : undefined;
    default:
      return undefined;
  }
}

function fillBool(out: Uint8Array, vals: ArrayLike<boolean | number>): void {
  const m = vals.length;
  if (m === 0) return;
  const k = Math.min(out.length, m);
  for (let i = 0; i < k; i++) out[i] = vals[i] ? 1 : 0;
  if (k < out.length) out.fill(vals[m - 1] ? 1 : 0, k);
}

function fillComplex(out: Float32Array | Float64Array, vals: ArrayLike<number>): void {
  const m = vals.length >> 1;
  if (m === 0) return;
  for (let i = 0; i < out.length; i += 2) {
    const j = Math.min(i >> 1, m - 1) * 2;
    out[i] = vals[j];
    out[i + 1] = vals[j + 1];
  }
}

/**
 * Converts a Tensor to a TensorProto.
 *
 * @param useContent write numeric data into `tensor_content` (as TensorFlow's `AsProtoTensorContent`)
 *   rather than the typed repeated field (`AsProtoField`, which TF Serving's Predict uses).
 */
export function tensorToProto(t: Tensor, useContent = false): TensorProto {
  const p = create(TensorProtoSchema, { dtype: t.dtype, tensorShape: shapeToProto(t.shape) });
  if (t.dtype === DataType.DT_STRING) {
    p.stringVal = (t.data as Uint8Array[]).slice();
    return p;
  }
  const d = t.data as NumericArray;
  if (useContent) {
    p.tensorContent = toBytes(d);
    return p;
  }
  switch (t.dtype) {
    case DataType.DT_FLOAT:
      p.floatVal = Array.from(d as Float32Array);
      break;
    case DataType.DT_DOUBLE:
      p.doubleVal = Array.from(d as Float64Array);
      break;
    case DataType.DT_INT64:
      p.int64Val = Array.from(d as BigInt64Array);
      break;
    case DataType.DT_UINT64:
      p.uint64Val = Array.from(d as BigUint64Array);
      break;
    case DataType.DT_UINT32:
      p.uint32Val = Array.from(d as Uint32Array);
      break;
    case DataType.DT_BOOL:
      p.boolVal = Array.from(d as Uint8Array, (v) => v !== 0);
      break;
    case DataType.DT_HALF:
    case DataType.DT_BFLOAT16:
      p.halfVal = Array.from(d as Uint16Array);
      break;
    case DataType.DT_COMPLEX64:
      p.scomplexVal = Array.from(d as Float32Array);
      break;
    case DataType.DT_COMPLEX128:
      p.dcomplexVal = Array.from(d as Float64Array);
      break;
    default:
      if (lanes(t.dtype) === 1) {
        p.intVal = Array.from(d as Int32Array);
        break;
      }
      throw new ServingError(Code.UNIMPLEMENTED, `Cannot encode ${dtypeName(t.dtype)}`);
  }
  return p;
}
