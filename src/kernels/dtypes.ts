/**
 * The dtype sets kernels register for (as TensorFlow registers its CPU kernels, rounded up to
 * every integer width) and TensorFlow's names of types, in one place for every family.
 *
 * @module
 */
import { DataType, dtypeName } from "../tensor/dtype.ts";

const T = DataType;

/** Floating point types. */
export const FLOATS: readonly DataType[] = [T.DT_FLOAT, T.DT_DOUBLE, T.DT_HALF, T.DT_BFLOAT16];
/** Integer types held as numbers. */
export const SMALL_INTS: readonly DataType[] = [
  T.DT_INT8,
  T.DT_INT16,
  T.DT_INT32,
  T.DT_UINT8,
  T.DT_UINT16,
  T.DT_UINT32,
];
/** Integer types held as bigints. */
export const BIG_INTS: readonly DataType[] = [T.DT_INT64, T.DT_UINT64];
/** Every integer type. */
export const INTS: readonly DataType[] = [...SMALL_INTS, ...BIG_INTS];
/** Every real number type (TF_CALL_REAL_NUMBER_TYPES). */
export const REALS: readonly DataType[] = [...FLOATS, ...INTS];
/** Signed types (Neg, Abs, Sign). */
export const SIGNED: readonly DataType[] = [
  ...FLOATS,
  T.DT_INT8,
  T.DT_INT16,
  T.DT_INT32,
  T.DT_INT64,
];

/** TensorFlow's DataTypeString: `float`, `int32`, `string`, … (the enum name without `DT_`). */
export function dataTypeString(dtype: DataType): string {
  const name = dtypeName(dtype);
  return name.startsWith("DT_") ? name.slice(3).toLowerCase() : name;
}
