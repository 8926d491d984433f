import assert from "node:assert/strict";
import { equals } from "@bufbuild/protobuf";
import { OpDefSchema } from "../../src/proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { BundleHeaderProtoSchema } from "../../src/proto/gen/tensorflow/core/protobuf/tensor_bundle_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { readSavedModelProto } from "../../src/saved_model/reader.ts";
import { TensorBundle } from "../../src/saved_model/tensor_bundle.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { encodeExample } from "../../src/tensor/example.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { exportMnistModel, MNIST_OP_DEFS, mnistSavedModel } from "../../src/trainer/export.ts";
import { readDataSets } from "../../src/trainer/mnist_data.ts";
import { train, type TrainedModel } from "../../src/trainer/train.ts";
import { testdata } from "../testdata.ts";
import { mnistDir, tempDir } from "./mnist_files.ts";

const dec = new TextDecoder();

/** One short training run shared by the tests (and its test images). */
let trained: Promise<{ model: TrainedModel; images: Float32Array }> | undefined;
function trainOnce(): Promise<{ model: TrainedModel; images: Float32Array }> {
  trained ??= (async () => {
    const data = await readDataSets(await mnistDir());
    const model = await train(data, { trainingIteration: 50 });
    return { model, images: data.test.all().images.slice(0, 20 * 784) };
  })();
  return trained;
}

/** softmax(x W + b) in double precision, row by row. */
function reference(model: TrainedModel, images: Float32Array, rows: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const logits = Array.from(model.biases, Number);
    for (let p = 0; p < 784; p++) {
      const x = images[r * 784 + p];
      if (x === 0) continue;
      for (let k = 0; k < 10; k++) logits[k] += x * model.weights[p * 10 + k];
    }
    const max = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - max));
    const sum = e.reduce((a, b) => a + b, 0);
    out.push(e.map((v) => v / sum));
  }
  return out;
}

Deno.test("exportMnistModel() round trip: predict_images and classify serve the trained model", async () => {
  const { model, images } = await trainOnce();
  await using dir = await tempDir("export_test_");
  await exportMnistModel(`${dir.path}/1`, model);
  const loaded = await loadModel(`${dir.path}/1`);
  const rows = 20;
  const want = reference(model, images, rows);

  // predict_images: images [-1, 784] → scores = softmax(x W + b).
  const predict = loaded.signature("predict_images");
  assert.equal(predict.methodName, "tensorflow/serving/predict");
  const scores = predict.run({ images: new Tensor(DataType.DT_FLOAT, [rows, 784], images) }).scores;
  assert.deepEqual(scores.shape, [rows, 10]);
  const got = scores.data as Float32Array;
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < 10; k++) {
      assert.ok(
        Math.abs(got[r * 10 + k] - want[r][k]) < 1e-6,
        `row ${r} class ${k}: ${got[r * 10 + k]} vs ${want[r][k]}`,
      );
    }
  }

  // serving_default: serialized tf.Examples → classes "0".."9" by score, and the sorted scores.
  const classify = loaded.signature("");
  assert.equal(classify.key, "serving_default");
  assert.equal(classify.methodName, "tensorflow/serving/classify");
  const examples = Tensor.strings(
    Array.from(
      { length: rows },
      (_, r) => encodeExample({ x: { floatList: images.subarray(r * 784, (r + 1) * 784) } }),
    ),
  );
  const out = classify.run({ inputs: examples });
  assert.deepEqual(out.classes.shape, [rows, 10]);
  assert.deepEqual(out.scores.shape, [rows, 10]);
  const classes = out.classes.strings.map((s) => dec.decode(s));
  const top = out.scores.data as Float32Array;
  for (let r = 0; r < rows; r++) {
    const order = [...Array(10).keys()].sort((a, b) => want[r][b] - want[r][a] || a - b);
    assert.deepEqual(classes.slice(r * 10, r * 10 + 10), order.map(String), `row ${r}`);
    for (let i = 0; i < 10; i++) {
      assert.equal(top[r * 10 + i], got[r * 10 + order[i]], `row ${r} rank ${i}`);
    }
  }
  // The trained model gets most of these right (the test labels start 7, 2, 1, 0, 4).
  assert.deepEqual(classes.filter((_, i) => i % 10 === 0).slice(0, 5), ["7", "2", "1", "0", "4"]);
});

Deno.test("mnistSavedModel() names and wires the graph as TensorFlow does", async () => {
  const { model } = await trainOnce();
  await using dir = await tempDir("export_test_");
  await exportMnistModel(`${dir.path}/1`, model);
  const sm = await readSavedModelProto(`${dir.path}/1`);
  const mg = sm.metaGraphs[0];
  const nodes = mg.graphDef!.node;
  const model_ = nodes.filter((n) => !n.name.startsWith("save/"));
  assert.deepEqual(model_.map((n) => `${n.name}=${n.op}(${n.input.join(",")})`), [
    "tf_example=Placeholder()",
    "ParseExample/Const=Const()",
    "ParseExample/ParseExampleV2/names=Const()",
    "ParseExample/ParseExampleV2/sparse_keys=Const()",
    "ParseExample/ParseExampleV2/dense_keys=Const()",
    "ParseExample/ParseExampleV2/ragged_keys=Const()",
    "ParseExample/ParseExampleV2=ParseExampleV2(tf_example,ParseExample/ParseExampleV2/names," +
    "ParseExample/ParseExampleV2/sparse_keys,ParseExample/ParseExampleV2/dense_keys," +
    "ParseExample/ParseExampleV2/ragged_keys,ParseExample/Const)",
    "x=Identity(ParseExample/ParseExampleV2)",
    "zeros/shape_as_tensor=Const()",
    "zeros/Const=Const()",
    "zeros=Fill(zeros/shape_as_tensor,zeros/Const)",
    "Variable=VariableV2()",
    "Variable/Assign=Assign(Variable,zeros)",
    "Variable/read=Identity(Variable)",
    "zeros_1=Const()",
    "Variable_1=VariableV2()",
    "Variable_1/Assign=Assign(Variable_1,zeros_1)",
    "Variable_1/read=Identity(Variable_1)",
    "init=NoOp(^Variable/Assign,^Variable_1/Assign)",
    "MatMul=MatMul(x,Variable/read)",
    "add=AddV2(MatMul,Variable_1/read)",
    "y=Softmax(add)",
    "TopKV2/k=Const()",
    "TopKV2=TopKV2(y,TopKV2/k)",
    "Const=Const()",
    "index_to_string/Size=Const()",
    "index_to_string/range/start=Const()",
    "index_to_string/range/delta=Const()",
    "index_to_string/range=Range(index_to_string/range/start,index_to_string/Size," +
    "index_to_string/range/delta)",
    "index_to_string/Cast=Cast(index_to_string/range)",
    "index_to_string/Const=Const()",
    "index_to_string/hash_table=HashTableV2()",
    "index_to_string/table_init/LookupTableImportV2=LookupTableImportV2(" +
    "index_to_string/hash_table,index_to_string/Cast,Const)",
    "Cast=Cast(TopKV2:1)",
    "hash_table_Lookup/LookupTableFindV2=LookupTableFindV2(index_to_string/hash_table,Cast," +
    "index_to_string/Const)",
    "init_all_tables=NoOp(^index_to_string/table_init/LookupTableImportV2)",
  ]);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const table = byName.get("index_to_string/hash_table")!;
  assert.equal(table.attr.shared_name.value.case, "s");
  assert.match(
    dec.decode(table.attr.shared_name.value.value as Uint8Array),
    /^hash_table_[0-9a-f-]{36}$/,
  );
  // Defaults stripped as strip_default_attrs=True does.
  assert.deepEqual(Object.keys(byName.get("MatMul")!.attr), ["T", "_output_shapes"]);
  assert.deepEqual(Object.keys(byName.get("TopKV2")!.attr), ["T", "_output_shapes"]);
  assert.deepEqual(Object.keys(byName.get("tf_example")!.attr), ["_output_shapes", "dtype"]);
  assert.deepEqual(
    mg.metaInfoDef!.strippedOpList!.op.map((o) => o.name),
    [
      "AddV2",
      "Assign",
      "Cast",
      "Const",
      "Fill",
      "HashTableV2",
      "Identity",
      "LookupTableFindV2",
      "LookupTableImportV2",
      "MatMul",
      "MergeV2Checkpoints",
      "NoOp",
      "Pack",
      "ParseExampleV2",
      "Placeholder",
      "PlaceholderWithDefault",
      "Range",
      "RestoreV2",
      "SaveV2",
      "Select",
      "ShardedFilename",
      "Softmax",
      "StaticRegexFullMatch",
      "StringJoin",
      "TopKV2",
      "VariableV2",
    ],
  );

  // Signatures as TF Serving's tutorial shows them.
  const sigs = Object.entries(mg.signatureDef).map(([key, s]) => ({
    key,
    method: s.methodName,
    io: [...Object.entries(s.inputs), ...Object.entries(s.outputs)].map(([alias, t]) =>
      `${alias}=${t.encoding.value} ${DataType[t.dtype]} ${
        t.tensorShape?.unknownRank ? "?" : `[${t.tensorShape?.dim.map((d) => d.size).join(",")}]`
      }`
    ),
  }));
  assert.deepEqual(sigs, [
    {
      key: "predict_images",
      method: "tensorflow/serving/predict",
      io: ["images=x:0 DT_FLOAT [-1,784]", "scores=y:0 DT_FLOAT [-1,10]"],
    },
    {
      key: "serving_default",
      method: "tensorflow/serving/classify",
      io: [
        "inputs=tf_example:0 DT_STRING ?",
        "classes=hash_table_Lookup/LookupTableFindV2:0 DT_STRING [-1,10]",
        "scores=TopKV2:0 DT_FLOAT [-1,10]",
      ],
    },
  ]);
  // Collections: variables, the table initializer, the main op.
  assert.deepEqual(Object.keys(mg.collectionDef), [
    "saved_model_main_op",
    "table_initializer",
    "trainable_variables",
    "variables",
  ]);
  const main = mg.collectionDef.saved_model_main_op.kind;
  assert.ok(main.case === "nodeList");
  assert.deepEqual(main.value.value, ["init_all_tables"]);
  const init = mg.collectionDef.table_initializer.kind;
  assert.ok(init.case === "nodeList");
  assert.deepEqual(init.value.value, ["index_to_string/table_init/LookupTableImportV2"]);
  assert.equal(mg.saverDef!.restoreOpName, "save/restore_all");
});

Deno.test("exportMnistModel() saves W and b as Variable and Variable_1", async () => {
  const { model } = await trainOnce();
  await using dir = await tempDir("export_test_");
  await exportMnistModel(`${dir.path}/1`, model);
  using bundle = await TensorBundle.open(`${dir.path}/1/variables/variables`);
  using tf = await TensorBundle.open(
    testdata("saved_model_half_plus_two_cpu/00000123/variables/variables"),
  );
  assert.ok(equals(BundleHeaderProtoSchema, bundle.header, tf.header));
  assert.deepEqual(bundle.keys(), ["Variable", "Variable_1"]);
  const w = bundle.entry("Variable");
  const b = bundle.entry("Variable_1");
  assert.deepEqual(
    [w.dtype, w.shape?.dim.map((d) => d.size), w.shardId, w.offset, w.size],
    [DataType.DT_FLOAT, [784n, 10n], 0, 0n, 31360n],
  );
  assert.deepEqual(
    [b.dtype, b.shape?.dim.map((d) => d.size), b.shardId, b.offset, b.size],
    [DataType.DT_FLOAT, [10n], 0, 31360n, 40n],
  );
  // read() checks each entry's CRC32C.
  assert.deepEqual((await bundle.read("Variable")).data, model.weights);
  assert.deepEqual((await bundle.read("Variable_1")).data, model.biases);
});

Deno.test("exportMnistModel() is deterministic given the table's shared name", async () => {
  const { model } = await trainOnce();
  await using dir = await tempDir("export_test_");
  const opts = { tableSharedName: "hash_table_fixed" };
  await exportMnistModel(`${dir.path}/1`, model, opts);
  await exportMnistModel(`${dir.path}/2`, model, opts);
  for (const f of ["saved_model.pb", "variables/variables.index"]) {
    assert.deepEqual(
      await Deno.readFile(`${dir.path}/1/${f}`),
      await Deno.readFile(`${dir.path}/2/${f}`),
    );
  }
  // And refuses to overwrite a version.
  await assert.rejects(
    () => exportMnistModel(`${dir.path}/1`, model),
    (e) => e instanceof ServingError && e.code === Code.ALREADY_EXISTS,
  );
});

Deno.test("MNIST_OP_DEFS agree with the testdata's TF 2.14 OpDefs", async () => {
  const sm = await readSavedModelProto(testdata("saved_model_half_plus_two_tf2_cpu/00000123"));
  const theirs = new Map(sm.metaGraphs[0].metaInfoDef!.strippedOpList!.op.map((o) => [o.name, o]));
  let shared = 0;
  for (const d of MNIST_OP_DEFS) {
    const t = theirs.get(d.name);
    if (!t) continue;
    shared++;
    assert.ok(equals(OpDefSchema, d, t), d.name);
  }
  assert.equal(shared, 2); // AddV2, ParseExampleV2
  assert.throws(
    () => mnistSavedModel({ weights: new Float32Array(10), biases: new Float32Array(10) }),
    /W has 10 values \(want 7840\)/,
  );
});
