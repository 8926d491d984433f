import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { SequentialPlan } from "../../src/graph/plan.ts";
import { ExecutorPlan } from "../../src/graph/executor.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { setWhileIterationLimit } from "../../src/kernels/control_flow.ts";
import { Session } from "../../src/runtime/session.ts";
import { Code } from "../../src/errors.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertServingError } from "../assert.ts";

const I = DataType.DT_INT32;
const F = DataType.DT_FLOAT;
const B = DataType.DT_BOOL;
const T = (t: DataType) => ({ T: attrValue.type(t) });
const ref = parseTensorName;
const int = (v: number) => Tensor.scalar(I, v);
const num = (t: Tensor) => Number((t.data as ArrayLike<number>)[0]);

/** A Const with control inputs (as TF puts a pivot on constants inside a cond or loop body). */
function constant(g: GraphBuilder, name: string, value: Tensor, controls: string[] = []): string {
  return g.op(name, "Const", controls.map((c) => `^${c.split(":")[0]}`), {
    dtype: attrValue.type(value.dtype),
    value: attrValue.tensor(value),
  });
}

/**
 * A TF1 `tf.cond` as TensorFlow builds it: every input goes through a Switch on `pred`, each
 * branch starts from an Identity pivot of the Switch's port, and a Merge joins the results.
 * `branch` builds a branch from its pivot and the switched inputs; returns the merge output.
 */
function cond(
  g: GraphBuilder,
  p: string,
  pred: string,
  inputs: { name: string; dtype: DataType }[],
  thenBranch: (pivot: string, xs: string[]) => string,
  elseBranch: (pivot: string, xs: string[]) => string,
  dtype: DataType,
): string {
  const sw = g.op(`${p}/switch_pred`, "Switch", [pred, pred], T(B));
  const tPivot = g.op(`${p}/pivot_t`, "Identity", [`${p}/switch_pred:1`], T(B));
  const fPivot = g.op(`${p}/pivot_f`, "Identity", [sw], T(B));
  const xs = inputs.map((x, i) => {
    g.op(`${p}/Switch_${i}`, "Switch", [x.name, pred], T(x.dtype));
    return i;
  });
  const t = thenBranch(tPivot, xs.map((i) => `${p}/Switch_${i}:1`));
  const f = elseBranch(fPivot, xs.map((i) => `${p}/Switch_${i}:0`));
  return g.op(`${p}/Merge`, "Merge", [f, t], { ...T(dtype), N: attrValue.int(2) });
}

/**
 * A TF1 `tf.while_loop` as TensorFlow builds it: Enter → Merge ← NextIteration, the condition
 * into LoopCond, a Switch per loop variable whose false port exits and whose true port (through an
 * Identity, the body's pivot) feeds the body. `invariants` enter with `is_constant`.
 */
function whileLoop(
  g: GraphBuilder,
  p: string,
  vars: { init: string; dtype: DataType }[],
  cond: (pivot: string, vs: string[], inv: string[]) => string,
  body: (pivot: string, vs: string[], inv: string[]) => string[],
  invariants: { value: string; dtype: DataType }[] = [],
): string[] {
  const enterAttrs = (dtype: DataType, constant: boolean) => ({
    ...T(dtype),
    frame_name: attrValue.string(p),
    is_constant: attrValue.bool(constant),
    parallel_iterations: attrValue.int(10),
  });
  const merges = vars.map((v, i) => {
    g.op(`${p}/Enter_${i}`, "Enter", [v.init], enterAttrs(v.dtype, false));
    return g.op(`${p}/Merge_${i}`, "Merge", [`${p}/Enter_${i}:0`, `${p}/NextIteration_${i}:0`], {
      ...T(v.dtype),
      N: attrValue.int(2),
    });
  });
  const inv = invariants.map((v, i) =>
    g.op(`${p}/EnterInv_${i}`, "Enter", [v.value], enterAttrs(v.dtype, true))
  );
  const c = cond(merges[0], merges, inv);
  const lc = g.op(`${p}/LoopCond`, "LoopCond", [c]);
  const ids = vars.map((v, i) => {
    g.op(`${p}/Switch_${i}`, "Switch", [merges[i], lc], T(v.dtype));
    return g.op(`${p}/Identity_${i}`, "Identity", [`${p}/Switch_${i}:1`], T(v.dtype));
  });
  const next = body(ids[0], ids, inv);
  next.forEach((n, i) => g.op(`${p}/NextIteration_${i}`, "NextIteration", [n], T(vars[i].dtype)));
  return vars.map((v, i) => g.op(`${p}/Exit_${i}`, "Exit", [`${p}/Switch_${i}:0`], T(v.dtype)));
}

/** A counting loop: `for (i = start; i < limit; i++) acc += step`, returning [i, acc]. */
function countingLoop(
  g: GraphBuilder,
  p: string,
  start: string,
  limit: string,
  acc: string,
  step: string,
): string[] {
  return whileLoop(
    g,
    p,
    [{ init: start, dtype: I }, { init: acc, dtype: I }],
    (_pivot, [i], [lim]) => g.op(`${p}/Less`, "Less", [i, lim], T(I)),
    (pivot, [i, a], [, st]) => {
      const one = constant(g, `${p}/one`, int(1), [pivot]);
      return [
        g.op(`${p}/add_i`, "AddV2", [i, one], T(I)),
        g.op(`${p}/add_acc`, "AddV2", [a, st], T(I)),
      ];
    },
    [{ value: limit, dtype: I }, { value: step, dtype: I }],
  );
}

function session(build: (g: GraphBuilder) => void): Session {
  const g = new GraphBuilder();
  build(g);
  return new Session(g.graph(), [], defaultRegistry());
}

Deno.test("a graph without control flow keeps the straight-line plan", () => {
  const s = session((g) => {
    const x = g.placeholder("x", F, []);
    g.op("y", "Neg", [x], T(F));
  });
  const plan = s.compile({ feeds: [ref("x")], fetches: [ref("y")] }, "t");
  assert.ok(plan instanceof SequentialPlan);
});

Deno.test("a while loop runs its body once per iteration, 10,000 times without recursion", () => {
  const s = session((g) => {
    const n = g.placeholder("n", I, []);
    const zero = g.constant("zero", int(0));
    const three = g.constant("three", int(3));
    countingLoop(g, "loop", zero, n, zero, three);
  });
  const plan = s.compile(
    { feeds: [ref("n")], fetches: [ref("loop/Exit_0"), ref("loop/Exit_1")] },
    "loop",
  );
  assert.ok(plan instanceof ExecutorPlan);
  for (const n of [0, 1, 5, 10_000]) {
    const [i, acc] = plan.run([int(n)]);
    assert.equal(num(i), n);
    assert.equal(num(acc), 3 * n);
  }
});

Deno.test("nested while loops: an inner loop frame per outer iteration", () => {
  const s = session((g) => {
    const zero = g.constant("zero", int(0));
    const outerN = g.placeholder("outer_n", I, []);
    const innerN = g.placeholder("inner_n", I, []);
    whileLoop(
      g,
      "outer",
      [{ init: zero, dtype: I }, { init: zero, dtype: I }],
      (_p, [i], [lim]) => g.op("outer/Less", "Less", [i, lim], T(I)),
      (pivot, [i, total], [, inner]) => {
        const one = constant(g, "outer/one", int(1), [pivot]);
        const z = constant(g, "outer/zero", int(0), [pivot]);
        // Inner loop: adds (i + 1) inner_n times to total.
        const step = g.op("outer/step", "AddV2", [i, one], T(I));
        const [, acc] = countingLoop(g, "outer/inner", z, inner, total, step);
        return [g.op("outer/add_i", "AddV2", [i, one], T(I)), acc];
      },
      [{ value: outerN, dtype: I }, { value: innerN, dtype: I }],
    );
  });
  const plan = s.compile(
    { feeds: [ref("outer_n"), ref("inner_n")], fetches: [ref("outer/Exit_1")] },
    "nested",
  );
  // sum over i in [0, 3) of (i + 1) * 4 = 24
  assert.equal(num(plan.run([int(3), int(4)])[0]), 24);
  assert.equal(num(plan.run([int(0), int(4)])[0]), 0);
  assert.equal(num(plan.run([int(5), int(0)])[0]), 0);
  assert.equal(num(plan.run([int(10), int(10)])[0]), 550);
});

Deno.test("a cond runs only its taken branch: no side effect, no error from the other one", async () => {
  const g = new GraphBuilder();
  const v = g.op("v", "VariableV2", [], { dtype: attrValue.type(I), shape: attrValue.shape([]) });
  g.op("init", "Assign", [v, g.constant("zero", int(0))], T(I));
  const pred = g.placeholder("pred", B, []);
  const x = g.placeholder("x", I, []);
  cond(
    g,
    "cond",
    pred,
    [{ name: x, dtype: I }],
    (pivot, [xt]) => {
      // Taken when pred: bumps the variable, returns x + 100.
      const hundred = constant(g, "cond/hundred", int(100), [pivot]);
      g.op("cond/bump", "AssignAdd", [v, constant(g, "cond/one", int(1), [pivot])], T(I));
      return g.op("cond/add", "AddV2", [xt, hundred, "^cond/bump"], T(I));
    },
    (pivot, [xf]) => {
      // Taken when !pred: a reshape of a scalar to [2] fails if it ever runs.
      const shape = constant(g, "cond/bad_shape", Tensor.int32([2]), [pivot]);
      return g.op("cond/bad", "Reshape", [xf, shape], T(I));
    },
    I,
  );
  const s = new Session(g.graph(), [], defaultRegistry());
  s.compile({ feeds: [], fetches: [], targets: ["init"] }, "init").run([]);
  const plan = s.compile(
    { feeds: [ref(pred), ref(x)], fetches: [ref("cond/Merge"), ref("cond/Merge:1")] },
    "cond",
  );
  const [y, index] = plan.run([Tensor.scalar(B, true), int(5)]);
  assert.equal(num(y), 105);
  assert.equal(num(index), 1);
  plan.run([Tensor.scalar(B, true), int(5)]);
  const peek = s.compile({ feeds: [], fetches: [ref("v")] }, "peek");
  assert.equal(num(peek.run([])[0]), 2);
  // The false branch runs the reshape, which fails naming its node; the variable is untouched.
  await assertServingError(
    () => plan.run([Tensor.scalar(B, false), int(5)]),
    Code.INVALID_ARGUMENT,
    "{{node cond/bad}}",
  );
  assert.equal(num(peek.run([])[0]), 2);
});

Deno.test("fetching a dead tensor fails as TensorFlow's session does", async () => {
  const s = session((g) => {
    const pred = g.placeholder("pred", B, []);
    const x = g.placeholder("x", F, []);
    g.op("sw", "Switch", [x, pred], T(F));
    g.op("dead_branch", "Identity", ["sw:0"], T(F));
    g.op("live_branch", "Identity", ["sw:1"], T(F));
  });
  const plan = s.compile(
    { feeds: [ref("pred"), ref("x")], fetches: [ref("live_branch"), ref("dead_branch")] },
    "t",
  );
  // Retval indices follow the sorted fetch names: dead_branch:0 is 0, live_branch:0 is 1.
  await assertServingError(
    () => plan.run([Tensor.scalar(B, true), Tensor.scalar(F, 1)]),
    Code.INVALID_ARGUMENT,
    "Retval[0] does not have value",
  );
  await assertServingError(
    () => plan.run([Tensor.scalar(B, false), Tensor.scalar(F, 1)]),
    Code.INVALID_ARGUMENT,
    "Retval[1] does not have value",
  );
  const only = s.compile(
    { feeds: [ref("pred"), ref("x")], fetches: [ref("live_branch")] },
    "t",
  );
  assert.equal(num(only.run([Tensor.scalar(B, true), Tensor.scalar(F, 7)])[0]), 7);
});

Deno.test("deadness travels along control edges; ControlTrigger runs anyway", async () => {
  const s = session((g) => {
    const pred = g.placeholder("pred", B, []);
    const x = g.placeholder("x", F, []);
    g.op("sw", "Switch", [x, pred], T(F));
    g.op("taken", "Identity", ["sw:1"], T(F));
    g.constant("c", Tensor.scalar(F, 2));
    g.op("after_taken", "Identity", ["c", "^taken"], T(F));
    g.op("trigger", "ControlTrigger", ["^taken"]);
    g.op("after_trigger", "Identity", ["c", "^trigger"], T(F));
  });
  const plan = s.compile(
    { feeds: [ref("pred"), ref("x")], fetches: [ref("after_taken"), ref("after_trigger")] },
    "t",
  );
  const [a, b] = plan.run([Tensor.scalar(B, true), Tensor.scalar(F, 1)]);
  assert.equal(num(a), 2);
  assert.equal(num(b), 2);
  // With pred false, "taken" is dead and so is what waits on it, but not past the trigger.
  const trig = s.compile(
    { feeds: [ref("pred"), ref("x")], fetches: [ref("after_trigger")] },
    "t",
  );
  assert.equal(num(trig.run([Tensor.scalar(B, false), Tensor.scalar(F, 1)])[0]), 2);
  await assertServingError(
    () => plan.run([Tensor.scalar(B, false), Tensor.scalar(F, 1)]),
    Code.INVALID_ARGUMENT,
    "Retval[0] does not have value",
  );
});

Deno.test("a loop inside a cond: the untaken branch's loop is dead and never iterates", async () => {
  const g = new GraphBuilder();
  const v = g.op("v", "VariableV2", [], { dtype: attrValue.type(I), shape: attrValue.shape([]) });
  g.op("init", "Assign", [v, g.constant("zero", int(0))], T(I));
  const pred = g.placeholder("pred", B, []);
  const n = g.placeholder("n", I, []);
  cond(
    g,
    "c",
    pred,
    [{ name: n, dtype: I }],
    (pivot, [nt]) => {
      const z = constant(g, "c/t/zero", int(0), [pivot]);
      const two = constant(g, "c/t/two", int(2), [pivot]);
      return countingLoop(g, "c/t/loop", z, nt, z, two)[1];
    },
    (pivot, [nf]) => {
      // This loop bumps the variable on every iteration; it must not run at all.
      const z = constant(g, "c/f/zero", int(0), [pivot]);
      return whileLoop(
        g,
        "c/f/loop",
        [{ init: z, dtype: I }],
        (_p, [i], [lim]) => g.op("c/f/loop/Less", "Less", [i, lim], T(I)),
        (p, [i]) => {
          const one = constant(g, "c/f/loop/one", int(1), [p]);
          // The variable reaches the loop as TF1 routes it: a RefSwitch, then a RefEnter.
          g.op("c/v_switch", "RefSwitch", [v, pred], T(I));
          const vIn = g.op("c/f/loop/v_enter", "RefEnter", ["c/v_switch:0"], {
            ...T(I),
            frame_name: attrValue.string("c/f/loop"),
            is_constant: attrValue.bool(true),
            parallel_iterations: attrValue.int(10),
          });
          g.op("c/f/loop/bump", "AssignAdd", [vIn, one], T(I));
          return [g.op("c/f/loop/add", "AddV2", [i, one, "^c/f/loop/bump"], T(I))];
        },
        [{ value: nf, dtype: I }],
      )[0];
    },
    I,
  );
  // The dead loop's Exit sends its deadness out when the frame ends: a ControlTrigger waiting
  // on it runs, a node waiting on it is dead.
  g.op("trigger", "ControlTrigger", ["^c/f/loop/Exit_0"]);
  g.op("after_trigger", "Identity", ["zero", "^trigger"], T(I));
  g.op("after_exit", "Identity", ["zero", "^c/f/loop/Exit_0"], T(I));
  const s = new Session(g.graph(), [], defaultRegistry());
  s.compile({ feeds: [], fetches: [], targets: ["init"] }, "init").run([]);
  const plan = s.compile({ feeds: [ref(pred), ref(n)], fetches: [ref("c/Merge")] }, "c");
  assert.equal(num(plan.run([Tensor.scalar(B, true), int(6)])[0]), 12);
  const peek = s.compile({ feeds: [], fetches: [ref("v")] }, "peek");
  assert.equal(num(peek.run([])[0]), 0);
  const triggered = s.compile({ feeds: [ref(pred), ref(n)], fetches: [ref("after_trigger")] }, "c");
  assert.equal(num(triggered.run([Tensor.scalar(B, true), int(6)])[0]), 0);
  const exited = s.compile({ feeds: [ref(pred), ref(n)], fetches: [ref("after_exit")] }, "c");
  await assertServingError(
    () => exited.run([Tensor.scalar(B, true), int(6)]),
    Code.INVALID_ARGUMENT,
    "Retval[0] does not have value",
  );
  assert.equal(num(exited.run([Tensor.scalar(B, false), int(2)])[0]), 0);
  // The other way round: the false loop runs n times and its exit is the result.
  assert.equal(num(plan.run([Tensor.scalar(B, false), int(4)])[0]), 4);
  assert.equal(num(peek.run([])[0]), 4 + 2);
});

Deno.test("a cond inside a loop: each iteration takes its own branch", () => {
  const s = session((g) => {
    const zero = g.constant("zero", int(0));
    const n = g.placeholder("n", I, []);
    whileLoop(
      g,
      "w",
      [{ init: zero, dtype: I }, { init: zero, dtype: I }],
      (_p, [i], [lim]) => g.op("w/Less", "Less", [i, lim], T(I)),
      (pivot, [i, acc]) => {
        const one = constant(g, "w/one", int(1), [pivot]);
        const two = constant(g, "w/two", int(2), [pivot]);
        // Add 10 on even i, 1 on odd i.
        const even = g.op(
          "w/even",
          "Equal",
          [g.op("w/mod", "FloorMod", [i, two], T(I)), constant(g, "w/z", int(0), [pivot])],
          T(I),
        );
        const added = cond(
          g,
          "w/c",
          even,
          [{ name: acc, dtype: I }],
          (p, [a]) => g.op("w/c/add10", "AddV2", [a, constant(g, "w/c/ten", int(10), [p])], T(I)),
          (p, [a]) => g.op("w/c/add1", "AddV2", [a, constant(g, "w/c/one", int(1), [p])], T(I)),
          I,
        );
        return [g.op("w/add_i", "AddV2", [i, one], T(I)), added];
      },
      [{ value: n, dtype: I }],
    );
  });
  const plan = s.compile({ feeds: [ref("n")], fetches: [ref("w/Exit_1")] }, "w");
  // i = 0..4: 10 + 1 + 10 + 1 + 10
  assert.equal(num(plan.run([int(5)])[0]), 32);
});

Deno.test("a loop past the iteration limit fails RESOURCE_EXHAUSTED", async () => {
  const s = session((g) => {
    const zero = g.constant("zero", int(0));
    const n = g.placeholder("n", I, []);
    countingLoop(g, "loop", zero, n, zero, zero);
  });
  const plan = s.compile({ feeds: [ref("n")], fetches: [ref("loop/Exit_0")] }, "t");
  const was = setWhileIterationLimit(50);
  try {
    assert.equal(num(plan.run([int(50)])[0]), 50);
    await assertServingError(
      () => plan.run([int(51)]),
      Code.RESOURCE_EXHAUSTED,
      'While loop "loop" did not finish within 50 iterations',
    );
  } finally {
    setWhileIterationLimit(was);
  }
});

Deno.test("frames are checked at compile time", async () => {
  // A node fed from inside a loop frame and from outside it.
  const s = session((g) => {
    const zero = g.constant("zero", int(0));
    const n = g.placeholder("n", I, []);
    whileLoop(
      g,
      "w",
      [{ init: zero, dtype: I }],
      (_p, [i], [lim]) => g.op("w/Less", "Less", [i, lim], T(I)),
      (_p, [i]) => [g.op("w/add", "AddV2", [i, "zero"], T(I))],
      [{ value: n, dtype: I }],
    );
  });
  await assertServingError(
    () => s.compile({ feeds: [ref("n")], fetches: [ref("w/Exit_0")] }, "w"),
    Code.INVALID_ARGUMENT,
    /node "w\/(add|Merge_0)" has inputs from different frames/,
  );
  // An Exit with no Enter.
  const s2 = session((g) => {
    g.op("x", "Exit", [g.constant("c", int(0))], T(I));
  });
  await assertServingError(
    () => s2.compile({ feeds: [], fetches: [ref("x")] }, "t"),
    Code.INVALID_ARGUMENT,
    /invalid Exit op "x"/,
  );
  // A NextIteration outside any loop frame.
  const s4 = session((g) => {
    g.op("m", "Merge", ["c:0", "n:0"], { ...T(I), N: attrValue.int(2) });
    g.constant("c", int(0));
    g.op("n", "NextIteration", ["m:0"], T(I));
  });
  await assertServingError(
    () => s4.compile({ feeds: [], fetches: [ref("m")] }, "t"),
    Code.INVALID_ARGUMENT,
    /the NextIteration node "n" is not inside a loop/,
  );
  // A cycle that is not a loop's back edge is still refused.
  const s3 = session((g) => {
    g.op("a", "Identity", ["b:0"], T(I));
    g.op("b", "Merge", ["a:0", "c:0"], { ...T(I), N: attrValue.int(2) });
    g.constant("c", int(0));
  });
  await assertServingError(
    () => s3.compile({ feeds: [], fetches: [ref("a")] }, "t"),
    Code.INVALID_ARGUMENT,
    /cycle through node/,
  );
});

Deno.test("a fed Placeholder's control edges move to the feed: the Placeholder never runs", () => {
  // As in a TF2 function inlined into a GraphDef: Consts with `^input` control inputs.
  const g = new GraphBuilder();
  const x = g.placeholder("input", F, [2]);
  const w = constant(g, "w", Tensor.float32([2, 3]), ["input"]);
  const b = constant(g, "b", Tensor.float32([1, 1]), ["input"]);
  g.op("y", "AddV2", [g.op("m", "Mul", [x, w], T(F)), b], T(F));
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile({ feeds: [ref(x)], fetches: [ref("y")] }, "signature");
  assert.ok(!plan.ops.includes("Placeholder"), plan.ops.join(","));
  assert.deepEqual([...plan.run([Tensor.float32([1, 2])])[0].data as Float32Array], [3, 7]);
  // Unfed, the Placeholder runs and fails as TensorFlow's does.
  const unfed = s.compile({ feeds: [], fetches: [ref("b")] }, "b");
  assert.throws(() => unfed.run([]), /You must feed a value for placeholder tensor 'input'/);
});

Deno.test("control edges of a fed Placeholder move to the feed in control-flow graphs too", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("input", F, []);
  const pred = constant(g, "pred", Tensor.scalar(B, true), ["input"]);
  g.op("sw", "Switch", [x, pred], T(F));
  g.op("y", "Identity", ["sw:1"], T(F));
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile({ feeds: [ref(x)], fetches: [ref("y")] }, "signature");
  assert.ok(plan instanceof ExecutorPlan);
  assert.ok(!plan.ops.includes("Placeholder"));
  assert.equal(num(plan.run([Tensor.scalar(F, 4)])[0]), 4);
});

Deno.test("TF1 loops over a variable reference: RefEnter, RefSwitch and AssignAdd each iteration", () => {
  const g = new GraphBuilder();
  const v = g.op("v", "VariableV2", [], { dtype: attrValue.type(I), shape: attrValue.shape([]) });
  g.op("init", "Assign", [v, g.constant("zero", int(0))], T(I));
  const n = g.placeholder("n", I, []);
  const z = g.constant("z", int(0));
  whileLoop(
    g,
    "w",
    [{ init: z, dtype: I }],
    (_p, [i], [lim]) => g.op("w/Less", "Less", [i, lim], T(I)),
    (pivot, [i]) => {
      const one = constant(g, "w/one", int(1), [pivot]);
      const bump = g.op("w/bump", "AssignAdd", ["w/v_enter", one], T(I));
      return [g.op("w/add", "AddV2", [i, one, `^${bump.split(":")[0]}`], T(I))];
    },
    [{ value: n, dtype: I }],
  );
  g.op("w/v_enter", "RefEnter", [v], {
    ...T(I),
    frame_name: attrValue.string("w"),
    is_constant: attrValue.bool(true),
    parallel_iterations: attrValue.int(10),
  });
  // Read the variable after the loop.
  g.op("after", "Identity", [v, "^w/Exit_0"], T(I));
  const s = new Session(g.graph(), [], defaultRegistry());
  s.compile({ feeds: [], fetches: [], targets: ["init"] }, "init").run([]);
  const plan = s.compile({ feeds: [ref(n)], fetches: [ref("after")] }, "w");
  assert.equal(num(plan.run([int(7)])[0]), 7);
  assert.equal(num(plan.run([int(3)])[0]), 10);
});

Deno.test("a Merge waits for its control inputs but does not take their deadness", () => {
  const s = session((g) => {
    const pred = g.placeholder("pred", B, []);
    const x = g.placeholder("x", F, []);
    g.op("sw", "Switch", [x, pred], T(F));
    g.op("t", "Identity", ["sw:1"], T(F));
    g.op("f", "Identity", ["sw:0"], T(F));
    // Control inputs from both branches: one of them is always dead.
    g.op("m", "Merge", ["f", "t", "^t", "^f"], { ...T(F), N: attrValue.int(2) });
    g.op("y", "Neg", ["m"], T(F));
  });
  const plan = s.compile({ feeds: [ref("pred"), ref("x")], fetches: [ref("y"), ref("m:1")] }, "t");
  for (const p of [true, false]) {
    const [y, index] = plan.run([Tensor.scalar(B, p), Tensor.scalar(F, 3)]);
    assert.equal(num(y), -3);
    assert.equal(num(index), p ? 1 : 0);
  }
});

Deno.test("fetching a tensor inside a loop: one iteration gives it, two set it twice", async () => {
  const s = session((g) => {
    const zero = g.constant("zero", int(0));
    const n = g.placeholder("n", I, []);
    countingLoop(g, "loop", zero, n, zero, zero);
  });
  const plan = s.compile({ feeds: [ref("n")], fetches: [ref("loop/add_i")] }, "t");
  assert.equal(num(plan.run([int(1)])[0]), 1);
  await assertServingError(
    () => plan.run([int(2)]),
    Code.INTERNAL,
    "Retval[0] has already been set.",
  );
  await assertServingError(
    () => plan.run([int(0)]),
    Code.INVALID_ARGUMENT,
    "Retval[0] does not have value",
  );
});
