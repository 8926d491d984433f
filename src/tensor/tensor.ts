/**
 * The Tensor value that flows between kernels: a dtype, a shape and typed storage.
 *
 * Tensors are immutable by convention: a kernel never writes into its inputs, so one storage may
 * be shared by many tensors (Identity, Reshape and variable reads are free).
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { allocate, baseType, DataType, dtypeName, isNumeric, type NumericArray } from "./dtype.ts";

/** Storage of a tensor: typed numbers, byte strings, or resource handles. */
export type TensorData = NumericArray | Uint8Array[] | Resource[];

/** A shape: one size per dimension. */
export type Shape = readonly number[];

/** A stateful object a DT_RESOURCE tensor points at (a variable, a lookup table). */
export interface Resource {
  /** Where the resource lives: `container/shared_name`. */
  readonly key: string;
}

/**
 * A variable: the state behind `VariableV2` (reference type) and `VarHandleOp` (resource type).
 * Its value is replaced, never written in place, so tensors read earlier stay valid.
 */
export class Variable implements Resource {
  /** The current value; undefined until first assigned. */
  value: Tensor | undefined;

  /**
   * @param key `container/shared_name`
   * @param dtype the declared element type
   * @param name the node name, for messages
   */
  constructor(readonly key: string, readonly dtype: DataType, readonly name: string) {}

  /** Returns the value, or fails as TensorFlow does for an uninitialised variable. */
  read(): Tensor {
    if (this.value === undefined) {
      throw new ServingError(
        Code.FAILED_PRECONDITION,
        `Attempting to use uninitialized value ${this.name}`,
      );
    }
    return this.value;
  }
}

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Formats a shape as TensorFlow prints it: `[2,3]`. */
export function shapeString(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

/** A typed, shaped value. */
export class Tensor {
  /**
   * @param dtype the element type (a base type; reference types are stripped)
   * @param shape dimension sizes
   * @param data storage holding exactly `sizeOf(shape)` elements
   * @param ref the variable this tensor was read from, for ops that take a reference input
   */
  constructor(
    readonly dtype: DataType,
    readonly shape: Shape,
    readonly data: TensorData,
    readonly ref?: Variable,
  ) {}

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** The storage as typed numbers; fails for string and resource tensors. */
  get numbers(): NumericArray {
    if (!isNumeric(this.dtype)) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Expected a numeric tensor, got ${dtypeName(this.dtype)}`,
      );
    }
    return this.data as NumericArray;
  }

  /** The storage as byte strings; fails for other tensors. */
  get strings(): Uint8Array[] {
    if (this.dtype !== DataType.DT_STRING) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Expected a DT_STRING tensor, got ${dtypeName(this.dtype)}`,
      );
    }
    return this.data as Uint8Array[];
  }

  /** The same storage with another shape of the same size. */
  reshape(shape: Shape): Tensor {
    if (sizeOf(shape) !== this.size) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot reshape a tensor with ${this.size} elements to shape ${shapeString(shape)}`,
      );
    }
    return new Tensor(this.dtype, shape, this.data);
  }

  /** A zero-filled (or empty-string) tensor. */
  static zeros(dtype: DataType, shape: Shape): Tensor {
    const t = baseType(dtype);
    const n = sizeOf(shape);
    if (t === DataType.DT_STRING) {
      return new Tensor(t, shape, Array.from({ length: n }, () => new Uint8Array(0)));
    }
    return new Tensor(t, shape, allocate(t, n));
  }

  /** A float32 tensor from numbers. */
  static float32(values: ArrayLike<number>, shape: Shape = [values.length]): Tensor {
    return new Tensor(DataType.DT_FLOAT, shape, Float32Array.from(values));
  }

  /** An int32 tensor from numbers. */
  static int32(values: ArrayLike<number>, shape: Shape = [values.length]): Tensor {
    return new Tensor(DataType.DT_INT32, shape, Int32Array.from(values));
  }

  /** An int64 tensor from numbers or bigints. */
  static int64(values: ArrayLike<number | bigint>, shape: Shape = [values.length]): Tensor {
    return new Tensor(
      DataType.DT_INT64,
      shape,
      BigInt64Array.from(Array.from(values, (v) => BigInt(v))),
    );
  }

  /** A DT_STRING tensor; strings are UTF-8 encoded. */
  static strings(values: ArrayLike<string | Uint8Array>, shape: Shape = [values.length]): Tensor {
    const enc = new TextEncoder();
    return new Tensor(
      DataType.DT_STRING,
      shape,
      Array.from(values, (v) => typeof v === "string" ? enc.encode(v) : v),
    );
  }

  /** A scalar of a numeric type. */
  static scalar(dtype: DataType, value: number | bigint | boolean): Tensor {
    const data = allocate(dtype, 1);
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
      data[0] = BigInt(value as number);
    } else data[0] = Number(value);
    return new Tensor(baseType(dtype), [], data);
  }
}

/** Reads an integer tensor (int32 or int64) as plain numbers; for shapes, axes and indices. */
export function toIntArray(t: Tensor, what = "tensor"): number[] {
  const d = t.data;
  if (d instanceof Int32Array || d instanceof Int16Array || d instanceof Int8Array) {
    return Array.from(d);
  }
  if (d instanceof BigInt64Array) return Array.from(d, Number);
  if (t.dtype === DataType.DT_UINT8 || t.dtype === DataType.DT_UINT16) {
    return Array.from(d as Uint8Array);
  }
  throw new ServingError(
    Code.INVALID_ARGUMENT,
    `Expected an integer ${what}, got ${dtypeName(t.dtype)}`,
  );
}
