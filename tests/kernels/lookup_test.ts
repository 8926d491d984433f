import assert from "node:assert/strict";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { lookupKernels, LookupTable } from "../../src/kernels/lookup.ts";
import { Resources } from "../../src/runtime/resources.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, compileOp, runOp } from "./harness.ts";

const dec = new TextDecoder();
const { DT_INT64, DT_STRING, DT_FLOAT, DT_INT32 } = DataType;
const texts = (t: Tensor) => (t.data as Uint8Array[]).map((b) => dec.decode(b));
const ints = (t: Tensor) => Array.from(t.data as BigInt64Array, Number);

function throwsWith(fn: () => unknown, code: Code, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(e.code, code);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

function table(
  res: Resources,
  keyDtype: DataType,
  valueDtype: DataType,
  extra: Record<string, AttrValue> = {},
  op = "HashTableV2",
): Tensor {
  return runOp(lookupKernels, op, [], {
    key_dtype: attr.type(keyDtype),
    value_dtype: attr.type(valueDtype),
    ...extra,
  }, res)[0];
}

const run = (op: string, inputs: Tensor[], res: Resources, attrs: Record<string, AttrValue> = {}) =>
  runOp(lookupKernels, op, inputs, attrs, res);

Deno.test("HashTableV2 int64 -> string, as index_to_string builds it", () => {
  const res = new Resources();
  const h = table(res, DT_INT64, DT_STRING, { shared_name: attr.string("index_to_string") });
  assert.equal(h.dtype, DataType.DT_RESOURCE);
  assert.ok((h.data as unknown[])[0] instanceof LookupTable);
  const keys = Tensor.int64([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const values = Tensor.strings(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);

  throwsWith(
    () => run("LookupTableFindV2", [h, Tensor.int64([1]), Tensor.strings(["UNK"], [])], res),
    Code.FAILED_PRECONDITION,
    "Table not initialized.",
  );
  assert.deepEqual(ints(run("LookupTableSizeV2", [h], res)[0]), [0]);

  run("LookupTableImportV2", [h, keys, values], res);
  const [found] = run(
    "LookupTableFindV2",
    [h, Tensor.int64([3, 12, -1, 9, 2n ** 60n, 0], [2, 3]), Tensor.strings(["UNK"], [])],
    res,
  );
  assert.deepEqual(found.shape, [2, 3]);
  assert.deepEqual(texts(found), ["3", "UNK", "UNK", "9", "UNK", "0"]);
  assert.deepEqual(ints(run("LookupTableSizeV2", [h], res)[0]), [10]);

  // Initialising again with the same number of entries is a no-op; a different one fails.
  run("LookupTableImportV2", [h, keys, values], res);
  throwsWith(
    () => run("LookupTableImportV2", [h, Tensor.int64([1]), Tensor.strings(["x"])], res),
    Code.FAILED_PRECONDITION,
    "Table was already initialized with different data.",
  );
  // A second node with the same shared_name sees the same table.
  const h2 = table(res, DT_INT64, DT_STRING, { shared_name: attr.string("index_to_string") });
  assert.equal((h2.data as unknown[])[0], (h.data as unknown[])[0]);
  throwsWith(
    () => table(res, DT_STRING, DT_STRING, { shared_name: attr.string("index_to_string") }),
    Code.INVALID_ARGUMENT,
    "Conflicting key/value dtypes string->string with int64-string for table index_to_string",
  );
  throwsWith(
    () => run("LookupTableInsertV2", [h, Tensor.int64([1]), Tensor.strings(["x"])], res),
    Code.UNIMPLEMENTED,
    "Insert not supported by InitializableLookupTable implementations",
  );
});

Deno.test("HashTableV2 string -> int64 via InitializeTableV2, with per-key defaults", () => {
  const res = new Resources();
  const h = table(res, DT_STRING, DT_INT64);
  run("InitializeTableV2", [
    h,
    Tensor.strings(["emerson", "lake", "palmer", "é"]),
    Tensor.int64([0, 1, 2, 3]),
  ], res);
  const [ids] = run(
    "LookupTableFindV2",
    [h, Tensor.strings(["lake", "tarkus", "é", "e"]), Tensor.int64([-1], [])],
    res,
  );
  assert.deepEqual(ints(ids), [1, -1, 3, -1]);
  const [perKey] = run(
    "LookupTableFindV2",
    [h, Tensor.strings(["lake", "tarkus"]), Tensor.int64([10, 20])],
    res,
  );
  assert.deepEqual(ints(perKey), [1, 20]);
  throwsWith(
    () => run("LookupTableFindV2", [h, Tensor.int64([1]), Tensor.int64([-1], [])], res),
    Code.INVALID_ARGUMENT,
    "Key must be type string but got int64",
  );
  throwsWith(
    () => run("LookupTableFindV2", [h, Tensor.strings(["a", "b"]), Tensor.int64([1, 2, 3])], res),
    Code.INVALID_ARGUMENT,
    "Expected shape [] or [2] for default value, got [3]",
  );
});

Deno.test("HashTable rejects conflicting duplicate keys, accepts equal ones", () => {
  const res = new Resources();
  const h = table(res, DT_INT64, DT_FLOAT, {}, "HashTable");
  throwsWith(
    () => run("InitializeTable", [h, Tensor.int64([1, 1]), Tensor.float32([0.5, 0.25])], res),
    Code.FAILED_PRECONDITION,
    "HashTable has different value for same key. Key 1 has 0.5 and trying to add value 0.25",
  );
  run("InitializeTable", [h, Tensor.int64([1, 1, 2]), Tensor.float32([0.5, 0.5, 2])], res);
  const [v] = run("LookupTableFind", [h, Tensor.int64([2, 1, 3]), Tensor.float32([0], [])], res);
  assert.deepEqual(Array.from(v.data as Float32Array), [2, 0.5, 0]);
  throwsWith(
    () =>
      run(
        "InitializeTable",
        [h, Tensor.int64([[1]].flat(), [1, 1]), Tensor.float32([1], [1, 1])],
        res,
      ),
    Code.INVALID_ARGUMENT,
    "Keys must be a vector, but received shape[1,1]",
  );
});

Deno.test("MutableHashTableV2: insert, import, remove, export, size", () => {
  const res = new Resources();
  const h = table(res, DT_STRING, DT_INT32, {}, "MutableHashTableV2");
  const find = (keys: string[]) =>
    Array.from(
      run("LookupTableFindV2", [h, Tensor.strings(keys), Tensor.int32([-1], [])], res)[0]
        .data as Int32Array,
    );
  assert.deepEqual(find(["a"]), [-1]);
  run("LookupTableInsertV2", [h, Tensor.strings(["a", "b"]), Tensor.int32([1, 2])], res);
  run("LookupTableInsertV2", [h, Tensor.strings(["b", "c"]), Tensor.int32([20, 30])], res);
  assert.deepEqual(find(["a", "b", "c", "d"]), [1, 20, 30, -1]);
  run("LookupTableRemoveV2", [h, Tensor.strings(["a"])], res);
  assert.deepEqual(find(["a", "b"]), [-1, 20]);
  const [k, v] = run("LookupTableExportV2", [h], res);
  assert.deepEqual(texts(k), ["b", "c"]);
  assert.deepEqual(Array.from(v.data as Int32Array), [20, 30]);
  run("LookupTableImportV2", [h, Tensor.strings(["z"]), Tensor.int32([26])], res);
  assert.deepEqual(find(["b", "z"]), [-1, 26]);
  assert.deepEqual(ints(run("LookupTableSizeV2", [h], res)[0]), [1]);
  throwsWith(
    () => run("LookupTableInsertV2", [h, Tensor.strings(["a", "b"]), Tensor.int32([1])], res),
    Code.INVALID_ARGUMENT,
    "Expected shape [2] for value, got [1]",
  );
  throwsWith(
    () => run("InitializeTableV2", [h, Tensor.strings(["a"]), Tensor.int32([1])], res),
    Code.INVALID_ARGUMENT,
    "Table localhost test_MutableHashTableV2 is not initializable",
  );
});

Deno.test("An unshared table is keyed by its node name", () => {
  const res = new Resources();
  const a = compileOp(
    lookupKernels,
    "HashTableV2",
    {
      key_dtype: attr.type(DT_INT64),
      value_dtype: attr.type(DT_INT64),
    },
    0,
    res,
  )([])[0];
  const again = compileOp(
    lookupKernels,
    "HashTableV2",
    {
      key_dtype: attr.type(DT_INT64),
      value_dtype: attr.type(DT_INT64),
    },
    0,
    res,
  )([])[0];
  // Same node name → same table (a graph compiled twice keeps its state).
  assert.equal((a.data as unknown[])[0], (again.data as unknown[])[0]);
});

const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted";

Deno.test({
  name: "InitializeTableFromTextFileV2 reads vocabularies",
  ignore: !canWrite,
  fn() {
    const dir = Deno.makeTempDirSync();
    try {
      const vocab = `${dir}/vocab.txt`;
      Deno.writeTextFileSync(vocab, "apple\nbanana\r\ncherry\n");
      const res = new Resources();
      // string -> line number, like index_table_from_file.
      const h = table(res, DT_STRING, DT_INT64);
      const init = (h: Tensor, file: string, attrs: Record<string, AttrValue>) =>
        run("InitializeTableFromTextFileV2", [h, Tensor.strings([file], [])], res, attrs);
      init(h, vocab, { key_index: attr.int(-2), value_index: attr.int(-1) });
      const [ids] = run(
        "LookupTableFindV2",
        [h, Tensor.strings(["cherry", "banana", "kiwi", "apple"]), Tensor.int64([-1], [])],
        res,
      );
      assert.deepEqual(ints(ids), [2, 1, -1, 0]);
      // Initialising from a file again is fine.
      init(h, vocab, { key_index: attr.int(-2), value_index: attr.int(-1) });

      // Columns: id \t label, int64 -> string.
      const labels = `${dir}/labels.tsv`;
      Deno.writeTextFileSync(labels, "10\tten\n 20 \ttwenty\n30\tthirty");
      const h2 = table(res, DT_INT64, DT_STRING, { shared_name: attr.string("labels") });
      init(h2, labels, { key_index: attr.int(0), value_index: attr.int(1) });
      const [names] = run(
        "LookupTableFindV2",
        [h2, Tensor.int64([30, 10, 20, 40]), Tensor.strings(["?"], [])],
        res,
      );
      assert.deepEqual(texts(names), ["thirty", "ten", "twenty", "?"]);

      // vocab_size truncates, and must not exceed the file.
      const h3 = table(res, DT_STRING, DT_INT64, { shared_name: attr.string("t3") });
      init(h3, vocab, {
        key_index: attr.int(-2),
        value_index: attr.int(-1),
        vocab_size: attr.int(2),
      });
      assert.deepEqual(ints(run("LookupTableSizeV2", [h3], res)[0]), [2]);
      const h4 = table(res, DT_STRING, DT_INT64, { shared_name: attr.string("t4") });
      throwsWith(
        () =>
          init(h4, vocab, {
            key_index: attr.int(-2),
            value_index: attr.int(-1),
            vocab_size: attr.int(5),
          }),
        Code.INVALID_ARGUMENT,
        `Invalid vocab_size in ${vocab}: expected 5 but got 3`,
      );
      throwsWith(
        () => init(h4, labels, { key_index: attr.int(-2), value_index: attr.int(2) }),
        Code.INVALID_ARGUMENT,
        `Invalid number of columns in ${labels} line 0 (10\tten) : expected at least 3 got 2`,
      );
      const h5 = table(res, DT_INT64, DT_INT64, { shared_name: attr.string("t5") });
      throwsWith(
        () => init(h5, labels, { key_index: attr.int(1), value_index: attr.int(-1) }),
        Code.INVALID_ARGUMENT,
        "Field ten in line 0 is not a valid int64.",
      );
      throwsWith(
        () =>
          init(h5, `${dir}/missing.txt`, { key_index: attr.int(-2), value_index: attr.int(-1) }),
        Code.NOT_FOUND,
        `${dir}/missing.txt; No such file or directory`,
      );
      const blank = `${dir}/blank.txt`;
      Deno.writeTextFileSync(blank, "a\n\nb\n");
      throwsWith(
        () => init(h4, blank, { key_index: attr.int(-2), value_index: attr.int(-1) }),
        Code.INVALID_ARGUMENT,
        `Invalid content in ${blank}: empty line found at position 3.`,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
