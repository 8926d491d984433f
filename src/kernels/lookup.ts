/**
 * Lookup tables: `HashTable(V2)`, `MutableHashTable(V2)` and the ops that fill and query them,
 * following `tensorflow/core/kernels/lookup_table_op.{h,cc}`, `lookup_table_init_op.cc`,
 * `initializable_lookup_table.cc` and `lookup_util.cc` (text file initialisation).
 *
 * A table is a resource of the loaded model, keyed `container/shared_name` like variables, and
 * travels between kernels as a DT_RESOURCE scalar whose `data` is `[table]`. The TF1 ops
 * (`HashTable`, `LookupTableFind`, …) pass a string-ref handle upstream; here they use the same
 * DT_RESOURCE handle, which the graph never looks inside.
 *
 * Keys are held in a JS Map: int32 keys as numbers, int64 keys as numbers when they are safe
 * integers and as bigints otherwise (read without allocating a BigInt), string keys as a latin1
 * string of their bytes (so any byte sequence is a distinct key).
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { allocate, DataType, dtypeName } from "../tensor/dtype.ts";
import { type Resource, shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { parseFloatText, parseInt32Text, parseInt64Text } from "./strings.ts";

/** A key as stored in a table's Map. */
type TableKey = number | bigint | string;
/** A value as stored: numbers, bigints for int64, bytes for strings. */
type TableValue = number | bigint | Uint8Array;

/** TensorFlow's DataTypeString: `int64`, `string`. */
function typeString(t: DataType): string {
  return dtypeName(t).replace(/^DT_/, "").toLowerCase();
}

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

const KEY_TYPES = [DataType.DT_INT32, DataType.DT_INT64, DataType.DT_STRING];
const VALUE_TYPES = [
  DataType.DT_FLOAT,
  DataType.DT_DOUBLE,
  DataType.DT_INT32,
  DataType.DT_INT64,
  DataType.DT_STRING,
  DataType.DT_BOOL,
];

/** The bytes as a latin1 string: one char per byte, so distinct bytes give distinct strings. */
function latin1(b: Uint8Array): string {
  const CHUNK = 4096;
  if (b.length <= CHUNK) return String.fromCharCode.apply(null, b as unknown as number[]);
  let s = "";
  for (let i = 0; i < b.length; i += CHUNK) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return s;
}

/**
 * Reads every key of `t` in the Map representation. One array per call; int64 keys are read as
 * two 32-bit words so no BigInt is created for safe integers.
 */
function tableKeys(t: Tensor): TableKey[] {
  const n = t.size;
  const out = new Array<TableKey>(n);
  if (t.dtype === DataType.DT_STRING) {
    const s = t.data as Uint8Array[];
    for (let i = 0; i < n; i++) out[i] = latin1(s[i]);
  } else if (t.dtype === DataType.DT_INT64) {
    const d = t.data as BigInt64Array;
    const w = new Int32Array(d.buffer, d.byteOffset, 2 * n);
    for (let i = 0; i < n; i++) {
      const lo = w[2 * i];
      const hi = w[2 * i + 1];
      if ((hi === 0 && lo >= 0) || (hi === -1 && lo < 0)) {
        out[i] = lo;
      } else {
        const v = hi * 4294967296 + (lo >>> 0);
        out[i] = Number.isSafeInteger(v) ? v : d[i];
      }
    }
  } else {
    const d = t.data as Int32Array;
    for (let i = 0; i < n; i++) out[i] = d[i];
  }
  return out;
}

/** Reads every value of `t` in the stored representation. */
function tableValues(t: Tensor): TableValue[] {
  if (t.dtype === DataType.DT_STRING) return (t.data as Uint8Array[]).slice();
  return Array.from(t.data as ArrayLike<number | bigint>);
}

function keyText(k: TableKey): string {
  return typeof k === "string" ? k : String(k);
}

function valueText(v: TableValue): string {
  return v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v);
}

/**
 * A lookup table resource. `HashTable` tables must be initialised once before lookups
 * (InitializableLookupTable); `MutableHashTable` tables accept inserts at any time.
 */
export class LookupTable implements Resource {
  /** The contents. */
  map = new Map<TableKey, TableValue>();
  /** Whether lookups are allowed: always for mutable tables, after initialisation otherwise. */
  initialized: boolean;

  /**
   * @param key `container/shared_name`
   * @param keyDtype the key type
   * @param valueDtype the value type
   * @param mutable a MutableHashTable (true) or an initializable HashTable (false)
   * @param name the table name, for messages
   */
  constructor(
    readonly key: string,
    readonly keyDtype: DataType,
    readonly valueDtype: DataType,
    readonly mutable: boolean,
    readonly name: string,
  ) {
    this.initialized = mutable;
  }

  /** Number of entries (0 for an uninitialised HashTable). */
  get size(): number {
    return this.map.size;
  }

  /** CheckKeyAndValueTypes upstream. */
  checkTypes(keys: Tensor, values: Tensor): void {
    if (keys.dtype !== this.keyDtype) {
      throw invalid(
        `Key must be type ${typeString(this.keyDtype)} but got ${typeString(keys.dtype)}`,
      );
    }
    if (values.dtype !== this.valueDtype) {
      throw invalid(
        `Value must be type ${typeString(this.valueDtype)} but got ${typeString(values.dtype)}`,
      );
    }
  }

  /** CheckKeyAndValueTensorsForInsert / ForImport upstream: values shaped like keys. */
  checkKeysAndValues(keys: Tensor, values: Tensor): void {
    this.checkTypes(keys, values);
    if (!sameShape(keys.shape, values.shape)) {
      throw invalid(
        `Expected shape ${shapeString(keys.shape)} for value, got ${shapeString(values.shape)}`,
      );
    }
  }

  /**
   * InitializableLookupTable::Initialize: fills an uninitialised HashTable. On an initialised
   * one it succeeds without change when the sizes agree and fails otherwise, as upstream.
   */
  initialize(keys: TableKey[], values: TableValue[]): void {
    if (this.initialized) {
      if (keys.length !== this.map.size) {
        throw new ServingError(
          Code.FAILED_PRECONDITION,
          "Table was already initialized with different data.",
        );
      }
      return;
    }
    const map = new Map<TableKey, TableValue>();
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const v = values[i];
      const old = map.get(k);
      if (old === undefined) {
        map.set(k, v);
      } else if (!sameValue(old, v)) {
        throw new ServingError(
          Code.FAILED_PRECONDITION,
          `HashTable has different value for same key. Key ${keyText(k)} has ${
            valueText(old)
          } and trying to add value ${valueText(v)}`,
        );
      }
    }
    this.map = map;
    this.initialized = true;
  }

  /** MutableHashTable insert (clear = import): later pairs overwrite earlier ones. */
  insert(keys: TableKey[], values: TableValue[], clear: boolean): void {
    if (clear) this.map = new Map();
    for (let i = 0; i < keys.length; i++) this.map.set(keys[i], values[i]);
  }

  /** Looks up `keys` (any shape); missing keys take the scalar or per-key default. */
  find(keys: Tensor, dflt: Tensor): Tensor {
    if (!this.initialized) {
      throw new ServingError(Code.FAILED_PRECONDITION, "Table not initialized.");
    }
    this.checkTypes(keys, dflt);
    if (dflt.rank !== 0 && !sameShape(dflt.shape, keys.shape)) {
      throw invalid(
        `Expected shape [] or ${shapeString(keys.shape)} for default value, got ${
          shapeString(dflt.shape)
        }`,
      );
    }
    const ks = tableKeys(keys);
    const n = ks.length;
    const map = this.map;
    const perKey = dflt.rank !== 0;
    if (this.valueDtype === DataType.DT_STRING) {
      const d = dflt.data as Uint8Array[];
      const out = new Array<Uint8Array>(n);
      for (let i = 0; i < n; i++) {
        const v = map.get(ks[i]) as Uint8Array | undefined;
        out[i] = v === undefined ? d[perKey ? i : 0] : v;
      }
      return new Tensor(this.valueDtype, keys.shape, out);
    }
    const out = allocate(this.valueDtype, n) as Float32Array;
    const d = dflt.data as Float32Array;
    for (let i = 0; i < n; i++) {
      const v = map.get(ks[i]) as number | undefined;
      out[i] = v === undefined ? d[perKey ? i : 0] : v;
    }
    return new Tensor(this.valueDtype, keys.shape, out);
  }

  /** All keys and values, in insertion order. */
  export(): [Tensor, Tensor] {
    const n = this.map.size;
    let keys: Tensor;
    if (this.keyDtype === DataType.DT_STRING) {
      const enc = new Array<Uint8Array>(n);
      let i = 0;
      for (const k of this.map.keys()) {
        const s = k as string;
        const b = new Uint8Array(s.length);
        for (let j = 0; j < s.length; j++) b[j] = s.charCodeAt(j);
        enc[i++] = b;
      }
      keys = new Tensor(this.keyDtype, [n], enc);
    } else {
      const out = allocate(this.keyDtype, n);
      let i = 0;
      for (const k of this.map.keys()) {
        if (out instanceof BigInt64Array) out[i++] = BigInt(k);
        else out[i++] = Number(k);
      }
      keys = new Tensor(this.keyDtype, [n], out);
    }
    let values: Tensor;
    if (this.valueDtype === DataType.DT_STRING) {
      values = new Tensor(this.valueDtype, [n], [...this.map.values()] as Uint8Array[]);
    } else {
      const out = allocate(this.valueDtype, n);
      let i = 0;
      for (const v of this.map.values()) (out as unknown as TableValue[])[i++] = v;
      values = new Tensor(this.valueDtype, [n], out);
    }
    return [keys, values];
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function sameValue(a: TableValue, b: TableValue): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  // NaN values compare unequal upstream too.
  return a === b;
}

/** The table behind a handle input. */
function tableOf(t: Tensor, op: string): LookupTable {
  const r = t.dtype === DataType.DT_RESOURCE ? (t.data as unknown[])[0] : undefined;
  if (!(r instanceof LookupTable)) {
    throw invalid(`${op} expects a lookup table handle as its first input`);
  }
  return r;
}

/** Creates (or finds) the table of a `HashTable(V2)` / `MutableHashTable(V2)` node. */
function compileTable(ctx: KernelContext, mutable: boolean): KernelRun {
  const keyDtype = ctx.attr.typeIn("key_dtype", KEY_TYPES);
  const valueDtype = ctx.attr.typeIn("value_dtype", VALUE_TYPES);
  const container = ctx.attr.string("container", "");
  const shared = ctx.attr.string("shared_name", "");
  // Upstream gives an unshared table a generated name unique to the kernel; the node name is
  // unique within the graph, and stays the same if the graph is compiled again.
  const name = shared || ctx.name;
  const key = `${container || "localhost"}/${name}`;
  const existing = ctx.resources.get(key);
  if (existing !== undefined && !(existing instanceof LookupTable)) {
    throw invalid(`Resource ${key} exists but is not a lookup table`);
  }
  const table = ctx.resources.lookupOrCreate(
    key,
    () => new LookupTable(key, keyDtype, valueDtype, mutable, name),
  );
  if (table.keyDtype !== keyDtype || table.valueDtype !== valueDtype) {
    throw invalid(
      `Conflicting key/value dtypes ${typeString(keyDtype)}->${typeString(valueDtype)} with ${
        typeString(table.keyDtype)
      }-${typeString(table.valueDtype)} for table ${name}`,
    );
  }
  const handle = new Tensor(DataType.DT_RESOURCE, [], [table]);
  return () => [handle];
}

function initializable(table: LookupTable): LookupTable {
  if (table.mutable) {
    const [container, ...rest] = table.key.split("/");
    throw invalid(`Table ${container} ${rest.join("/")} is not initializable`);
  }
  return table;
}

/** `InitializeTable(V2)`: keys and values must be vectors of the same size. */
function compileInitializeTable(ctx: KernelContext): KernelRun {
  return ([h, keys, values]) => {
    const table = initializable(tableOf(h, ctx.op));
    table.checkTypes(keys, values);
    if (keys.rank !== 1) {
      throw invalid(`Keys must be a vector, but received shape${shapeString(keys.shape)}`);
    }
    if (values.rank !== 1) {
      throw invalid(`Values must be a vector, but received shape${shapeString(values.shape)}`);
    }
    if (keys.size !== values.size) {
      throw invalid(`Keys and values must have the same size ${keys.size} vs ${values.size}`);
    }
    table.initialize(tableKeys(keys), tableValues(values));
    return [];
  };
}

/** `LookupTableImport(V2)`: initialises a HashTable, replaces a MutableHashTable's contents. */
function compileImport(ctx: KernelContext): KernelRun {
  return ([h, keys, values]) => {
    const table = tableOf(h, ctx.op);
    table.checkKeysAndValues(keys, values);
    if (table.mutable) table.insert(tableKeys(keys), tableValues(values), true);
    else table.initialize(tableKeys(keys), tableValues(values));
    return [];
  };
}

/** `LookupTableInsert(V2)`: mutable tables only. */
function compileInsert(ctx: KernelContext): KernelRun {
  return ([h, keys, values]) => {
    const table = tableOf(h, ctx.op);
    if (!table.mutable) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        "Insert not supported by InitializableLookupTable implementations",
      );
    }
    table.checkKeysAndValues(keys, values);
    table.insert(tableKeys(keys), tableValues(values), false);
    return [];
  };
}

/** `LookupTableRemoveV2`: mutable tables only. */
function compileRemove(ctx: KernelContext): KernelRun {
  return ([h, keys]) => {
    const table = tableOf(h, ctx.op);
    if (!table.mutable) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        "Remove not supported by InitializableLookupTable implementations",
      );
    }
    if (keys.dtype !== table.keyDtype) {
      throw invalid(
        `Key must be type ${typeString(table.keyDtype)} but got ${typeString(keys.dtype)}`,
      );
    }
    for (const k of tableKeys(keys)) table.map.delete(k);
    return [];
  };
}

const kLineNumber = -1;
const kWholeLine = -2;

function isIntegerType(t: DataType): boolean {
  return [
    DataType.DT_INT8,
    DataType.DT_INT16,
    DataType.DT_INT32,
    DataType.DT_INT64,
    DataType.DT_UINT8,
    DataType.DT_UINT16,
    DataType.DT_UINT32,
    DataType.DT_UINT64,
  ].includes(t);
}

/**
 * `InitializeTableFromTextFile(V2)`: one entry per line; `key_index` / `value_index` pick a
 * column split on `delimiter`, the line number (-1) or the whole line (-2). Lines are split on
 * "\n" with a trailing "\r" removed, like io::InputBuffer::ReadLine.
 */
function compileInitFromTextFile(ctx: KernelContext): KernelRun {
  const keyIndex = ctx.attr.int("key_index");
  const valueIndex = ctx.attr.int("value_index");
  const vocabSize = ctx.attr.int("vocab_size", -1);
  const delimiterText = ctx.attr.bytes("delimiter", new Uint8Array([0x09]));
  const offset = ctx.attr.int("offset", 0);
  if (delimiterText.length !== 1) throw invalid("delimiter should be only 1 char");
  if (keyIndex < -2 || valueIndex < -2) throw invalid("key_index and value_index must be >= -2");
  if (vocabSize < -1) throw invalid(`Invalid vocab_size ${vocabSize}`);
  const delimiter = delimiterText[0];
  return ([h, filenameT]) => {
    const table = initializable(tableOf(h, ctx.op));
    const filenames = filenameT.strings;
    if (filenameT.rank !== 0 || filenames.length !== 1) {
      throw invalid(
        `filename should be a single string, but got ${shapeString(filenameT.shape)}`,
      );
    }
    const filename = new TextDecoder().decode(filenames[0]);
    if (keyIndex === kLineNumber && table.keyDtype !== DataType.DT_INT64) {
      throw invalid(
        `Key index for line number requires table key dtype of int64, got ${
          typeString(table.keyDtype)
        }`,
      );
    }
    if (
      keyIndex === kWholeLine && !isIntegerType(table.keyDtype) &&
      table.keyDtype !== DataType.DT_STRING
    ) {
      throw invalid(
        `Key index for whole line requires string or integer table key, got ${
          typeString(table.keyDtype)
        }`,
      );
    }
    if (valueIndex === kLineNumber && table.valueDtype !== DataType.DT_INT64) {
      throw invalid(
        `Value index for line number requires table value dtype of int64, got ${
          typeString(table.valueDtype)
        }`,
      );
    }
    if (
      valueIndex === kWholeLine && !isIntegerType(table.valueDtype) &&
      table.valueDtype !== DataType.DT_STRING
    ) {
      throw invalid(
        `Value index for whole line requires table value dtype of integer or string, got ${
          typeString(table.valueDtype)
        }`,
      );
    }
    const bytes = readFile(filename);
    const { keys, values } = readTextFileEntries(
      bytes,
      filename,
      table,
      { keyIndex, valueIndex, vocabSize, delimiter, offset },
    );
    try {
      table.initialize(keys, values);
    } catch (e) {
      // Initialising from a file again is not an error (lookup_util.cc).
      if (e instanceof ServingError && e.code === Code.FAILED_PRECONDITION && table.initialized) {
        return [];
      }
      throw e;
    }
    return [];
  };
}

function readFile(filename: string): Uint8Array {
  try {
    return Deno.readFileSync(filename);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ServingError(Code.NOT_FOUND, `${filename}; No such file or directory`);
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new ServingError(Code.PERMISSION_DENIED, `${filename}; Permission denied`);
    }
    throw ServingError.from(e, Code.UNKNOWN);
  }
}

interface TextFileSpec {
  keyIndex: number;
  valueIndex: number;
  vocabSize: number;
  delimiter: number;
  offset: number;
}

/** TextFileLineIterator upstream: the key/value pairs of a vocabulary file. */
function readTextFileEntries(
  bytes: Uint8Array,
  filename: string,
  table: LookupTable,
  spec: TextFileSpec,
): { keys: TableKey[]; values: TableValue[] } {
  const keys: TableKey[] = [];
  const values: TableValue[] = [];
  const decoder = new TextDecoder();
  const ignoreSplit = Math.max(spec.keyIndex, spec.valueIndex) < 0;
  const expected = Math.max(spec.keyIndex, spec.valueIndex) + 1;
  let start = 0;
  let line = 0;
  while (start < bytes.length) {
    let nl = bytes.indexOf(0x0a, start);
    if (nl < 0) nl = bytes.length;
    const next = nl + 1;
    let end = nl;
    if (end > start && bytes[end - 1] === 0x0d) end--;
    if (spec.vocabSize !== -1 && line >= spec.vocabSize) break; // truncated at vocab_size
    const text = bytes.subarray(start, end);
    // A last line without "\n" that is empty after removing "\r" is the end of the file.
    if (text.length === 0 && nl === bytes.length) break;
    if (text.length === 0) {
      throw invalid(
        `Invalid content in ${filename}: empty line found at position ${
          Math.min(next, bytes.length)
        }.`,
      );
    }
    let tokens: Uint8Array[] = [];
    if (!ignoreSplit) {
      tokens = splitBytes(text, spec.delimiter);
      if (tokens.length < expected) {
        throw invalid(
          `Invalid number of columns in ${filename} line ${line} (${
            decoder.decode(text)
          }) : expected at least ${expected} got ${tokens.length}`,
        );
      }
    }
    keys.push(
      toKey(columnValue(text, tokens, spec.keyIndex, table.keyDtype, line, spec.offset)),
    );
    values.push(columnValue(text, tokens, spec.valueIndex, table.valueDtype, line, spec.offset));
    line++;
    start = next;
  }
  if (spec.vocabSize !== -1 && line < spec.vocabSize) {
    throw invalid(
      `Invalid vocab_size in ${filename}: expected ${spec.vocabSize} but got ${line}`,
    );
  }
  return { keys, values };
}

function splitBytes(text: Uint8Array, delimiter: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let s = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === delimiter) {
      out.push(text.subarray(s, i));
      s = i + 1;
    }
  }
  out.push(text.subarray(s));
  return out;
}

function toKey(v: TableValue): TableKey {
  if (v instanceof Uint8Array) return latin1(v);
  if (typeof v === "bigint") {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  return v;
}

/** SetValue upstream: one column converted to the table's type. */
function columnValue(
  line: Uint8Array,
  tokens: Uint8Array[],
  index: number,
  dtype: DataType,
  lineNumber: number,
  offset: number,
): TableValue {
  if (index === kLineNumber) return BigInt(lineNumber + offset);
  const token = index === kWholeLine ? line : tokens[index];
  if (dtype === DataType.DT_STRING) return token;
  const text = new TextDecoder().decode(token);
  const bad = () =>
    invalid(`Field ${text} in line ${lineNumber} is not a valid ${typeString(dtype)}.`);
  switch (dtype) {
    case DataType.DT_INT32: {
      const v = parseInt32Text(text);
      if (v === undefined) throw bad();
      // Upstream adds the offset to int32 columns (and only to those).
      return v + offset;
    }
    case DataType.DT_INT64: {
      const v = parseInt64Text(text);
      if (v === undefined) throw bad();
      return v;
    }
    case DataType.DT_FLOAT:
    case DataType.DT_DOUBLE: {
      const v = parseFloatText(text);
      if (v === undefined) throw bad();
      return dtype === DataType.DT_FLOAT ? Math.fround(v) : v;
    }
    default:
      throw invalid(`Data type ${typeString(dtype)} not supported.`);
  }
}

/** Lookup table kernels. */
export const lookupKernels: Kernel[] = [
  { op: "HashTable", compile: (ctx) => compileTable(ctx, false) },
  { op: "HashTableV2", compile: (ctx) => compileTable(ctx, false) },
  { op: "MutableHashTable", compile: (ctx) => compileTable(ctx, true) },
  { op: "MutableHashTableV2", compile: (ctx) => compileTable(ctx, true) },
  { op: "InitializeTable", compile: compileInitializeTable },
  { op: "InitializeTableV2", compile: compileInitializeTable },
  { op: "InitializeTableFromTextFile", compile: compileInitFromTextFile },
  { op: "InitializeTableFromTextFileV2", compile: compileInitFromTextFile },
  { op: "LookupTableImport", compile: compileImport },
  { op: "LookupTableImportV2", compile: compileImport },
  { op: "LookupTableInsert", compile: compileInsert },
  { op: "LookupTableInsertV2", compile: compileInsert },
  { op: "LookupTableRemoveV2", compile: compileRemove },
  ...["LookupTableFind", "LookupTableFindV2"].map((op): Kernel => ({
    op,
    compile: () => ([h, keys, dflt]) => [tableOf(h, op).find(keys, dflt)],
  })),
  ...["LookupTableSize", "LookupTableSizeV2"].map((op): Kernel => ({
    op,
    compile: () => ([h]) => [Tensor.scalar(DataType.DT_INT64, tableOf(h, op).size)],
  })),
  ...["LookupTableExport", "LookupTableExportV2"].map((op): Kernel => ({
    op,
    compile: () => ([h]) => tableOf(h, op).export(),
  })),
];
