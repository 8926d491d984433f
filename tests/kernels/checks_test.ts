import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { checkKernels } from "../../src/kernels/checks.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { numberToHalfBits } from "../../src/kernels/elementwise.ts";
import { doubleToBuffer, floatToBuffer, summarizeValue } from "../../src/kernels/summarize.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, failure, runOp } from "./harness.ts";

const bool = (b: boolean, shape: number[] = []) =>
  new Tensor(DataType.DT_BOOL, shape, Uint8Array.of(b ? 1 : 0));

Deno.test("summarizeValue() prints as Tensor::SummarizeValue", () => {
  const m = Tensor.float32([1, 2.5, 3, 4, 5, 6], [2, 3]);
  assert.equal(summarizeValue(m, 3), "[1 2.5 3]...");
  assert.equal(summarizeValue(m, 4), "[1 2.5 3][4...]...");
  assert.equal(summarizeValue(m, -1), "[1 2.5 3][4 5 6]");
  assert.equal(summarizeValue(m, 0), "...");
  assert.equal(summarizeValue(Tensor.int32([1, 2, 3, 4, 5]), 3), "1 2 3...");
  assert.equal(summarizeValue(Tensor.int32([7], []), 3), "7");
  assert.equal(summarizeValue(Tensor.int64([-(2n ** 63n)], []), 3), "-9223372036854775808");
  assert.equal(summarizeValue(Tensor.float32([], [0, 3]), 3), "");
  const cube = Tensor.int32([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
  assert.equal(summarizeValue(cube, 3), "[[1 2][3...]]...");
  assert.equal(summarizeValue(cube, 8), "[[1 2][3 4]][[5 6][7 8]]");
  assert.equal(summarizeValue(Tensor.strings(["a\nb", 'q"\x01', "é"]), 3), 'a\\nb q\\"\\001 é');
  assert.equal(summarizeValue(new Tensor(DataType.DT_BOOL, [2], Uint8Array.of(1, 0)), 3), "1 0");
  assert.equal(summarizeValue(new Tensor(DataType.DT_BOOL, [2], Uint8Array.of(1, 0)), 0), "");
  const c = new Tensor(DataType.DT_COMPLEX64, [3], new Float32Array(6));
  assert.equal(summarizeValue(c, 2), "? ?...");
});

Deno.test("floatToBuffer()/doubleToBuffer() use %.6g/%.15g unless the value would not read back", () => {
  assert.equal(floatToBuffer(Math.fround(0.1)), "0.1");
  assert.equal(floatToBuffer(Math.fround(1 / 3)), "0.333333343");
  assert.equal(floatToBuffer(1e20), "1e+20");
  assert.equal(floatToBuffer(-Infinity), "-inf");
  assert.equal(floatToBuffer(NaN), "nan");
  assert.equal(floatToBuffer(0.0001), "0.0001");
  assert.equal(floatToBuffer(Math.fround(0.00001)), "1e-05");
  assert.equal(doubleToBuffer(0.1), "0.1");
  assert.equal(doubleToBuffer(1 / 3), "0.33333333333333331");
  assert.equal(doubleToBuffer(Number.MAX_VALUE), "1.7976931348623157e+308");
  assert.equal(doubleToBuffer(123456789012), "123456789012");
});

Deno.test("Assert passes on true and fails with TF's message on false", () => {
  const data = [Tensor.strings(["x must be positive"]), Tensor.float32([-1, 0.5, 2, 3], [4])];
  assert.deepEqual(runOp(checkKernels, "Assert", [bool(true), ...data]), []);
  assert.deepEqual(runOp(checkKernels, "Assert", [bool(true, [1]), ...data]), []);
  const e = failure(() => runOp(checkKernels, "Assert", [bool(false), ...data]));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  assert.equal(e.message, "assertion failed: [x must be positive] [-1 0.5 2...]");
  const all = failure(() =>
    runOp(checkKernels, "Assert", [bool(false), ...data], { summarize: attr.int(-1) })
  );
  assert.equal(all.message, "assertion failed: [x must be positive] [-1 0.5 2 3]");
  const none = failure(() => runOp(checkKernels, "Assert", [bool(false)]));
  assert.equal(none.message, "assertion failed: ");
});

Deno.test("Assert refuses a condition that is not a scalar", () => {
  const cond = new Tensor(DataType.DT_BOOL, [2], Uint8Array.of(1, 1));
  const e = failure(() => runOp(checkKernels, "Assert", [cond]));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  assert.equal(e.message, "In[0] should be a scalar: [2]");
});

Deno.test("CheckNumerics passes finite tensors through and names Inf and NaN as TF does", () => {
  const message = { message: attr.string("check x") };
  const ok = Tensor.float32([1, -2, 3]);
  assert.equal(runOp(checkKernels, "CheckNumerics", [ok], message)[0].data, ok.data);
  const cases: [number[], string, string][] = [
    [[1, NaN], "NaN", "NaN"],
    [[Infinity, 1], "Inf", "+Inf"],
    [[-Infinity, 1], "Inf", "-Inf"],
    [[-Infinity, Infinity], "Inf", "-Inf and +Inf"],
    [[NaN, Infinity], "Inf and NaN", "+Inf and NaN"],
    [[-Infinity, Infinity, NaN], "Inf and NaN", "-Inf, +Inf, and NaN"],
  ];
  for (const [values, v1, v2] of cases) {
    const t = Tensor.float32(values);
    const e1 = failure(() => runOp(checkKernels, "CheckNumerics", [t], message));
    assert.equal(e1.code, Code.INVALID_ARGUMENT);
    assert.equal(e1.message, `check x : Tensor had ${v1} values`);
    const e2 = failure(() => runOp(checkKernels, "CheckNumericsV2", [t], message));
    assert.equal(e2.message, `check x : Tensor had ${v2} values`);
  }
  const half = new Tensor(DataType.DT_HALF, [2], Uint16Array.of(0, numberToHalfBits(Infinity)));
  const e = failure(() => runOp(checkKernels, "CheckNumerics", [half], message));
  assert.equal(e.message, "check x : Tensor had Inf values");
});

Deno.test("CheckNumerics refuses integer tensors (TF registers only float types)", () => {
  const e = failure(() =>
    runOp(checkKernels, "CheckNumerics", [Tensor.int32([1])], {
      message: attr.string("m"),
      T: attr.type(DataType.DT_INT32),
    })
  );
  assert.equal(e.code, Code.UNIMPLEMENTED);
});

Deno.test("an Assert reached through a control edge gates its dependents in a plan", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, [-1]);
  const zero = g.constant("zero", Tensor.scalar(DataType.DT_FLOAT, 0));
  const positive = g.op("positive", "Greater", [x, zero], {
    T: attrValue.type(DataType.DT_FLOAT),
  });
  const axis = g.constant("axis", Tensor.int32([0]));
  const all = g.op("all", "All", [positive, axis], { keep_dims: attrValue.bool(false) });
  const msg = g.constant("msg", Tensor.strings(["x must be positive:"]));
  g.op("check", "Assert", [all, msg, x], {
    T: attrValue.types([DataType.DT_STRING, DataType.DT_FLOAT]),
    summarize: attrValue.int(2),
  });
  g.op("y", "Identity", [x, "^check"], { T: attrValue.type(DataType.DT_FLOAT) });
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile({ feeds: [parseTensorName(x)], fetches: [parseTensorName("y:0")] }, "y");
  assert.deepEqual(Array.from(plan.run([Tensor.float32([1, 2, 3])])[0].data as Float32Array), [
    1,
    2,
    3,
  ]);
  const e = failure(() => plan.run([Tensor.float32([1, -2, 3])]));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  // The session adds the node as TensorFlow's executor does.
  assert.equal(
    e.message,
    "assertion failed: [x must be positive:] [1 -2...]\n\t [[{{node check}}]]",
  );
});

Deno.test("Print passes its input through (its log goes to standard error)", () => {
  const x = Tensor.float32([1, 2]);
  const out = runOp(checkKernels, "Print", [x, Tensor.int32([7])], {
    message: attr.string("print test: "),
    first_n: attr.int(1),
  });
  assert.equal(out.length, 1);
  assert.equal(out[0].data, x.data);
});

Deno.test("StringFormat summarises its inputs in the print_v2 form, as tf.strings.format", () => {
  const format = (inputs: Tensor[], template: string, summarize = 3) =>
    new TextDecoder().decode(
      runOp(checkKernels, "StringFormat", inputs, {
        template: attr.string(template),
        placeholder: attr.string("{}"),
        summarize: attr.int(summarize),
      })[0].strings[0],
    );
  const v = Tensor.int32(Array.from({ length: 10 }, (_, i) => i));
  assert.equal(format([v], "x = {}"), "x = [0 1 2 ... 7 8 9]");
  assert.equal(format([Tensor.int32([1, 2])], "{}"), "[1 2]");
  const m = Tensor.float32([1, 2.5, 3, 4], [2, 2]);
  assert.equal(format([m, Tensor.strings(["a"], [])], "{} and {}"), '[[1 2.5]\n [3 4]] and "a"');
  const cube = Tensor.int32(Array.from({ length: 8 }, (_, i) => i), [2, 2, 2]);
  assert.equal(format([cube], "{}", -1), "[[[0 1]\n  [2 3]]\n\n [[4 5]\n  [6 7]]]");
  const e = failure(() =>
    runOp(checkKernels, "StringFormat", [v], {
      template: attr.string("{} {}"),
      placeholder: attr.string("{}"),
    })
  );
  assert.equal(e.message, "num placeholders in template and num inputs must match: 2 vs. 1");
});

Deno.test("PrintV2 refuses unknown streams and files at load", () => {
  const unknown = failure(() =>
    runOp(checkKernels, "PrintV2", [Tensor.strings(["x"], [])], {
      output_stream: attr.string("printer"),
    })
  );
  assert.equal(unknown.code, Code.INVALID_ARGUMENT);
  assert.equal(
    unknown.message,
    "Unknown output stream: printer, Valid streams are: stdout stderr log(info) log(warning) " +
      "log(error)",
  );
  const file = failure(() =>
    runOp(checkKernels, "PrintV2", [Tensor.strings(["x"], [])], {
      output_stream: attr.string("file:///tmp/x"),
    })
  );
  assert.equal(file.code, Code.UNIMPLEMENTED);
  assert.deepEqual(
    runOp(checkKernels, "PrintV2", [Tensor.strings(["PrintV2 test"], [])], {
      output_stream: attr.string("stderr"),
    }),
    [],
  );
});
