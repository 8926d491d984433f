/**
 * TensorFlow data types: names, element sizes and the typed array that holds each one.
 *
 * The numbers are `tensorflow.DataType` (types.proto). Reference types (`DT_FLOAT_REF` = 101, …)
 * count as their base type outside the graph.
 *
 * @module
 */
import { DataType } from "../proto/gen/tensorflow/core/framework/types_pb.ts";
import { Code, ServingError } from "../errors.ts";
import { uninitialized, zeroed } from "./arena.ts";

export { DataType };

/** Typed storage of a numeric or bool tensor. */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** The offset between a type and its reference type in `tensorflow.DataType`. */
const REF_OFFSET = 100;

/** Returns the base type of a reference type (`DT_FLOAT_REF` → `DT_FLOAT`), others as they are. */
export function baseType(dtype: DataType): DataType {
  return dtype > REF_OFFSET ? (dtype - REF_OFFSET) as DataType : dtype;
}

/** Returns the upstream name of a type, such as `DT_FLOAT`. */
export function dtypeName(dtype: DataType): string {
  return DataType[dtype] ?? `DataType(${dtype})`;
}

type ArrayCtor = {
  new (n: number): NumericArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericArray;
  readonly BYTES_PER_ELEMENT: number;
};

const CTORS: Partial<Record<DataType, ArrayCtor>> = {
  [DataType.DT_FLOAT]: Float32Array,
  [DataType.DT_DOUBLE]: Float64Array,
  [DataType.DT_INT32]: Int32Array,
  [DataType.DT_UINT8]: Uint8Array,
  [DataType.DT_INT16]: Int16Array,
  [DataType.DT_INT8]: Int8Array,
  [DataType.DT_INT64]: BigInt64Array,
  [DataType.DT_BOOL]: Uint8Array,
  [DataType.DT_UINT16]: Uint16Array,
  [DataType.DT_UINT32]: Uint32Array,
  [DataType.DT_UINT64]: BigUint64Array,
  // 16-bit floats are kept as their raw bits; kernels that compute on them convert.
  [DataType.DT_HALF]: Uint16Array,
  [DataType.DT_BFLOAT16]: Uint16Array,
  // Complex numbers are interleaved (re, im) pairs.
  [DataType.DT_COMPLEX64]: Float32Array,
  [DataType.DT_COMPLEX128]: Float64Array,
  // Quantized types share the storage of their integer type.
  [DataType.DT_QINT8]: Int8Array,
  [DataType.DT_QUINT8]: Uint8Array,
  [DataType.DT_QINT16]: Int16Array,
  [DataType.DT_QUINT16]: Uint16Array,
  [DataType.DT_QINT32]: Int32Array,
};

/** True for types held in a typed array (numbers, bool, complex, half). */
export function isNumeric(dtype: DataType): boolean {
  return CTORS[baseType(dtype)] !== undefined;
}

/** How many array elements hold one tensor element (2 for complex types, else 1). */
export function lanes(dtype: DataType): number {
  const t = baseType(dtype);
  return t === DataType.DT_COMPLEX64 || t === DataType.DT_COMPLEX128 ? 2 : 1;
}

function ctorOf(dtype: DataType): ArrayCtor {
  const ctor = CTORS[baseType(dtype)];
  if (!ctor) {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `Cannot hold ${dtypeName(dtype)} in a typed array`,
    );
  }
  return ctor;
}

/** Bytes per tensor element of a numeric type (8 for complex64, 2 for half). */
export function elementBytes(dtype: DataType): number {
  return ctorOf(dtype).BYTES_PER_ELEMENT * lanes(dtype);
}

/**
 * Allocates zeroed storage for `size` elements of a numeric type (recycled from the running
 * plan's arena where it can be, see `arena.ts`).
 */
export function allocate(dtype: DataType, size: number): NumericArray {
  return zeroed(ctorOf(dtype), size * lanes(dtype));
}

/**
 * Allocates storage for `size` elements of a numeric type with unspecified contents, for kernels
 * that write every element (recycled from the running plan's arena where it can be).
 */
export function allocateUninitialized(dtype: DataType, size: number): NumericArray {
  return uninitialized(ctorOf(dtype), size * lanes(dtype));
}

/**
 * Reads `size` little-endian elements of a numeric type from `bytes`. Where `bytes` is aligned for
 * the element type the result is a view of the same memory; otherwise it is copied once.
 */
export function fromBytes(dtype: DataType, bytes: Uint8Array, size: number): NumericArray {
  const ctor = ctorOf(dtype);
  const count = size * lanes(dtype);
  const need = count * ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== need) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot read ${size} ${
        dtypeName(dtype)
      } values from ${bytes.byteLength} bytes (need ${need})`,
    );
  }
  if (bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0) {
    return new ctor(bytes.buffer, bytes.byteOffset, count);
  }
  const copy = new Uint8Array(need);
  copy.set(bytes);
  return new ctor(copy.buffer, 0, count);
}

/** The bytes of a numeric tensor's storage, as a view (no copy). */
export function toBytes(data: NumericArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
