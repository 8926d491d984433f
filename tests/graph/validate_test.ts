import assert from "node:assert/strict";
import { create, equals, toBinary } from "@bufbuild/protobuf";
import { fromText } from "@bufbuild/protobuf/txtpb";
import { AttrValueSchema } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import type { NodeDef } from "../../src/proto/gen/tensorflow/core/framework/node_def_pb.ts";
import {
  type OpDef,
  OpDefSchema,
  OpListSchema,
} from "../../src/proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { FunctionDefSchema } from "../../src/proto/gen/tensorflow/core/framework/function_pb.ts";
import { GraphDefSchema } from "../../src/proto/gen/tensorflow/core/framework/graph_pb.ts";
import { SavedModelSchema } from "../../src/proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import { Code } from "../../src/errors.ts";
import { attrValue, GraphBuilder, signatureDef, tensorInfo } from "../../src/graph/builder.ts";
import { MissingOpsError } from "../../src/graph/plan.ts";
import {
  summarizeOpDef,
  tfTypeName,
  validateGraph,
  validateSavedModel,
} from "../../src/graph/validate.ts";
import type { Kernel } from "../../src/kernels/kernel.ts";
import { defaultRegistry, KernelRegistry } from "../../src/kernels/mod.ts";
import { KERNEL_HONOURS } from "../../src/kernels/honours.ts";
import { registeredOpDef, registeredOpDefs, registeredOps } from "../../src/kernels/op_defs.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { readSavedModel, readSavedModelProto } from "../../src/saved_model/reader.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertServingError } from "../assert.ts";
import { testdata } from "../testdata.ts";

const F = DataType.DT_FLOAT;
const I = DataType.DT_INT32;
const PREDICT = "tensorflow/serving/predict";
const REAL_MODELS = new URL("../../../shared/testdata/real-models/", import.meta.url);

/** Writes a SavedModel with one predict signature (`x` → `y`) into a fresh temp dir. */
async function saveModel(
  nodes: readonly NodeDef[],
  inputs: Record<string, [string, DataType]>,
  output: [string, DataType],
  strippedOps?: readonly OpDef[],
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "validate_test_" });
  const sm = create(SavedModelSchema, {
    savedModelSchemaVersion: 1n,
    metaGraphs: [{
      metaInfoDef: {
        tags: ["serve"],
        ...(strippedOps ? { strippedOpList: { op: [...strippedOps] } } : {}),
      },
      graphDef: { node: [...nodes] },
      signatureDef: {
        serving_default: signatureDef(
          Object.fromEntries(
            Object.entries(inputs).map(([alias, [name, dt]]) => [alias, tensorInfo(name, dt)]),
          ),
          { y: tensorInfo(output[0], output[1]) },
          PREDICT,
        ),
      },
    }],
  });
  await Deno.writeFile(`${dir}/saved_model.pb`, toBinary(SavedModelSchema, sm));
  return dir;
}

async function withModel(dir: string, fn: (dir: string) => Promise<void>): Promise<void> {
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `concat` = ConcatV2 of a (dtype a) and b (dtype b) along axis 0, with T = `t`. */
function concatGraph(a: DataType, b: DataType, t: DataType): GraphBuilder {
  const g = new GraphBuilder();
  g.placeholder("a", a);
  g.placeholder("b", b);
  g.constant("axis", Tensor.scalar(I, 0));
  g.op("concat", "ConcatV2", ["a", "b", "axis"], {
    N: attrValue.int(2),
    T: attrValue.type(t),
    Tidx: attrValue.type(I),
  });
  return g;
}

Deno.test("loadModel() refuses ConcatV2 of an int32 and a float tensor, as TensorFlow words it", async () => {
  const g = concatGraph(I, F, I);
  await withModel(
    await saveModel(g.nodes, { a: ["a:0", I], b: ["b:0", F] }, ["concat:0", I]),
    async (dir) => {
      await assertServingError(
        () => loadModel(dir),
        Code.INVALID_ARGUMENT,
        "Input 1 of node concat was passed float from b:0 incompatible with expected int32.",
      );
    },
  );
  // The same graph with matching dtypes loads and runs.
  const ok = concatGraph(I, I, I);
  await withModel(
    await saveModel(ok.nodes, { a: ["a:0", I], b: ["b:0", I] }, ["concat:0", I]),
    async (dir) => {
      const m = await loadModel(dir);
      const y = m.signature("").run({
        a: new Tensor(I, [1], new Int32Array([1])),
        b: new Tensor(I, [2], new Int32Array([2, 3])),
      }).y;
      assert.deepEqual([...y.data as Int32Array], [1, 2, 3]);
    },
  );
});

Deno.test("loadModel() refuses Mul with T=float on int32 inputs", async () => {
  const g = new GraphBuilder();
  g.placeholder("x", I);
  g.constant("two", Tensor.scalar(I, 2));
  g.op("mul", "Mul", ["x", "two"], { T: attrValue.type(F) });
  await withModel(await saveModel(g.nodes, { x: ["x:0", I] }, ["mul:0", F]), async (dir) => {
    await assertServingError(
      () => loadModel(dir),
      Code.INVALID_ARGUMENT,
      "Input 0 of node mul was passed int32 from x:0 incompatible with expected float.",
    );
  });
});

Deno.test("loadModel() holds attrs to the OpDef: presence, kind, minimum, allowed values", async (t) => {
  const refused = async (nodes: NodeDef[], ...patterns: string[]) => {
    await withModel(
      await saveModel(nodes, { a: ["a:0", I], b: ["b:0", I] }, ["concat:0", I]),
      async (dir) => {
        await assertServingError(() => loadModel(dir), Code.INVALID_ARGUMENT, ...patterns);
      },
    );
  };
  const concat = registeredOpDef("ConcatV2")!;
  await t.step("a missing attr without a default", async () => {
    const g = concatGraph(I, I, I);
    delete (g.nodes[3].attr as Record<string, unknown>).N;
    await refused(
      g.nodes,
      `NodeDef missing attr 'N' from ${summarizeOpDef(concat)}; NodeDef: {{node concat}}`,
    );
  });
  await t.step("an attr of the wrong kind", async () => {
    const g = concatGraph(I, I, I);
    g.nodes[3].attr.N = attrValue.string("2");
    await refused(
      g.nodes,
      "AttrValue had value with type 'string' when 'int' expected for attr 'N'",
    );
  });
  await t.step("a value below the minimum", async () => {
    const g = concatGraph(I, I, I);
    g.nodes[3].attr.N = attrValue.int(1);
    await refused(
      g.nodes,
      "Value for attr 'N' of 1 must be at least minimum 2",
      "; NodeDef: {{node concat}}; Op<name=ConcatV2;",
    );
  });
  await t.step("a type outside the allowed values", async () => {
    const g = concatGraph(I, I, I);
    g.nodes[3].attr.Tidx = attrValue.type(F);
    await refused(
      g.nodes,
      "Value for attr 'Tidx' of float is not in the list of allowed values: int32, int64",
    );
  });
  await t.step("a string outside the allowed values", async () => {
    const g = new GraphBuilder();
    g.placeholder("a", I);
    g.placeholder("b", I);
    g.constant("pad", new Tensor(I, [1, 2], new Int32Array([1, 1])));
    g.op("concat", "MirrorPad", ["a", "pad"], {
      T: attrValue.type(I),
      mode: attrValue.string("WRAP"),
    });
    await refused(
      g.nodes,
      `Value for attr 'mode' of "WRAP" is not in the list of allowed values: "REFLECT", "SYMMETRIC"`,
    );
  });
  await t.step("a count of inputs the OpDef does not expect", async () => {
    const g = concatGraph(I, I, I);
    g.nodes[3].attr.N = attrValue.int(3);
    await refused(
      g.nodes,
      "NodeDef expected inputs 'int32, int32, int32, int32' do not match 3 inputs specified",
    );
  });
});

Deno.test("loadModel() fills in default attrs for the kernels", async () => {
  const g = new GraphBuilder();
  g.placeholder("x", F);
  g.op("y", "Cast", ["x"], { SrcT: attrValue.type(F), DstT: attrValue.type(I) });
  await withModel(await saveModel(g.nodes, { x: ["x:0", F] }, ["y:0", I]), async (dir) => {
    const m = await loadModel(dir);
    const cast = m.bundle.metaGraph.graphDef!.node.find((n) => n.name === "y")!;
    assert.ok(equals(AttrValueSchema, cast.attr.Truncate, attrValue.bool(false)));
    const placeholder = m.bundle.metaGraph.graphDef!.node.find((n) => n.name === "x")!;
    assert.equal(placeholder.attr.shape.value.case, "shape");
  });
});

Deno.test("the model's stripped_op_list wins over the registry", async () => {
  // An OpDef (as an old or custom build might register it) allowing Mul on doubles only.
  const [mul] = fromText(
    OpListSchema,
    `op { name: "Mul" input_arg { name: "x" type_attr: "T" } input_arg { name: "y" type_attr: "T" }
      output_arg { name: "z" type_attr: "T" }
      attr { name: "T" type: "type" allowed_values { list { type: DT_DOUBLE } } } }`,
  ).op;
  const g = new GraphBuilder();
  g.placeholder("x", F);
  g.op("mul", "Mul", ["x", "x"], { T: attrValue.type(F) });
  await withModel(await saveModel(g.nodes, { x: ["x:0", F] }, ["mul:0", F], [mul]), async (dir) => {
    await assertServingError(
      () => loadModel(dir),
      Code.INVALID_ARGUMENT,
      "Value for attr 'T' of float is not in the list of allowed values: double",
    );
  });
  // Without it, the registry's Mul allows float.
  await withModel(await saveModel(g.nodes, { x: ["x:0", F] }, ["mul:0", F]), async (dir) => {
    await loadModel(dir);
  });
});

Deno.test("an op with an OpDef but no kernel fails as a missing kernel, not in validation", async () => {
  assert.ok(registeredOpDef("SaveSlices"));
  assert.equal(defaultRegistry().get("SaveSlices"), undefined);
  const g = new GraphBuilder();
  g.placeholder("x", F);
  // Inputs of the wrong dtypes and a missing attr: still reported as a missing kernel.
  g.op("save", "SaveSlices", ["x", "x", "x", "x"], {});
  g.op("y", "Identity", ["x", "^save"], { T: attrValue.type(F) });
  await withModel(await saveModel(g.nodes, { x: ["x:0", F] }, ["y:0", F]), async (dir) => {
    const err = await assertServingError(
      () => loadModel(dir),
      Code.UNIMPLEMENTED,
      "no kernel for op(s) SaveSlices",
    );
    assert.ok(err instanceof MissingOpsError);
  });
});

/**
 * A registry whose Conv2D kernel declares it honours NHWC only, and with a stand-in RandomShuffle
 * kernel that declares none of its attrs.
 */
function declaringRegistry(): KernelRegistry {
  const real = defaultRegistry();
  const conv: Kernel = {
    op: "Conv2D",
    compile: (ctx) => real.get("Conv2D")!.compile(ctx),
    honours: { data_format: ["NHWC"] },
  };
  const shuffle: Kernel = { op: "RandomShuffle", compile: () => () => [], honours: {} };
  return new KernelRegistry(
    real.ops().filter((op) => op !== "Conv2D" && op !== "RandomShuffle").map((op) => real.get(op)!),
    [conv, shuffle],
  );
}

Deno.test("loadModel() refuses an attr value the kernel does not honour, naming node, attr and value", async (t) => {
  const registry = declaringRegistry();
  const convGraph = (format: string, used: boolean) => {
    const g = new GraphBuilder();
    g.placeholder("x", F);
    g.constant("w", new Tensor(F, [1, 1, 1, 1], new Float32Array([2])));
    g.op("conv", "Conv2D", ["x", "w"], {
      T: attrValue.type(F),
      strides: attrValue.ints([1, 1, 1, 1]),
      padding: attrValue.string("VALID"),
      data_format: attrValue.string(format),
    });
    g.op("y", "Identity", [used ? "conv" : "x"], { T: attrValue.type(F) });
    return g.nodes;
  };
  await t.step("a listed value is refused outside the list", async () => {
    await withModel(
      await saveModel(convGraph("NCHW", true), { x: ["x:0", F] }, ["y:0", F]),
      async (dir) => {
        await assertServingError(
          () => loadModel(dir, { registry }),
          Code.UNIMPLEMENTED,
          `Cannot load node "conv" (Conv2D): attr data_format="NCHW" is not supported`,
          `(supported: "NHWC")`,
        );
      },
    );
    await withModel(
      await saveModel(convGraph("NHWC", true), { x: ["x:0", F] }, ["y:0", F]),
      async (dir) => {
        await loadModel(dir, { registry });
      },
    );
  });
  await t.step("a node no plan runs is not held to its kernel", async () => {
    await withModel(
      await saveModel(convGraph("NCHW", false), { x: ["x:0", F] }, ["y:0", F]),
      async (dir) => {
        await loadModel(dir, { registry });
      },
    );
  });
  await t.step("an undeclared attr must keep its default", async () => {
    const g = new GraphBuilder();
    g.placeholder("x", F);
    g.op("y", "RandomShuffle", ["x"], { T: attrValue.type(F), seed: attrValue.int(7) });
    await withModel(await saveModel(g.nodes, { x: ["x:0", F] }, ["y:0", F]), async (dir) => {
      await assertServingError(
        () => loadModel(dir, { registry }),
        Code.UNIMPLEMENTED,
        `Cannot load node "y" (RandomShuffle): attr seed=7 is not supported`,
        "(supported: only the default, 0)",
      );
    });
    g.nodes[1].attr.seed = attrValue.int(0);
    await withModel(await saveModel(g.nodes, { x: ["x:0", F] }, ["y:0", F]), async (dir) => {
      await loadModel(dir, { registry });
    });
  });
  await t.step("a dtype the kernel lacks, though the OpDef allows it", async () => {
    const C = DataType.DT_COMPLEX64;
    const g = new GraphBuilder();
    g.placeholder("x", C);
    g.op("y", "Mul", ["x", "x"], { T: attrValue.type(C) });
    await withModel(await saveModel(g.nodes, { x: ["x:0", C] }, ["y:0", C]), async (dir) => {
      await assertServingError(
        () => loadModel(dir),
        Code.UNIMPLEMENTED,
        `Cannot load node "y" (Mul): attr T=complex64 is not supported by this server's Mul kernel`,
        "(supported: ",
      );
    });
  });
});

Deno.test("validateGraph() checks the bodies of the functions a run calls", () => {
  const g = new GraphBuilder();
  g.placeholder("x", I);
  g.op("call", "PartitionedCall", ["x"], {
    Tin: attrValue.types([I]),
    Tout: attrValue.types([F]),
    f: attrValue.func("f"),
  });
  const f = create(FunctionDefSchema, {
    signature: {
      name: "f",
      inputArg: [{ name: "a", type: I }],
      outputArg: [{ name: "z", type: F }],
    },
    nodeDef: [{ name: "m", op: "Mul", input: ["a", "a"], attr: { T: attrValue.type(F) } }],
    ret: { z: "m:z:0" },
  });
  const graph = create(GraphDefSchema, { node: g.nodes, library: { function: [f] } });
  const run = { feeds: ["x:0"], fetches: ["call:0"], targets: [] };
  assert.throws(
    () => validateGraph(graph, registeredOpDef, defaultRegistry(), [run]),
    (e: Error) =>
      e.message ===
        `Input 0 of node m was passed int32 from a:0 incompatible with expected float. (in function "f")`,
  );
});

Deno.test("tfTypeName() spells dtypes as TensorFlow's DataTypeString", () => {
  assert.equal(tfTypeName(DataType.DT_FLOAT), "float");
  assert.equal(tfTypeName(DataType.DT_INT64), "int64");
  assert.equal(tfTypeName(DataType.DT_FLOAT_REF), "float_ref");
  assert.equal(tfTypeName(DataType.DT_BFLOAT16), "bfloat16");
});

Deno.test("the registry's OpDefs are TensorFlow 2.14's, as in the testdata's stripped_op_list", async () => {
  const sm = await readSavedModelProto(testdata("saved_model_half_plus_two_tf2_cpu/00000123"));
  const mi = sm.metaGraphs[0].metaInfoDef!;
  assert.equal(mi.tensorflowVersion, "2.14.0");
  const ops = mi.strippedOpList!.op;
  assert.ok(ops.length >= 20);
  for (const theirs of ops) {
    const ours = registeredOpDef(theirs.name);
    assert.ok(ours, `no OpDef for ${theirs.name}`);
    assert.ok(equals(OpDefSchema, ours, theirs), `OpDef ${theirs.name} differs`);
  }
  // Every line of the registry parses, under its own name.
  const all = registeredOpDefs();
  assert.ok(all.size >= 400, `${all.size} OpDefs`);
  for (const [name, def] of all) assert.equal(def.name, name);
  // Every shipped kernel has an OpDef (the project's own fused op excepted), and every
  // declaration names attrs of its op.
  const registry = defaultRegistry();
  const noDef = registry.ops().filter((op) => !registeredOpDef(op));
  assert.deepEqual(noDef, ["_FusedDenseSoftmax"]);
  for (const [op, decl] of Object.entries(KERNEL_HONOURS)) {
    const def = registeredOpDef(op);
    assert.ok(def, op);
    for (const attr of Object.keys(decl)) {
      assert.ok(def.attr.some((a) => a.name === attr), `${op} has no attr ${attr}`);
    }
    for (const a of def.attr) {
      if (a.defaultValue || a.type === "type" || a.type === "list(type)") continue;
      if ([...def.inputArg, ...def.outputArg].some((x) => x.numberAttr === a.name)) continue;
      assert.ok(a.name in decl, `${op}: required attr ${a.name} is not declared`);
    }
  }
});

/** Every op with an OpDef runs somewhere: real kernels where they exist, stand-ins elsewhere. */
function everyOpRegistry(): KernelRegistry {
  const real = defaultRegistry();
  return new KernelRegistry(
    [...new Set([...registeredOps(), ...real.ops()])].map((op) =>
      real.get(op) ?? { op, compile: () => () => [] }
    ),
  );
}

Deno.test("every node of every corpus and testdata model passes validation", async () => {
  const dirs: string[] = [];
  for await (const e of Deno.readDir(REAL_MODELS)) {
    if (e.isDirectory) dirs.push(new URL(`${e.name}/model/1`, REAL_MODELS).pathname);
  }
  dirs.push(
    ...[
      "saved_model_half_plus_two_cpu/00000123",
      "saved_model_half_plus_two_tf2_cpu/00000123",
      "saved_model_half_plus_two_2_versions/00000123",
      "saved_model_half_plus_two_2_versions/00000124",
      "matrix_half_plus_two/1",
    ].map(testdata),
  );
  assert.ok(dirs.length >= 13);
  const registry = everyOpRegistry();
  let nodes = 0;
  for (const dir of dirs.sort()) {
    const bundle = await readSavedModel(dir, ["serve"]);
    const own = new Set(
      (bundle.metaGraph.metaInfoDef?.strippedOpList?.op ?? []).map((o) => o.name),
    );
    for (const n of bundle.metaGraph.graphDef!.node) {
      assert.ok(own.has(n.op) || registeredOpDef(n.op), `${dir}: no OpDef for ${n.op}`);
      nodes++;
    }
    validateSavedModel(bundle, registry);
  }
  assert.ok(nodes > 5000, `${nodes} nodes`);

  // And the sweep is not vacuous: one node of a corpus graph switched to int32 is refused.
  const bundle = await readSavedModel(new URL("selfie/model/1", REAL_MODELS).pathname, ["serve"]);
  const mul = bundle.metaGraph.graphDef!.node.find((n) => n.op === "Mul")!;
  mul.attr.T = attrValue.type(I);
  await assertServingError(
    () => validateSavedModel(bundle, registry),
    Code.INVALID_ARGUMENT,
    `of node ${mul.name} was passed float from`,
    "incompatible with expected int32.",
  );
});

Deno.test("validateGraph() reads a reference as its value, but never a value as a reference", () => {
  const check = (source: "var" | "c") => {
    const g = new GraphBuilder();
    g.op("var", "VariableV2", [], { dtype: attrValue.type(F), shape: attrValue.shape([]) });
    g.constant("c", Tensor.scalar(F, 1));
    g.op("read", "Identity", ["var"], { T: attrValue.type(F) });
    g.op("assign", "Assign", [source, "c"], { T: attrValue.type(F) });
    const run = { feeds: [], fetches: ["read:0"], targets: ["assign"] };
    validateGraph(create(GraphDefSchema, { node: g.nodes }), registeredOpDef, defaultRegistry(), [
      run,
    ]);
  };
  check("var");
  assert.throws(
    () => check("c"),
    /^ServingError: Input 0 of node assign was passed float from c:0 incompatible with expected float_ref\.$/,
  );
});

Deno.test("validateGraph() refuses an invalid or reference dtype in a type attr", () => {
  const check = (t: DataType) => {
    const g = new GraphBuilder();
    g.op("x", "Placeholder", [], { dtype: attrValue.type(t) });
    validateGraph(
      create(GraphDefSchema, { node: g.nodes }),
      registeredOpDef,
      defaultRegistry(),
      [],
    );
  };
  assert.throws(
    () => check(DataType.DT_INVALID),
    /AttrValue has invalid DataType for attr 'dtype'/,
  );
  assert.throws(
    () => check(DataType.DT_FLOAT_REF),
    /AttrValue must not have reference type value of float_ref for attr 'dtype'/,
  );
  check(F);
});
