import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  type AttrValue,
  AttrValueSchema,
} from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import {
  type FunctionDef,
  FunctionDefLibrarySchema,
  FunctionDefSchema,
} from "../../src/proto/gen/tensorflow/core/framework/function_pb.ts";
import {
  type NodeDef,
  NodeDefSchema,
} from "../../src/proto/gen/tensorflow/core/framework/node_def_pb.ts";
import {
  type OpDef,
  OpDefSchema,
} from "../../src/proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { GraphBuilder } from "../../src/graph/builder.ts";
import {
  controlFlowKernels,
  setWhileIterationLimit,
  toBool,
} from "../../src/kernels/control_flow.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, compileOp } from "./harness.ts";

const F = DataType.DT_FLOAT;
const I = DataType.DT_INT32;
const B = DataType.DT_BOOL;

/** OpDefs for resolving `node:out:0` inside function bodies. */
const OP_DEFS: OpDef[] = [
  ...["Add", "AddV2", "Mul", "Sub", "Less", "LessEqual"].map((name) =>
    create(OpDefSchema, { name, outputArg: [{ name: "z", typeAttr: "T" }] })
  ),
  create(OpDefSchema, { name: "Const", outputArg: [{ name: "output", typeAttr: "dtype" }] }),
  create(OpDefSchema, { name: "Identity", outputArg: [{ name: "output", typeAttr: "T" }] }),
  create(OpDefSchema, {
    name: "If",
    outputArg: [{ name: "output", typeListAttr: "Tout" }],
    isStateful: true,
  }),
];

function node(name: string, op: string, input: string[], a: Record<string, AttrValue> = {}) {
  return create(NodeDefSchema, { name, op, input, attr: a });
}

function constant(name: string, t: Tensor): NodeDef {
  return node(name, "Const", [], { dtype: attr.type(t.dtype), value: attr.tensor(t) });
}

/** A FunctionDef: `args` and `outs` as [name, dtype]; `ret` maps output names to tensors. */
function fn(
  name: string,
  args: [string, DataType][],
  outs: [string, DataType][],
  nodes: NodeDef[],
  ret: Record<string, string>,
): FunctionDef {
  return create(FunctionDefSchema, {
    signature: {
      name,
      inputArg: args.map(([n, type]) => ({ name: n, type })),
      outputArg: outs.map(([n, type]) => ({ name: n, type })),
    },
    nodeDef: nodes,
    ret,
  });
}

const funcs = (names: string[]): AttrValue =>
  create(AttrValueSchema, {
    value: { case: "list", value: { func: names.map((n) => ({ name: n })) } },
  });

/** Binary float functions x ∘ y. */
const binary = (name: string, op: string) =>
  fn(name, [["x", F], ["y", F]], [["out", F]], [node("r", op, ["x", "y"], { T: attr.type(F) })], {
    out: "r:z:0",
  });

const LIBRARY: FunctionDef[] = [
  binary("add_fn", "AddV2"),
  binary("mul_fn", "Mul"),
  binary("sub_fn", "Sub"),
  // While cond: i <= 10.
  fn("cond_fn", [["i", I], ["s", I]], [["ok", B]], [
    constant("ten", Tensor.int32([10], [])),
    node("le", "LessEqual", ["i", "ten:output:0"], { T: attr.type(I) }),
  ], { ok: "le:z:0" }),
  // While body: (i + 1, s + i).
  fn("body_fn", [["i", I], ["s", I]], [["i2", I], ["s2", I]], [
    constant("one", Tensor.int32([1], [])),
    node("inc", "AddV2", ["i", "one:output:0"], { T: attr.type(I) }),
    node("acc", "AddV2", ["s", "i"], { T: attr.type(I) }),
  ], { i2: "inc:z:0", s2: "acc:z:0" }),
  // A cond that never turns false, and one returning two tensors.
  fn("forever_fn", [["i", I], ["s", I]], [["ok", B]], [constant("t", Tensor.scalar(B, true))], {
    ok: "t:output:0",
  }),
  fn("two_fn", [["i", I], ["s", I]], [["a", B], ["b", B]], [
    constant("t", Tensor.scalar(B, true)),
  ], { a: "t:output:0", b: "t:output:0" }),
  // A body dropping a loop variable.
  fn("short_body_fn", [["i", I], ["s", I]], [["i2", I]], [], { i2: "i" }),
  // A While body with a nested If: s += (i <= 5 ? i : 0).
  fn("int_add_fn", [["a", I], ["b", I]], [["out", I]], [
    node("r", "AddV2", ["a", "b"], { T: attr.type(I) }),
  ], { out: "r:z:0" }),
  fn("keep_fn", [["a", I], ["b", I]], [["out", I]], [], { out: "a" }),
  fn("nested_body_fn", [["i", I], ["s", I]], [["i2", I], ["s2", I]], [
    constant("one", Tensor.int32([1], [])),
    constant("five", Tensor.int32([5], [])),
    node("inc", "AddV2", ["i", "one:output:0"], { T: attr.type(I) }),
    node("small", "LessEqual", ["i", "five:output:0"], { T: attr.type(I) }),
    node("pick", "If", ["small:z:0", "s", "i"], {
      Tcond: attr.type(B),
      Tin: attr.types([I, I]),
      Tout: attr.types([I]),
      then_branch: attr.func("int_add_fn"),
      else_branch: attr.func("keep_fn"),
    }),
  ], { i2: "inc:z:0", s2: "pick:output:0" }),
];

/** A session over a main graph built by `build`, with the test library. */
function session(build: (g: GraphBuilder) => void): Session {
  const g = new GraphBuilder();
  build(g);
  const def = g.graph();
  def.library = create(FunctionDefLibrarySchema, { function: LIBRARY });
  return new Session(def, OP_DEFS, defaultRegistry());
}

const ref = (name: string, index = 0) => ({ node: name, index });

function rejects(fn: () => unknown, code: Code, message: string | RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, `not a ServingError: ${e}`);
    assert.equal(e.code, code, e.message);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------

Deno.test("toBool follows TensorFlow's ToBool", () => {
  assert.equal(toBool(Tensor.scalar(B, true)), true);
  assert.equal(toBool(Tensor.scalar(B, false)), false);
  assert.equal(toBool(Tensor.float32([0], [])), false);
  assert.equal(toBool(Tensor.float32([-0.5], [])), true);
  assert.equal(toBool(Tensor.float32([NaN], [])), true);
  assert.equal(toBool(Tensor.int32([0], [])), false);
  assert.equal(toBool(Tensor.int32([3], [])), true);
  assert.equal(toBool(Tensor.int64([0], [])), false);
  assert.equal(toBool(Tensor.int64([-1], [])), true);
  assert.equal(toBool(Tensor.scalar(DataType.DT_DOUBLE, 2)), true);
  assert.equal(toBool(Tensor.scalar(DataType.DT_UINT8, 0)), false);
  assert.equal(toBool(Tensor.strings([""], [])), false);
  assert.equal(toBool(Tensor.strings(["x"], [])), true);
  // Non-scalars: true when non-empty, whatever the values.
  assert.equal(toBool(Tensor.float32([0, 0], [2])), true);
  assert.equal(toBool(Tensor.scalar(B, false).reshape([1])), true);
  assert.equal(toBool(Tensor.float32([], [0])), false);
  assert.equal(toBool(Tensor.float32([], [2, 0])), false);
  rejects(
    () => toBool(Tensor.scalar(DataType.DT_HALF, 0)),
    Code.INVALID_ARGUMENT,
    "half cannot be converted to a boolean",
  );
  rejects(
    () => toBool(Tensor.scalar(DataType.DT_UINT16, 1)),
    Code.INVALID_ARGUMENT,
    "uint16 cannot be converted to a boolean",
  );
});

Deno.test("While sums 1..10 through the function library", () => {
  const s = session((g) => {
    g.placeholder("i0", I, []);
    g.placeholder("s0", I, []);
    g.op("loop", "While", ["i0", "s0"], {
      T: attr.types([I, I]),
      cond: attr.func("cond_fn"),
      body: attr.func("body_fn"),
      parallel_iterations: attr.int(10),
    });
  });
  const plan = s.compile(
    { feeds: [ref("i0"), ref("s0")], fetches: [ref("loop"), ref("loop", 1)] },
    "t",
  );
  const [i, sum] = plan.run([Tensor.int32([1], []), Tensor.int32([0], [])]);
  assert.deepEqual(Array.from(i.data as Int32Array), [11]);
  assert.deepEqual(Array.from(sum.data as Int32Array), [55]);
  assert.deepEqual([...sum.shape], []);
  // A cond false at once returns the inputs.
  const [i2, s2] = plan.run([Tensor.int32([20], []), Tensor.int32([7], [])]);
  assert.deepEqual([Array.from(i2.data as Int32Array), Array.from(s2.data as Int32Array)], [
    [20],
    [7],
  ]);
});

Deno.test("StatelessWhile with an If nested in its body", () => {
  const s = session((g) => {
    g.constant("i0", Tensor.int32([1], []));
    g.constant("s0", Tensor.int32([0], []));
    g.op("loop", "StatelessWhile", ["i0", "s0"], {
      T: attr.types([I, I]),
      cond: attr.func("cond_fn"),
      body: attr.func("nested_body_fn"),
    });
  });
  const plan = s.compile({ feeds: [], fetches: [ref("loop", 1)] }, "t");
  // 1 + 2 + 3 + 4 + 5; iterations 6..10 keep s.
  assert.deepEqual(Array.from(plan.run([])[0].data as Int32Array), [15]);
});

Deno.test("While: errors from the loop functions, and the iteration limit", () => {
  const build = (cond: string, body: string) =>
    session((g) => {
      g.placeholder("i0", I, []);
      g.placeholder("s0", I, []);
      g.op("loop", "While", ["i0", "s0"], {
        T: attr.types([I, I]),
        cond: attr.func(cond),
        body: attr.func(body),
      });
    }).compile({ feeds: [ref("i0"), ref("s0")], fetches: [ref("loop")] }, "t");
  const args = [Tensor.int32([1], []), Tensor.int32([0], [])];
  rejects(
    () => build("two_fn", "body_fn").run(args),
    Code.INVALID_ARGUMENT,
    /^Expected a single scalar return value from WhileOp cond, got 2 tensors\./,
  );
  rejects(
    () => build("cond_fn", "short_body_fn").run(args),
    Code.INVALID_ARGUMENT,
    /^While loop body returned 1 arguments\. Expected: 2/,
  );
  const was = setWhileIterationLimit(1000);
  try {
    rejects(
      () => build("forever_fn", "body_fn").run(args),
      Code.RESOURCE_EXHAUSTED,
      /^While loop "loop" did not finish within 1000 iterations/,
    );
    // Within the limit a loop still finishes (10 iterations).
    setWhileIterationLimit(10);
    assert.deepEqual(Array.from(build("cond_fn", "body_fn").run(args)[0].data as Int32Array), [
      11,
    ]);
    setWhileIterationLimit(9);
    rejects(() => build("cond_fn", "body_fn").run(args), Code.RESOURCE_EXHAUSTED, /within 9 /);
  } finally {
    setWhileIterationLimit(was);
  }
  assert.throws(() => setWhileIterationLimit(-1), RangeError);
});

Deno.test("If chooses Add or Mul by its condition", () => {
  const s = session((g) => {
    g.placeholder("p", B, []);
    g.placeholder("x", F, [2]);
    g.placeholder("y", F, [2]);
    g.op("branch", "If", ["p", "x", "y"], {
      Tcond: attr.type(B),
      Tin: attr.types([F, F]),
      Tout: attr.types([F]),
      then_branch: attr.func("add_fn"),
      else_branch: attr.func("mul_fn"),
    });
  });
  const plan = s.compile({ feeds: [ref("p"), ref("x"), ref("y")], fetches: [ref("branch")] }, "t");
  const x = Tensor.float32([2, 3]);
  const y = Tensor.float32([4, 5]);
  assert.deepEqual(Array.from(plan.run([Tensor.scalar(B, true), x, y])[0].data as Float32Array), [
    6,
    8,
  ]);
  assert.deepEqual(
    Array.from(plan.run([Tensor.scalar(B, false), x, y])[0].data as Float32Array),
    [8, 15],
  );
});

Deno.test("StatelessIf converts a numeric or non-scalar condition as ToBool", () => {
  const s = session((g) => {
    g.placeholder("p", F);
    g.placeholder("x", F, [1]);
    g.placeholder("y", F, [1]);
    g.op("branch", "StatelessIf", ["p", "x", "y"], {
      Tcond: attr.type(F),
      Tin: attr.types([F, F]),
      Tout: attr.types([F]),
      then_branch: attr.func("add_fn"),
      else_branch: attr.func("mul_fn"),
    });
  });
  const plan = s.compile({ feeds: [ref("p"), ref("x"), ref("y")], fetches: [ref("branch")] }, "t");
  const x = Tensor.float32([2]);
  const y = Tensor.float32([5]);
  const run = (p: Tensor) => (plan.run([p, x, y])[0].data as Float32Array)[0];
  assert.equal(run(Tensor.float32([0], [])), 10);
  assert.equal(run(Tensor.float32([0.25], [])), 7);
  assert.equal(run(Tensor.float32([0, 0, 0], [3])), 7); // non-empty: true
  assert.equal(run(Tensor.float32([], [0])), 10); // empty: false
  rejects(
    () => run(Tensor.scalar(DataType.DT_HALF, 1)),
    Code.INVALID_ARGUMENT,
    /^half cannot be converted to a boolean/,
  );
});

Deno.test("If checks the branch results against Tout", () => {
  const s = session((g) => {
    g.placeholder("p", B, []);
    g.placeholder("x", F, [1]);
    g.op("bad", "If", ["p", "x", "x"], {
      Tcond: attr.type(B),
      Tin: attr.types([F, F]),
      Tout: attr.types([I]),
      then_branch: attr.func("add_fn"),
      else_branch: attr.func("mul_fn"),
    });
  });
  const plan = s.compile({ feeds: [ref("p"), ref("x")], fetches: [ref("bad")] }, "t");
  rejects(
    () => plan.run([Tensor.scalar(B, true), Tensor.float32([1])]),
    Code.INTERNAL,
    /^Expect 0-th output is of type int32 but get float/,
  );
});

Deno.test("Case runs the indexed branch, the last one when out of range", () => {
  for (const op of ["Case", "StatelessCase"]) {
    const s = session((g) => {
      g.placeholder("k", I, []);
      g.placeholder("x", F, [1]);
      g.placeholder("y", F, [1]);
      g.op("sw", op, ["k", "x", "y"], {
        Tin: attr.types([F, F]),
        Tout: attr.types([F]),
        branches: funcs(["add_fn", "mul_fn", "sub_fn"]),
      });
    });
    const plan = s.compile({ feeds: [ref("k"), ref("x"), ref("y")], fetches: [ref("sw")] }, "t");
    const run = (k: number) =>
      (plan.run([Tensor.int32([k], []), Tensor.float32([7]), Tensor.float32([2])])[0]
        .data as Float32Array)[0];
    assert.deepEqual([0, 1, 2, 3, -1, 100].map(run), [9, 14, 5, 5, 5, 5]);
    rejects(
      () => plan.run([Tensor.int32([0]), Tensor.float32([7]), Tensor.float32([2])]),
      Code.INVALID_ARGUMENT,
      /^branch_index must be scalar/,
    );
  }
});

Deno.test("a missing branch function fails at compile time", () => {
  const s = session((g) => {
    g.placeholder("p", B, []);
    g.op("branch", "If", ["p"], {
      Tout: attr.types([]),
      then_branch: attr.func("add_fn"),
      else_branch: attr.func("no_such_fn"),
    });
  });
  rejects(
    () => s.compile({ feeds: [ref("p")], fetches: [ref("branch")] }, "t"),
    Code.NOT_FOUND,
    /function "no_such_fn" is not in the graph's library/,
  );
  // Case with no branches at all.
  assert.throws(
    () => compileOp(controlFlowKernels, "Case", { branches: funcs([]) }),
    /has no branches/,
  );
});

Deno.test("TF1 Switch/Merge compile into the control-flow executor and run", () => {
  const s = session((g) => {
    g.placeholder("p", B, []);
    g.placeholder("x", F, [1]);
    g.op("sw", "Switch", ["x", "p"], { T: attr.type(F) });
    g.op("m", "Merge", ["sw:0", "sw:1"], { T: attr.type(F), N: attr.int(2) });
  });
  const plan = s.compile({ feeds: [ref("p"), ref("x")], fetches: [ref("m", 1)] }, "signature");
  const index = (p: boolean) =>
    (plan.run([Tensor.scalar(B, p), Tensor.float32([3])])[0].data as Int32Array)[0];
  assert.equal(index(true), 1);
  assert.equal(index(false), 0);
});

Deno.test("Switch wants a scalar bool predicate; Merge takes exactly one live input", () => {
  const sw = compileOp(controlFlowKernels, "Switch", {}, 2);
  const x = Tensor.float32([1, 2]);
  const outs = sw([x, Tensor.scalar(B, false)]);
  assert.equal(outs[0], x);
  assert.equal(outs[1], undefined);
  assert.throws(
    () => sw([x, new Tensor(B, [2], new Uint8Array([1, 0]))]),
    /The second input must be a scalar, but it has shape \[2\]/,
  );
  const merge = compileOp(controlFlowKernels, "Merge", {}, 3);
  const [v, i] = merge([undefined, x, undefined] as unknown as Tensor[]);
  assert.equal(v, x);
  assert.equal((i.data as Int32Array)[0], 1);
  assert.throws(
    () => merge([x, x] as Tensor[]),
    (e: unknown) =>
      e instanceof ServingError && e.code === Code.INTERNAL &&
      e.message === "Merge can not have more than one valid input.",
  );
});
