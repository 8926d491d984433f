/**
 * The common Predict bodies and answers straight between bytes and typed arrays, beside the
 * general path of json_tensor.ts (RapidJSON's tape, then the tensors; the tensors, then
 * PrettyWriter's text), which stays the reference: these functions give exactly its results or
 * decline (`undefined`), and the caller then takes the general path, which also words every error.
 *
 * - {@link scanPredictBody} reads `{"instances": <list>}` and `{"inputs": <list or number>}`
 *   (one member, any whitespace) whose value is a dense (rectangular, non-empty) nest of lists of
 *   plain numbers: `-?(0|[1-9]\d{0,8})(\.\d+)?`, the literals the general parser also computes
 *   with its simple steps (so the values are bit for bit its values). Anything else — another
 *   member, a string, `NaN`, an exponent, an empty or ragged list — declines.
 * - {@link predictJsonBytes} writes a Predict response (`{"predictions": …}` or
 *   `{"outputs": …}`) of numeric and bool tensors into a shared byte slab, as PrettyWriter
 *   prints it, with the floats formatted by `writeDecimalInto` (json_writer.ts): no string per
 *   value, no UTF-8 encoding of the whole answer afterwards.
 *
 * What a body may cost here is bounded: the scan only runs on bodies up to
 * {@link FAST_BODY_BYTES}, its scratch holds at most one value per two body bytes, and the tensor
 * it builds is charged to the request's decode budget afterwards like any other. An answer's
 * room is bounded from its shapes before it is written, and a bound over 32 MiB declines.
 *
 * @module
 */
import { allocate, DataType, type NumericArray } from "../../tensor/dtype.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { JsonPredictRequestFormat } from "./json_tensor.ts";
import { DECIMAL_MAX_BYTES, quote, writeDecimalInto } from "./json_writer.ts";
import { scanSimpleNumber, simpleNumber } from "./json_parse.ts";

/** The largest body {@link scanPredictBody} reads (larger ones take the general path). */
export const FAST_BODY_BYTES = 64 * 1024;

/** The deepest nest of lists the scan takes. */
const MAX_RANK = 32;

/** What {@link scanPredictBody} found; the values wait in its scratch for {@link fastTensor}. */
export interface FastPredictBody {
  /** `instances` (row) or `inputs` (columnar). */
  readonly format: JsonPredictRequestFormat;
  /** The dense shape (for the row format, the number of instances first). */
  readonly shape: number[];
  /** Every value was an integer literal (no fraction). */
  readonly integers: boolean;
  /** Some integer literal was negative (and not `-0`). */
  readonly negative: boolean;
}

/** Values of the last scan, in document (row-major) order. */
let values = new Float64Array(256);
let valueCount = 0;
const dims = new Int32Array(MAX_RANK);
const counts = new Int32Array(MAX_RANK);

const INSTANCES = [0x69, 0x6e, 0x73, 0x74, 0x61, 0x6e, 0x63, 0x65, 0x73]; // instances
const INPUTS = [0x69, 0x6e, 0x70, 0x75, 0x74, 0x73]; // inputs

/** RapidJSON's `SkipWhitespace`: space, \n, \r, \t. */
function skip(b: Uint8Array, p: number): number {
  const n = b.length;
  while (p < n) {
    const c = b[p];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    p++;
  }
  return p;
}

/** Whether `b[p…]` is `word` followed by `"`. */
function keyIs(b: Uint8Array, p: number, word: readonly number[]): boolean {
  if (p + word.length >= b.length) return false;
  for (let k = 0; k < word.length; k++) if (b[p + k] !== word[k]) return false;
  return b[p + word.length] === 0x22;
}

/**
 * Reads a Predict body of the common form (see the module doc) into the scan's scratch.
 *
 * @param b the body (UTF-8 JSON)
 * @returns what was read, or undefined when the body is not of that form (take the general path)
 */
export function scanPredictBody(b: Uint8Array): FastPredictBody | undefined {
  const n = b.length;
  if (n > FAST_BODY_BYTES) return undefined;
  let p = skip(b, 0);
  if (b[p] !== 0x7b) return undefined;
  p = skip(b, p + 1);
  if (b[p] !== 0x22) return undefined;
  let format: JsonPredictRequestFormat;
  if (keyIs(b, p + 1, INSTANCES)) {
    format = "row";
    p += 2 + INSTANCES.length;
  } else if (keyIs(b, p + 1, INPUTS)) {
    format = "columnar";
    p += 2 + INPUTS.length;
  } else {
    return undefined;
  }
  p = skip(b, p);
  if (b[p] !== 0x3a) return undefined;
  p = skip(b, p + 1);
  // Instances must be a list; inputs may be a bare number (a scalar).
  if (format === "row" && b[p] !== 0x5b) return undefined;
  // At most one value per two bytes ("1,"): the scratch never outgrows the body.
  if (values.length < (n >> 1) + 1) values = new Float64Array((n >> 1) + 1);
  const vals = values;
  let count = 0;
  let depth = 0;
  /** The depth numbers sit at (lists around them), once the first is seen. */
  let leaf = -1;
  let integers = true;
  let negative = false;
  dims.fill(-1);
  for (;;) {
    // A value.
    let c = b[p];
    if (c === 0x5b) {
      if (depth === MAX_RANK || (leaf >= 0 && depth >= leaf)) return undefined;
      counts[depth++] = 0;
      c = b[++p];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p = skip(b, p);
      continue; // an empty list declines below (`]` is not a value)
    }
    if (leaf < 0) leaf = depth;
    else if (depth !== leaf) return undefined;
    // The parser's own scan of a plain number: the same doubles as the general path.
    p = scanSimpleNumber(b, p);
    if (p < 0) return undefined;
    const v = simpleNumber.value;
    if (simpleNumber.fraction) integers = false;
    else if (v < 0) negative = true;
    c = p < n ? b[p] : 0;
    vals[count++] = v;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p = skip(b, p);
    // After a value: `,` for the next one, or `]` closing lists.
    for (;;) {
      if (depth === 0) {
        // The root value was a number (inputs only).
        p = skip(b, p);
        if (b[p] !== 0x7d || skip(b, p + 1) !== n) return undefined;
        valueCount = count;
        return { format, shape: [], integers, negative };
      }
      counts[depth - 1]++;
      c = b[p];
      if (c === 0x2c) {
        c = b[++p];
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p = skip(b, p);
        break;
      }
      if (c !== 0x5d) return undefined;
      const level = depth - 1;
      const size = counts[level];
      if (dims[level] < 0) dims[level] = size;
      else if (dims[level] !== size) return undefined;
      depth--;
      c = b[++p];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p = skip(b, p);
      if (depth === 0) {
        if (b[p] !== 0x7d || skip(b, p + 1) !== n) return undefined;
        valueCount = count;
        const shape: number[] = [];
        for (let k = 0; k < leaf; k++) shape.push(dims[k]);
        return { format, shape, integers, negative };
      }
    }
  }
}

/**
 * The tensor of dtype `dtype` holding the values of the last {@link scanPredictBody}, as the
 * general path would build it for a signature input of that dtype; undefined when the general
 * path would refuse the values or the dtype is not one this path builds (take the general path).
 *
 * @param scan what the last scan returned
 * @param dtype the signature input's dtype
 */
export function fastTensor(scan: FastPredictBody, dtype: DataType): Tensor | undefined {
  const n = valueCount;
  const src = values;
  switch (dtype) {
    case DataType.DT_FLOAT:
    case DataType.DT_DOUBLE:
      break;
    // The integer literals read here (at most nine digits) fit int32; the narrower types wrap
    // on the typed array's conversion, as they do on the general path.
    case DataType.DT_INT32:
    case DataType.DT_INT16:
    case DataType.DT_INT8:
    case DataType.DT_UINT8:
      if (!scan.integers) return undefined;
      break;
    case DataType.DT_UINT32:
      if (!scan.integers || scan.negative) return undefined;
      break;
    case DataType.DT_INT64: {
      if (!scan.integers) return undefined;
      const d = allocate(dtype, n) as BigInt64Array;
      for (let k = 0; k < n; k++) d[k] = BigInt(src[k]);
      return new Tensor(dtype, scan.shape, d);
    }
    default:
      return undefined;
  }
  const data = storage(dtype, n) as Float32Array;
  for (let k = 0; k < n; k++) data[k] = src[k];
  return new Tensor(dtype, scan.shape, data);
}

/**
 * Input storage of up to this many bytes is carved from {@link inputSlab} (as tensor/arena.ts
 * carves tiny arrays): a view costs a twentieth of a fresh typed array. A slab is small, so what
 * a kept input pins, and what posting it to a worker copies with it, stays small.
 */
const CARVED_INPUT_BYTES = 1024;
const INPUT_SLAB_BYTES = 4096;
let inputSlab = new ArrayBuffer(INPUT_SLAB_BYTES);
let inputAt = 0;

/** The typed-array constructors of the dtypes {@link fastTensor} builds. */
const CTORS: Partial<
  Record<DataType, new (b: ArrayBuffer, at: number, n: number) => NumericArray>
> = {
  [DataType.DT_FLOAT]: Float32Array,
  [DataType.DT_DOUBLE]: Float64Array,
  [DataType.DT_INT32]: Int32Array,
  [DataType.DT_INT16]: Int16Array,
  [DataType.DT_INT8]: Int8Array,
  [DataType.DT_UINT8]: Uint8Array,
  [DataType.DT_UINT32]: Uint32Array,
};

/** Zeroed storage for `n` elements of `dtype`: carved when small, else the general path's. */
function storage(dtype: DataType, n: number): NumericArray {
  const ctor = CTORS[dtype];
  const bytes = ctor === undefined
    ? 0
    : n * (ctor as unknown as Float32ArrayConstructor).BYTES_PER_ELEMENT;
  if (ctor === undefined || bytes === 0 || bytes > CARVED_INPUT_BYTES) return allocate(dtype, n);
  if (inputAt + bytes > INPUT_SLAB_BYTES) {
    inputSlab = new ArrayBuffer(INPUT_SLAB_BYTES);
    inputAt = 0;
  }
  const a = new ctor(inputSlab, inputAt, n);
  // 8-byte steps keep every element type aligned.
  inputAt += (bytes + 7) & ~7;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Answers

const encoder = new TextEncoder();

/**
 * Answers are written one after the other into a slab and handed out as views of it: a fresh
 * typed array costs about half a microsecond in Deno whatever its length (tensor/arena.ts), a
 * view a twentieth of that. A slab is never written twice; a new one is taken when an answer's
 * bound does not fit, and the old one lives as long as any answer viewing it (an answer is copied
 * into the connection's output at once, so not long).
 *
 * The room an answer needs is bounded before it is written ({@link answerBound}), so the writing
 * itself checks nothing; should the bound ever be short, the bytes past the slab's end are lost
 * (a typed array ignores them) while the position still counts them, so the answer is seen to
 * have overflowed and is declined (the general path answers).
 */
const SLAB_BYTES = 64 * 1024;
/**
 * The largest answer bound written here (an inline answer has at most 65536 elements: about
 * 4 MiB; a larger bound is an output of many empty lists, left to the general path).
 */
const MAX_BOUND = 32 * 1024 * 1024;
let out = new Uint8Array(SLAB_BYTES);
/** Where the answer being written starts in `out`, and where it ends now. */
let from = 0;
let at = 0;

function ascii(s: string): void {
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
}

function bytes(b: Uint8Array): void {
  if (at + b.length <= out.length) out.set(b, at);
  at += b.length;
}

/** PrettyWriter's state: per open container, whether an array, and its count of items. */
const inArray: boolean[] = [];
const itemCount: number[] = [];
let singleLine = false;

/** `\n` and four spaces per level. */
function newline(depth: number): void {
  out[at++] = 0x0a;
  for (let k = 4 * depth; k > 0; k--) out[at++] = 0x20;
}

/** PrettyWriter's `#prefix`, as bytes. */
function prefix(): void {
  const depth = itemCount.length;
  if (depth === 0) return;
  const top = depth - 1;
  const count = itemCount[top];
  if (inArray[top]) {
    if (count > 0) {
      out[at++] = 0x2c;
      if (singleLine) out[at++] = 0x20;
    }
    if (!singleLine) newline(depth);
  } else {
    if (count > 0) {
      out[at++] = count % 2 === 0 ? 0x2c : 0x3a;
      if (count % 2 === 0) out[at++] = 0x0a;
      else out[at++] = 0x20;
    } else {
      out[at++] = 0x0a;
    }
    if (count % 2 === 0) {
      for (let k = 4 * depth; k > 0; k--) out[at++] = 0x20;
    }
  }
  itemCount[top] = count + 1;
}

function start(array: boolean): void {
  prefix();
  inArray.push(array);
  itemCount.push(0);
  out[at++] = array ? 0x5b : 0x7b;
}

function end(array: boolean): void {
  inArray.pop();
  const empty = itemCount.pop() === 0;
  if (!empty && (!array || !singleLine)) newline(itemCount.length);
  out[at++] = array ? 0x5d : 0x7d;
}

function key(name: Uint8Array): void {
  prefix();
  bytes(name);
}

/** The most bytes one element of `dtype` takes, or 0 when this path does not write it. */
function elementBytes(dtype: DataType): number {
  switch (dtype) {
    case DataType.DT_FLOAT:
    case DataType.DT_DOUBLE:
      return DECIMAL_MAX_BYTES;
    case DataType.DT_INT32:
    case DataType.DT_INT16:
    case DataType.DT_INT8:
    case DataType.DT_UINT8:
    case DataType.DT_UINT32:
    case DataType.DT_INT64:
    case DataType.DT_UINT64:
      return 20; // -9223372036854775808, 18446744073709551615
    case DataType.DT_BOOL:
      return 5;
    default:
      return 0;
  }
}

/**
 * An upper bound of the bytes of an answer: every element and every list with its separator,
 * line break and the deepest indentation, every key once per item, and the frame.
 *
 * @returns the bound, or -1 when an output is of a type this path does not write
 */
function answerBound(
  tensors: readonly Tensor[],
  keys: readonly Uint8Array[],
  batch: number,
): number {
  let bound = 64;
  for (const t of tensors) {
    const e = elementBytes(t.dtype);
    if (e === 0) return -1;
    const shape = t.shape;
    // Nesting: the answer's object, the outputs' object, an item's object, the lists.
    const line = 3 + 4 * (shape.length + 4);
    let lists = 0;
    let above = 1;
    for (let d = 0; d < shape.length; d++) {
      lists += above;
      above *= shape[d];
    }
    bound += above * (e + line) + lists * (2 + 2 * line);
  }
  let keyBytes = 0;
  for (const k of keys) keyBytes += k.length + 2 + 4 * 3 + 4;
  return bound + (batch > 0 ? batch : 1) * (keyBytes + 2 * (3 + 4 * 2));
}

/** One element, after its prefix (`AddSingleValueAndAdvance`). */
function element(t: Tensor, k: number): void {
  switch (t.dtype) {
    case DataType.DT_FLOAT:
      at = writeDecimalInto(out, at, (t.data as Float32Array)[k], true);
      return;
    case DataType.DT_DOUBLE:
      at = writeDecimalInto(out, at, (t.data as Float64Array)[k], false);
      return;
    case DataType.DT_BOOL:
      ascii((t.data as Uint8Array)[k] !== 0 ? "true" : "false");
      return;
    default:
      ascii(String((t.data as NumericArray)[k]));
  }
}

/** `AddTensorValues`: the elements of `t` from dimension `dim` on, from element `offset[o]`. */
function tensorValues(t: Tensor, dim: number, offset: number[], o: number): void {
  const shape = t.shape;
  const rank = shape.length;
  if (dim > rank - 1) {
    prefix();
    element(t, offset[o]++);
    return;
  }
  start(true);
  const n = shape[dim];
  if (dim === rank - 1) {
    let k = offset[o];
    for (let i = 0; i < n; i++) {
      prefix();
      element(t, k++);
    }
    offset[o] = k;
  } else {
    for (let i = 0; i < n; i++) tensorValues(t, dim + 1, offset, o);
  }
  end(true);
}

/**
 * `AddTensorValues` in single-line mode, after the value's prefix: what PrettyWriter prints with
 * `kFormatSingleLineArray` on (`[a, b]`, lists nested the same way, `[]` when empty), written
 * without its per-value bookkeeping; the innermost lists in one loop per type.
 *
 * @returns the offset after the elements written
 */
function compact(t: Tensor, dim: number, k: number): number {
  const shape = t.shape;
  const rank = shape.length;
  if (dim === rank) {
    element(t, k);
    return k + 1;
  }
  const n = shape[dim];
  out[at++] = 0x5b;
  if (dim < rank - 1) {
    for (let i = 0; i < n; i++) {
      if (i > 0) {
        out[at++] = 0x2c;
        out[at++] = 0x20;
      }
      k = compact(t, dim + 1, k);
    }
  } else if (n > 0) {
    const data = t.data;
    if (t.dtype === DataType.DT_FLOAT) floatRun(data as Float32Array, k, n);
    else if (t.dtype === DataType.DT_DOUBLE) doubleRun(data as Float64Array, k, n);
    else {
      for (let i = 0; i < n; i++) {
        if (i > 0) {
          out[at++] = 0x2c;
          out[at++] = 0x20;
        }
        element(t, k + i);
      }
    }
    k += n;
  }
  out[at++] = 0x5d;
  return k;
}

/** `n` floats from `data[k]` on, separated by `, `. */
function floatRun(data: Float32Array, k: number, n: number): void {
  const o = out;
  let a = writeDecimalInto(o, at, data[k], true);
  for (let i = 1; i < n; i++) {
    o[a++] = 0x2c;
    o[a++] = 0x20;
    a = writeDecimalInto(o, a, data[k + i], true);
  }
  at = a;
}

/** `rows` lists of `n` floats (n > 0), `[a, b], [c, d]`: a [rows, n] output's items. */
function floatRows(data: Float32Array, rows: number, n: number): void {
  const o = out;
  let a = at;
  let k = 0;
  for (let r = 0; r < rows; r++) {
    if (r > 0) {
      o[a++] = 0x2c;
      o[a++] = 0x20;
    }
    o[a++] = 0x5b;
    a = writeDecimalInto(o, a, data[k++], true);
    for (let i = 1; i < n; i++) {
      o[a++] = 0x2c;
      o[a++] = 0x20;
      a = writeDecimalInto(o, a, data[k++], true);
    }
    o[a++] = 0x5d;
  }
  at = a;
}

/** `n` doubles from `data[k]` on, separated by `, `. */
function doubleRun(data: Float64Array, k: number, n: number): void {
  const o = out;
  let a = writeDecimalInto(o, at, data[k], false);
  for (let i = 1; i < n; i++) {
    o[a++] = 0x2c;
    o[a++] = 0x20;
    a = writeDecimalInto(o, a, data[k + i], false);
  }
  at = a;
}

/**
 * `MakeJsonFromTensors` as bytes, for outputs this path writes: the bytes of
 * `makeJsonFromTensorList(names, tensors, format)` (json_tensor.ts), or undefined when an output
 * is of another type (strings, …) or the general path would refuse them (it words the error).
 *
 * @param names the output names, sorted
 * @param tensors one tensor per name
 * @param format the request's format
 * @returns the answer's bytes, or undefined; a view of a buffer other answers share (its
 *   `buffer` must never be transferred)
 */
export function predictJsonBytes(
  names: readonly string[],
  tensors: readonly Tensor[],
  format: JsonPredictRequestFormat,
): Uint8Array | undefined {
  if (names.length === 0) return undefined;
  let batch = -1;
  if (format === "row") {
    for (let k = 0; k < tensors.length; k++) {
      const shape = tensors[k].shape;
      if (shape.length === 0 || (batch >= 0 && batch !== shape[0])) return undefined;
      batch = shape[0];
    }
  }
  const multi = names.length > 1;
  const keys = multi ? names.map((n) => encoder.encode(quote(n))) : NO_KEYS;
  const bound = answerBound(tensors, keys, batch);
  // Another type, or an answer of many empty lists (a [10^9, 0] output): the general path's.
  if (bound < 0 || bound > MAX_BOUND) return undefined;
  if (out.length > SLAB_BYTES || at + bound > out.length) {
    // A new slab (one grown for a large answer is left to that answer).
    out = new Uint8Array(Math.max(SLAB_BYTES, bound));
    at = 0;
  }
  from = at;
  singleLine = false;
  inArray.length = 0;
  itemCount.length = 0;
  let done = false;
  try {
    start(false);
    if (format === "row") {
      key(PREDICTIONS);
      start(true);
      const t0 = tensors[0];
      if (!multi && batch > 0) {
        // One output: the items are values of the one list, on one line (`, ` between them).
        singleLine = true;
        prefix();
        if (t0.shape.length === 1 && t0.dtype === DataType.DT_FLOAT) {
          floatRun(t0.data as Float32Array, 0, batch);
        } else if (t0.shape.length === 2 && t0.dtype === DataType.DT_FLOAT && t0.shape[1] > 0) {
          floatRows(t0.data as Float32Array, batch, t0.shape[1]);
        } else {
          let k = compact(t0, 1, 0);
          for (let item = 1; item < batch; item++) {
            out[at++] = 0x2c;
            out[at++] = 0x20;
            k = compact(t0, 1, k);
          }
        }
        itemCount[itemCount.length - 1] += batch - 1;
        singleLine = false;
        batch = 0;
      }
      const offsets = batch > 0 ? names.map(() => 0) : NO_OFFSETS;
      for (let item = 0; item < batch; item++) {
        if (multi) start(false);
        singleLine = true;
        for (let k = 0; k < tensors.length; k++) {
          if (multi) key(keys[k]);
          // An item is on one line: its value's prefix, then the value written compactly.
          prefix();
          offsets[k] = compact(tensors[k], 1, offsets[k]);
        }
        singleLine = false;
        if (multi) end(false);
      }
      end(true);
    } else {
      key(OUTPUTS);
      if (multi) start(false);
      for (let k = 0; k < tensors.length; k++) {
        if (multi) key(keys[k]);
        tensorValues(tensors[k], 0, [0], 0);
      }
      if (multi) end(false);
    }
    end(false);
    // Never past the bound (see the slab's doc); declined if it ever were.
    done = at <= from + bound && at <= out.length;
    return done ? out.subarray(from, at) : undefined;
  } finally {
    // An answer cut short (or declined) leaves its bytes unused.
    if (!done) at = from;
  }
}

const PREDICTIONS = encoder.encode('"predictions"');
const NO_KEYS: readonly Uint8Array[] = [];
const NO_OFFSETS: number[] = [];
const OUTPUTS = encoder.encode('"outputs"');
