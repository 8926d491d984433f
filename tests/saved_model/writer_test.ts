import assert from "node:assert/strict";
import { create, equals, fromBinary } from "@bufbuild/protobuf";
import {
  type AttrValue,
  AttrValueSchema,
} from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import {
  type NodeDef,
  NodeDefSchema,
} from "../../src/proto/gen/tensorflow/core/framework/node_def_pb.ts";
import {
  type OpDef,
  OpDefSchema,
} from "../../src/proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { VariableDefSchema } from "../../src/proto/gen/tensorflow/core/framework/variable_pb.ts";
import { SaverDefSchema } from "../../src/proto/gen/tensorflow/core/protobuf/saver_pb.ts";
import type { SavedModel } from "../../src/proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import { Code } from "../../src/errors.ts";
import { attrValue, GraphBuilder, signatureDef, tensorInfo } from "../../src/graph/builder.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { readSavedModelProto } from "../../src/saved_model/reader.ts";
import { readTable } from "../../src/saved_model/table.ts";
import { TensorBundle } from "../../src/saved_model/tensor_bundle.ts";
import {
  addConst,
  addSaver,
  addVariable,
  buildSavedModel,
  CPU_0,
  CPU_ANY,
  type ExportVariable,
  GRAPH_DEF_VERSIONS,
  outputShapes,
  type SavedModelSpec,
  TENSORFLOW_VERSION,
  WRITER_OP_DEFS,
  writeSavedModel,
} from "../../src/saved_model/writer.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { testdata } from "../testdata.ts";
import { assertServingError } from "../assert.ts";

/** TF 1.14 (`strip_default_attrs=False`), variables a, a2, b, c, c2, all on /cpu:0. */
const TF114 = "saved_model_half_plus_two_cpu/00000123";
/** TF 2.14: its saver lives in a function, with TF 2.x's sharded-suffix ops. */
const TF214 = "saved_model_half_plus_two_tf2_cpu/00000123";

const rejects = assertServingError;

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "writer_test_" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** The testdata's OpDefs, by name (TF 2.14's where it has them). */
async function testdataOpDefs(): Promise<Map<string, OpDef>> {
  const defs = new Map<string, OpDef>();
  for (const dir of [TF214, TF114]) {
    const sm = await readSavedModelProto(testdata(dir));
    for (const op of sm.metaGraphs[0].metaInfoDef!.strippedOpList!.op) {
      if (!defs.has(op.name)) defs.set(op.name, op);
    }
  }
  return defs;
}

/** A node's attrs without those equal to their OpDef default (what strip_default_attrs does). */
function strippedAttrs(n: NodeDef, defs: ReadonlyMap<string, OpDef>): Record<string, AttrValue> {
  const op = defs.get(n.op)!;
  const out: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(n.attr)) {
    const d = op.attr.find((a) => a.name === k)?.defaultValue;
    if (d && equals(AttrValueSchema, v, d)) continue;
    out[k] = v;
  }
  return out;
}

function sameAttrs(a: Record<string, AttrValue>, b: Record<string, AttrValue>, where: string) {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `attrs of ${where}`);
  for (const k of Object.keys(a)) {
    assert.ok(equals(AttrValueSchema, a[k], b[k]), `attr ${k} of ${where}`);
  }
}

/**
 * The half-plus-two graph of the testdata (`y = a * x + b`) with its five variables, built with
 * the writer's helpers; values as given.
 */
function halfPlusTwo(values: Record<string, number>): SavedModelSpec {
  const g = new GraphBuilder();
  const variables: ExportVariable[] = [];
  for (const name of ["a", "a2", "b", "c", "c2"]) {
    addConst(g, `${name}/initial_value`, Tensor.scalar(DataType.DT_FLOAT, 0));
    addVariable(g, name, `${name}/initial_value`, DataType.DT_FLOAT, []);
    variables.push({
      name,
      value: Tensor.scalar(DataType.DT_FLOAT, values[name]),
      initialValue: `${name}/initial_value:0`,
    });
  }
  g.op("x", "Placeholder", [], {
    dtype: attrValue.type(DataType.DT_FLOAT),
    shape: attrValue.shape([-1, 1]),
    _output_shapes: outputShapes([-1, 1]),
  });
  g.op("Mul", "Mul", ["a/read", "x"], { T: attrValue.type(DataType.DT_FLOAT) });
  g.op("y", "AddV2", ["Mul", "b/read"], { T: attrValue.type(DataType.DT_FLOAT) });
  return {
    nodes: g.nodes,
    signatures: {
      serving_default: signatureDef(
        { x: tensorInfo("x:0", DataType.DT_FLOAT, [-1, 1]) },
        { y: tensorInfo("y:0", DataType.DT_FLOAT, [-1, 1]) },
        "tensorflow/serving/predict",
      ),
    },
    variables,
  };
}

/** halfPlusTwo() with the OpDefs of Mul and AddV2 from the testdata. */
async function halfPlusTwoSpec(values: Record<string, number>): Promise<SavedModelSpec> {
  const defs = await testdataOpDefs();
  return { ...halfPlusTwo(values), opDefs: [defs.get("Mul")!, defs.get("AddV2")!] };
}

Deno.test("WRITER_OP_DEFS are the OpDefs in the testdata's stripped_op_list", async () => {
  const defs = await testdataOpDefs();
  for (const d of WRITER_OP_DEFS) {
    const want = defs.get(d.name);
    assert.ok(want, `the testdata has no OpDef ${d.name}`);
    assert.ok(equals(OpDefSchema, d, want), `OpDef ${d.name} differs from the testdata's`);
  }
});

Deno.test("addSaver() builds the saver nodes TensorFlow writes", async (t) => {
  const defs = await testdataOpDefs();
  const tf114 = (await readSavedModelProto(testdata(TF114))).metaGraphs[0];
  const g = new GraphBuilder();
  const saverDef = addSaver(
    g,
    // Out of order on purpose: the saver sorts by name.
    ["c2", "a", "b", "a2", "c"].map((name) => ({ name, dtype: DataType.DT_FLOAT, shape: [] })),
  );
  const ours = new Map(g.nodes.map((n) => [n.name, n]));

  await t.step("saver_def equals TF's", () => {
    assert.ok(equals(SaverDefSchema, saverDef, tf114.saverDef!));
  });

  await t.step("every save/ node of TF 1.14 is there, alike", () => {
    const theirs = tf114.graphDef!.node.filter((n) => n.name.startsWith("save/"));
    // TF 1.x appended a fixed "_temp_<uuid>/part"; TF 2.x chooses it with a Select (below).
    const renamed = new Map([["save/StringJoin/inputs_1", "save/Select"]]);
    for (const n of theirs) {
      if (renamed.has(n.name)) continue;
      const mine = ours.get(n.name);
      assert.ok(mine, `no node ${n.name}`);
      assert.equal(mine.op, n.op, n.name);
      assert.deepEqual(mine.input, n.input.map((i) => renamed.get(i) ?? i), `inputs of ${n.name}`);
      sameAttrs(strippedAttrs(mine, defs), strippedAttrs(n, defs), n.name);
      // That model ran under tf.device("/cpu:0"); the saver's own devices are CPU:0 anyway.
      if (mine.device === CPU_0) assert.equal(mine.device, n.device, `device of ${n.name}`);
    }
    const names = new Set(theirs.map((n) => n.name));
    const extra = [...ours.keys()].filter((n) => !names.has(n));
    assert.deepEqual(extra, [
      "save/StaticRegexFullMatch",
      "save/Const_1",
      "save/Const_2",
      "save/Select",
    ]);
    // The saver's save and restore ops are pinned to CPU:0 as TF pins them.
    for (const n of ["save/SaveV2", "save/RestoreV2", "save/MergeV2Checkpoints", "save/Identity"]) {
      assert.equal(ours.get(n)!.device, CPU_0, n);
    }
  });

  await t.step("the sharded-suffix ops are TF 2.14's", async () => {
    const tf214 = (await readSavedModelProto(testdata(TF214))).metaGraphs[0];
    const fn = tf214.graphDef!.library!.function.find((f) =>
      f.nodeDef.some((n) => n.op === "StaticRegexFullMatch")
    )!;
    const theirs = new Map(fn.nodeDef.map((n) => [n.name, n]));
    // In the function: StaticRegexFullMatch, Const (".part"), Const_1 ("_temp/part"), Select.
    const pairs: [string, string][] = [
      ["save/StaticRegexFullMatch", "StaticRegexFullMatch"],
      ["save/Const_1", "Const"],
      ["save/Const_2", "Const_1"],
      ["save/Select", "Select"],
      ["save/StringJoin", "StringJoin"],
    ];
    for (const [mine, theirName] of pairs) {
      const a = ours.get(mine)!;
      const b = theirs.get(theirName)!;
      assert.equal(a.op, b.op, mine);
      assert.equal(a.device, CPU_ANY, mine);
      assert.equal(b.device, CPU_ANY, theirName);
      const attrs = strippedAttrs(b, defs);
      delete attrs._user_specified_name;
      sameAttrs(strippedAttrs(a, defs), attrs, mine);
    }
  });
});

Deno.test("writeSavedModel() saves variables as TensorFlow: same data bytes, same index entries", async () => {
  // The testdata's variable values, re-exported through the writer.
  const prefix = testdata(`${TF114}/variables/variables`);
  using bundle = await TensorBundle.open(prefix);
  const values: Record<string, number> = {};
  for (const k of bundle.keys()) values[k] = Number((await bundle.read(k)).numbers[0]);
  assert.deepEqual(Object.keys(values), ["a", "a2", "b", "c", "c2"]);
  await using dir = await tempDir();
  const exportDir = `${dir.path}/00000123`;
  await writeSavedModel(exportDir, await halfPlusTwoSpec(values));
  assert.deepEqual(await entries(exportDir), ["saved_model.pb", "variables"]);
  assert.deepEqual(await entries(`${exportDir}/variables`), [
    "variables.data-00000-of-00001",
    "variables.index",
  ]);
  const ours = (f: string) => Deno.readFile(`${exportDir}/variables/${f}`);
  const theirs = (f: string) => Deno.readFile(testdata(`${TF114}/variables/${f}`));
  const data = "variables.data-00000-of-00001";
  assert.deepEqual(await ours(data), await theirs(data));
  // The index holds the same entries (header, then each tensor's dtype, shape, offset, size and
  // CRC), bytes for bytes; only TF's snappy compression of the block differs.
  const index = "variables.index";
  assert.deepEqual(readTable(await ours(index), "ours"), readTable(await theirs(index), "theirs"));
  // And the model loads and computes y = 0.5 x + 2 through the restore op.
  const model = await loadModel(exportDir);
  const y = model.signature("").run({ x: Tensor.float32([1, 2, 3], [3, 1]) }).y;
  assert.deepEqual(Array.from(y.data as Float32Array), [2.5, 3, 3.5]);
});

Deno.test("buildSavedModel() writes the MetaGraphDef as TF 2.14's builder does", async () => {
  const spec = await halfPlusTwoSpec({ a: 0.5, a2: 1, b: 2, c: 3, c2: 4 });
  const sm: SavedModel = buildSavedModel(spec);
  assert.equal(sm.savedModelSchemaVersion, 1n);
  assert.equal(sm.metaGraphs.length, 1);
  const mg = sm.metaGraphs[0];
  const tf214 = (await readSavedModelProto(testdata(TF214))).metaGraphs[0];
  // Version strings and graph versions of TF 2.14, as the testdata has them.
  assert.equal(mg.metaInfoDef!.tensorflowVersion, tf214.metaInfoDef!.tensorflowVersion);
  assert.equal(mg.metaInfoDef!.tensorflowVersion, TENSORFLOW_VERSION);
  assert.equal(mg.metaInfoDef!.tensorflowGitVersion, "unknown");
  assert.equal(mg.graphDef!.versions!.producer, tf214.graphDef!.versions!.producer);
  assert.equal(mg.graphDef!.versions!.minConsumer, tf214.graphDef!.versions!.minConsumer);
  assert.equal(mg.graphDef!.versions!.producer, GRAPH_DEF_VERSIONS.producer);
  assert.deepEqual(mg.metaInfoDef!.tags, ["serve"]);
  assert.equal(mg.metaInfoDef!.strippedDefaultAttrs, true);
  // The stripped op list: every op used, once, sorted by name.
  const used = [...new Set(mg.graphDef!.node.map((n) => n.op))].sort();
  assert.deepEqual(mg.metaInfoDef!.strippedOpList!.op.map((o) => o.name), used);
  // Default-valued attrs are gone; attrs are in key order.
  const byName = new Map(mg.graphDef!.node.map((n) => [n.name, n]));
  assert.deepEqual(Object.keys(byName.get("a")!.attr), ["_output_shapes", "dtype", "shape"]);
  assert.deepEqual(Object.keys(byName.get("save/Assign")!.attr), ["T", "_class", "_output_shapes"]);
  assert.deepEqual(Object.keys(byName.get("save/StringJoin")!.attr), ["N", "_output_shapes"]);
  for (const n of mg.graphDef!.node) {
    const keys = Object.keys(n.attr);
    assert.deepEqual(keys, [...keys].sort(), `attr order of ${n.name}`);
  }
  // Collections: VariableDefs as RefVariable.to_proto writes them (TF 1.1's fields, then
  // initial_value_name and trainable).
  assert.deepEqual(Object.keys(mg.collectionDef), ["trainable_variables", "variables"]);
  const vars = mg.collectionDef.variables.kind;
  assert.equal(vars.case, "bytesList");
  const first = vars.value.value[0];
  const tf11 =
    (await readSavedModelProto(testdata("saved_model_half_plus_two_2_versions/00000123")))
      .metaGraphs[0].collectionDef.variables.kind;
  assert.equal(tf11.case, "bytesList");
  assert.deepEqual(first.subarray(0, tf11.value.value[0].length), tf11.value.value[0]);
  const def = fromBinary(VariableDefSchema, first);
  assert.equal(def.initialValueName, "a/initial_value:0");
  assert.equal(def.trainable, true);
  assert.equal(vars.value.value.length, 5);

  // Without stripping, defaults stay and the flag says so.
  const full = buildSavedModel({ ...spec, stripDefaultAttrs: false }).metaGraphs[0];
  assert.equal(full.metaInfoDef!.strippedDefaultAttrs, false);
  const assign = full.graphDef!.node.find((n) => n.name === "save/Assign")!;
  assert.ok("use_locking" in assign.attr && "validate_shape" in assign.attr);
});

Deno.test("buildSavedModel() rejects what TensorFlow could not export", async (t) => {
  const spec = await halfPlusTwoSpec({ a: 0.5, a2: 1, b: 2, c: 3, c2: 4 });
  await t.step("an op without an OpDef", async () => {
    const custom = create(NodeDefSchema, { name: "custom", op: "MyCustomOp", input: ["x"] });
    await rejects(
      () => buildSavedModel({ ...spec, nodes: [...spec.nodes, custom], opDefs: [] }),
      Code.INVALID_ARGUMENT,
      "no OpDef for op(s) MyCustomOp",
    );
  });
  await t.step("a variable that is not a VariableV2 node, or of another shape", async () => {
    const variables = spec.variables!;
    await rejects(
      () => buildSavedModel({ ...spec, variables: [...variables, { ...variables[0], name: "x" }] }),
      Code.INVALID_ARGUMENT,
      `Cannot export variable "x": the graph has no VariableV2 node`,
    );
    await rejects(
      () =>
        buildSavedModel({
          ...spec,
          variables: [{ name: "a", value: Tensor.float32([1, 2]) }],
        }),
      Code.INVALID_ARGUMENT,
      `variable "a": its value is DT_FLOAT [2], the node holds DT_FLOAT []`,
    );
  });
  await t.step("a saver already in the graph, a duplicate node", async () => {
    const g = new GraphBuilder();
    g.op("save/Const", "NoOp");
    await rejects(
      () => buildSavedModel({ ...spec, nodes: [...spec.nodes, ...g.nodes] }),
      Code.INVALID_ARGUMENT,
      `already has a node "save/Const"`,
    );
    await rejects(
      () => buildSavedModel({ ...spec, nodes: [...spec.nodes, spec.nodes[0]] }),
      Code.INVALID_ARGUMENT,
      "duplicate node",
    );
  });
  await t.step("a signature or main op naming a missing node", async () => {
    await rejects(
      () =>
        buildSavedModel({
          ...spec,
          signatures: {
            s: signatureDef({}, { z: tensorInfo("z:0", DataType.DT_FLOAT) }, "m"),
          },
        }),
      Code.INVALID_ARGUMENT,
      `tensor "z" of signature "s" names a missing node "z"`,
    );
    await rejects(
      () => buildSavedModel({ ...spec, mainOp: "init_all_tables" }),
      Code.INVALID_ARGUMENT,
      "the main op names a missing node",
    );
  });
});

Deno.test("writeSavedModel() publishes a version atomically or not at all", async (t) => {
  const spec = await halfPlusTwoSpec({ a: 0.5, a2: 1, b: 2, c: 3, c2: 4 });
  await using dir = await tempDir();
  const base = `${dir.path}/models/half`;

  await t.step("stages beside the target, then renames; creates the base", async () => {
    let staged = "";
    await writeSavedModel(`${base}/1`, spec, {
      async onStaged(path) {
        staged = path;
        assert.deepEqual(await entries(path), ["saved_model.pb", "variables"]);
        await assert.rejects(() => Deno.stat(`${base}/1`), Deno.errors.NotFound);
      },
    });
    assert.match(staged, new RegExp(`^${base}/\\.tmp-1-[0-9a-f]{12}$`));
    assert.deepEqual(await entries(base), ["1"]);
  });

  await t.step("a failure leaves neither the version nor the staging dir", async () => {
    await assert.rejects(
      () =>
        writeSavedModel(`${base}/2`, spec, {
          onStaged() {
            throw new Error("disk on fire");
          },
        }),
      /disk on fire/,
    );
    assert.deepEqual(await entries(base), ["1"]);
  });

  await t.step("an existing version is refused, before anything is written", async () => {
    const before = await Deno.readFile(`${base}/1/saved_model.pb`);
    let staged = false;
    await rejects(
      () => writeSavedModel(`${base}/1`, spec, { onStaged: () => void (staged = true) }),
      Code.ALREADY_EXISTS,
      `Export directory already exists, and isn't empty. Please choose a different export ` +
        `directory, or delete all the contents of the specified directory: ${base}/1`,
    );
    assert.equal(staged, false);
    assert.deepEqual(await Deno.readFile(`${base}/1/saved_model.pb`), before);
    await Deno.writeTextFile(`${base}/3`, "a file");
    await rejects(() => writeSavedModel(`${base}/3`, spec), Code.ALREADY_EXISTS, `${base}/3`);
    await Deno.remove(`${base}/3`);
  });

  await t.step("a version that appears while staging is not overwritten", async () => {
    await rejects(
      () =>
        writeSavedModel(`${base}/4`, spec, {
          async onStaged() {
            await Deno.mkdir(`${base}/4`);
            await Deno.writeTextFile(`${base}/4/other`, "the other writer's");
          },
        }),
      Code.ALREADY_EXISTS,
      `${base}/4`,
    );
    assert.deepEqual(await entries(`${base}/4`), ["other"]);
    assert.deepEqual(await entries(base), ["1", "4"]);
  });

  await t.step("an existing empty directory is taken, as SavedModelBuilder takes it", async () => {
    await Deno.mkdir(`${base}/5`);
    await writeSavedModel(`${base}/5`, spec);
    assert.deepEqual(await entries(`${base}/5`), ["saved_model.pb", "variables"]);
  });

  await t.step("a model without variables has no saver and an empty variables dir", async () => {
    const g = new GraphBuilder();
    g.op("x", "Placeholder", [], { dtype: attrValue.type(DataType.DT_FLOAT) });
    g.op("y", "Identity", ["x"], { T: attrValue.type(DataType.DT_FLOAT) });
    await writeSavedModel(`${base}/6`, {
      nodes: g.nodes,
      signatures: {
        serving_default: signatureDef(
          { x: tensorInfo("x:0", DataType.DT_FLOAT) },
          { y: tensorInfo("y:0", DataType.DT_FLOAT) },
          "tensorflow/serving/predict",
        ),
      },
    });
    assert.deepEqual(await entries(`${base}/6/variables`), []);
    const sm = await readSavedModelProto(`${base}/6`);
    assert.equal(sm.metaGraphs[0].saverDef, undefined);
    const y = (await loadModel(`${base}/6`)).signature("").run({ x: Tensor.float32([7]) }).y;
    assert.deepEqual(Array.from(y.data as Float32Array), [7]);
  });
});

Deno.test("addConst() writes values as make_tensor_proto does", () => {
  const g = new GraphBuilder();
  addConst(g, "big", Tensor.int32([784, 10]));
  addConst(g, "small", Tensor.scalar(DataType.DT_INT32, 10));
  addConst(g, "filled", { dtype: DataType.DT_FLOAT, shape: [10], fill: 0 });
  const [big, small, filled] = g.nodes.map((n) => n.attr.value.value);
  assert.ok(big.case === "tensor" && small.case === "tensor" && filled.case === "tensor");
  assert.deepEqual(big.value.tensorContent, new Uint8Array([0x10, 3, 0, 0, 10, 0, 0, 0]));
  assert.deepEqual(small.value.intVal, [10]);
  assert.equal(small.value.tensorContent.length, 0);
  assert.deepEqual(filled.value.floatVal, [0]);
  assert.deepEqual(filled.value.tensorShape!.dim.map((d) => d.size), [10n]);
  assert.ok(
    equals(
      AttrValueSchema,
      g.nodes[0].attr._output_shapes,
      create(AttrValueSchema, {
        value: { case: "list", value: { shape: [{ dim: [{ size: 2n }] }] } },
      }),
    ),
  );
});

Deno.test("buildSavedModel() sorts control inputs and signature maps as TensorFlow serializes", () => {
  const g = new GraphBuilder();
  const variables: ExportVariable[] = [];
  for (let i = 0; i < 12; i++) {
    const name = `v${String(i).padStart(2, "0")}`;
    addConst(g, `${name}/initial_value`, Tensor.scalar(DataType.DT_FLOAT, i));
    addVariable(g, name, `${name}/initial_value`, DataType.DT_FLOAT, []);
    variables.push({ name, value: Tensor.scalar(DataType.DT_FLOAT, i) });
  }
  const f = DataType.DT_FLOAT;
  const mg = buildSavedModel({
    nodes: g.nodes,
    signatures: {
      s: signatureDef(
        { b: tensorInfo("v01/read:0", f), a: tensorInfo("v00/read:0", f) },
        { z: tensorInfo("v02/read:0", f), y: tensorInfo("v03/read:0", f) },
        "tensorflow/serving/predict",
      ),
    },
    variables,
  }).metaGraphs[0];
  const shard = mg.graphDef!.node.find((n) => n.name === "save/restore_shard")!;
  // Graph::ToGraphDef orders control inputs by name: Assign_10 before Assign_2.
  assert.deepEqual(shard.input.slice(0, 4), [
    "^save/Assign",
    "^save/Assign_1",
    "^save/Assign_10",
    "^save/Assign_11",
  ]);
  assert.deepEqual(Object.keys(mg.signatureDef.s.inputs), ["a", "b"]);
  assert.deepEqual(Object.keys(mg.signatureDef.s.outputs), ["y", "z"]);
});
