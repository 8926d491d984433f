/**
 * JSON ⇄ tensors as TF Serving's util/json_tensor.cc (cases after json_tensor_test.cc): row and
 * columnar requests, nesting and ragged lists, b64, bools, strings, int64, NaN/Infinity,
 * classify/regress examples, and the exact response text and error messages.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  ClassificationRequestSchema,
  ClassificationResultSchema,
} from "../../../src/proto/gen/tensorflow_serving/apis/classification_pb.ts";
import { PredictRequestSchema } from "../../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import {
  RegressionRequestSchema,
  RegressionResultSchema,
} from "../../../src/proto/gen/tensorflow_serving/apis/regression_pb.ts";
import type { Example } from "../../../src/proto/gen/tensorflow/core/example/example_pb.ts";
import {
  base64Escape,
  base64Unescape,
  dataTypeString,
  fillClassificationRequestFromJson,
  fillPredictRequestFromJson,
  fillRegressionRequestFromJson,
  type JsonPredictRequestFormat,
  makeJsonFromClassificationResult,
  makeJsonFromRegressionResult,
  makeJsonFromStatus,
  makeJsonFromTensors,
} from "../../../src/api/rest/json_tensor.ts";
import { Code, ServingError } from "../../../src/errors.ts";
import { DataType } from "../../../src/tensor/dtype.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { tensorFromProto, tensorToProto } from "../../../src/tensor/tensor_proto.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const {
  DT_BOOL,
  DT_COMPLEX64,
  DT_DOUBLE,
  DT_FLOAT,
  DT_HALF,
  DT_INT32,
  DT_INT64,
  DT_INT8,
  DT_STRING,
  DT_UINT64,
  DT_UINT8,
} = DataType;

type Infos = Record<string, DataType>;

/** Fills a PredictRequest from JSON; returns the format and the inputs as tensors. */
function predict(json: string | Uint8Array, infos: Infos) {
  const req = create(PredictRequestSchema, { modelSpec: { name: "m" } });
  const format = fillPredictRequestFromJson(
    typeof json === "string" ? enc.encode(json) : json,
    () => new Map(Object.entries(infos)),
    req,
  );
  const inputs: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(req.inputs)) inputs[k] = tensorFromProto(v);
  return { format, inputs, signature: req.modelSpec!.signatureName };
}

function values(t: Tensor): unknown[] {
  if (t.dtype === DT_STRING) return (t.data as Uint8Array[]).map((b) => dec.decode(b));
  return Array.from(t.data as ArrayLike<unknown>);
}

function fails(fn: () => unknown, code: Code, message: string | RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return;
  }
  assert.fail("expected a ServingError");
}

function predictFails(
  json: string,
  infos: Infos,
  message: string | RegExp,
  code = Code.INVALID_ARGUMENT,
) {
  fails(() => predict(json, infos), code, message);
}

Deno.test("Predict request, row format", async (t) => {
  await t.step("one unnamed int32 input", () => {
    const r = predict(`{"instances": [[1,2],[3,4],[5,6]]}`, { default: DT_INT32 });
    assert.equal(r.format, "row");
    assert.deepEqual(r.inputs.default.shape, [3, 2]);
    assert.deepEqual(values(r.inputs.default), [1, 2, 3, 4, 5, 6]);
    assert.equal(r.inputs.default.dtype, DT_INT32);
  });
  await t.step("signature_name", () => {
    const r = predict(`{"signature_name": "predict_images", "instances": [[1,2]]}`, {
      default: DT_INT32,
    });
    assert.equal(r.signature, "predict_images");
    assert.deepEqual(r.inputs.default.shape, [1, 2]);
  });
  await t.step("mixed integers and decimals for float and double", () => {
    const f = predict(`{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}`, { x: DT_FLOAT });
    assert.deepEqual(values(f.inputs.x), [1, 2, 3, 4, 5.003, 0.007, 0].map(Math.fround));
    const d = predict(`{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}`, { x: DT_DOUBLE });
    assert.deepEqual(values(d.inputs.x), [1, 2, 3, 4, 0.662, 0, 0]);
  });
  await t.step("float precision loss is the same for 1435774380 and 1435774380.0", () => {
    for (const v of ["1435774380", "1435774380.0"]) {
      const r = predict(`{"instances": [${v}]}`, { x: DT_FLOAT });
      assert.deepEqual(values(r.inputs.x), [1435774336]);
    }
  });
  await t.step("double max becomes float inf; double min becomes 0", () => {
    const r = predict(
      `{"instances": [1.7976931348623157e+308, -1.7976931348623157e+308, 2.2250738585072014e-308, -2.2250738585072014e-308]}`,
      { x: DT_FLOAT },
    );
    const v = values(r.inputs.x) as number[];
    assert.deepEqual(v.slice(0, 2), [Infinity, -Infinity]);
    assert.ok(Object.is(v[2], 0) && Object.is(v[3], -0));
  });
  await t.step("NaN, Infinity and -Infinity tokens", () => {
    const r = predict(`{"instances": [NaN, Infinity, -Infinity, -Inf]}`, { x: DT_FLOAT });
    const v = values(r.inputs.x) as number[];
    assert.ok(Number.isNaN(v[0]));
    assert.deepEqual(v.slice(1), [Infinity, -Infinity, -Infinity]);
  });
  await t.step("int64 and uint64 keep every digit; bool; int8 wraps as int_val would", () => {
    const r = predict(
      `{"instances": [{"a": 9223372036854775807, "b": 18446744073709551615, "c": true, "d": -1, "e": 300}, {"a": -9223372036854775808, "b": 0, "c": false, "d": 2, "e": 1}]}`,
      { a: DT_INT64, b: DT_UINT64, c: DT_BOOL, d: DT_INT8, e: DT_UINT8 },
    );
    assert.deepEqual(values(r.inputs.a), [9223372036854775807n, -9223372036854775808n]);
    assert.deepEqual(values(r.inputs.b), [18446744073709551615n, 0n]);
    assert.deepEqual(values(r.inputs.c), [1, 0]);
    assert.deepEqual(values(r.inputs.d), [-1, 2]);
    assert.deepEqual(values(r.inputs.e), [44, 1]);
    assert.deepEqual(r.inputs.a.shape, [2]);
  });
  await t.step("b64 scalars, lists and named", () => {
    const a = predict(`{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}`, {
      default: DT_STRING,
    });
    assert.deepEqual(a.inputs.default.shape, [2]);
    assert.deepEqual(values(a.inputs.default), ["hello", "world"]);
    const b = predict(`{"instances": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}`, {
      default: DT_STRING,
    });
    assert.deepEqual(b.inputs.default.shape, [2, 1]);
    const c = predict(
      `{"instances": [{"default": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}]}`,
      { default: DT_STRING },
    );
    assert.deepEqual(c.inputs.default.shape, [1, 2, 1]);
    assert.deepEqual(values(c.inputs.default), ["hello", "world"]);
  });
  await t.step("several named inputs", () => {
    const r = predict(
      `{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], "float_tensor": [1.0, NaN], "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"], "float_tensor": [2.0, Infinity], "dbl_tensor": [2.0]}
      ]}`,
      {
        int_tensor: DT_INT32,
        str_tensor: DT_STRING,
        float_tensor: DT_FLOAT,
        dbl_tensor: DT_DOUBLE,
      },
    );
    assert.deepEqual(r.inputs.int_tensor.shape, [2, 3, 2]);
    assert.deepEqual(values(r.inputs.int_tensor), [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
    assert.deepEqual(r.inputs.str_tensor.shape, [2, 2]);
    assert.deepEqual(values(r.inputs.str_tensor), ["foo", "bar", "baz", "bat"]);
    assert.deepEqual(r.inputs.float_tensor.shape, [2, 2]);
    assert.deepEqual(r.inputs.dbl_tensor.shape, [2, 1]);
  });
  await t.step("the body may carry bytes after the document", () => {
    const r = predict(`{"instances": [[1,2],[3,4],[5,6]]}X`, { default: DT_INT32 });
    assert.deepEqual(r.inputs.default.shape, [3, 2]);
  });
  await t.step("deep nesting elsewhere in the document is fine", () => {
    const r = predict(
      `{"instances":[1], "nested":${"[".repeat(500000)}${"]".repeat(500000)}}`,
      { default: DT_INT32 },
    );
    assert.deepEqual(r.inputs.default.shape, [1]);
  });
});

Deno.test("Predict request, columnar format", async (t) => {
  await t.step("named and unnamed single input", () => {
    const a = predict(`{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}`, {
      int_tensor: DT_INT32,
    });
    assert.equal(a.format, "columnar");
    assert.deepEqual(a.inputs.int_tensor.shape, [1, 3, 2]);
    const b = predict(`{"inputs": [[[1,2],[3,4],[5,6]]]}`, { int_tensor: DT_INT32 });
    assert.deepEqual(b.inputs.int_tensor.shape, [1, 3, 2]);
    assert.deepEqual(values(b.inputs.int_tensor), [1, 2, 3, 4, 5, 6]);
  });
  await t.step("several inputs of different sizes; a scalar b64; extra keys ignored", () => {
    const r = predict(
      `{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"], "bin_tensor": {"b64": "aGVsbG8="}, "unused": 1}}`,
      { int_tensor: DT_INT32, str_tensor: DT_STRING, bin_tensor: DT_STRING },
    );
    assert.deepEqual(r.inputs.str_tensor.shape, [2]);
    assert.deepEqual(r.inputs.bin_tensor.shape, []);
    assert.deepEqual(values(r.inputs.bin_tensor), ["hello"]);
    assert.equal(Object.keys(r.inputs).length, 3);
  });
  await t.step("a bare scalar", () => {
    const r = predict(`{"inputs": 3.5}`, { x: DT_FLOAT });
    assert.deepEqual(r.inputs.x.shape, []);
    assert.deepEqual(values(r.inputs.x), [3.5]);
  });
});

Deno.test("Predict request errors", async (t) => {
  const int = { default: DT_INT32 };
  await t.step("parse errors", () => {
    fails(() => predict("", int), Code.INVALID_ARGUMENT, "JSON Parse error: The document is empty");
    predictFails("instances = [1, 2]", int, "JSON Parse error: Invalid value. at offset: 0");
    predictFails(
      `{"instances": [1, 2]`,
      int,
      "JSON Parse error: Missing a comma or '}' after an object member. at offset: 20",
    );
    predictFails(`[1, 2]`, int, "JSON Value: [1, 2] Is not object");
  });
  await t.step("signature_name must be a string", () => {
    predictFails(
      `{"signature_name": 5, "instances": [[1,2]]}`,
      int,
      `JSON Value: {\n    "signature_name": 5,\n    "instances": [[1, 2]]\n} not formatted correctly. 'signature_name' key must be a string value.`,
    );
    predictFails(
      `{"signature_name":${"[".repeat(500000)}${"]".repeat(500000)}}`,
      int,
      /key must be a string value\.$/,
    );
  });
  await t.step("instances and inputs", () => {
    predictFails(
      `{"instances": [1], "inputs": [1]}`,
      int,
      `JSON Value: {\n    "instances": [1],\n    "inputs": [1]\n} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist `,
    );
    predictFails(
      `{"instances": 5}`,
      int,
      `JSON Value: {\n    "instances": 5\n} Expecting 'instances' to be an list/array`,
    );
    predictFails(
      `{"instances": []}`,
      int,
      `JSON Value: {\n    "instances": []\n} No values in 'instances' array`,
    );
    predictFails(`{"foo": 1}`, int, "Missing 'inputs' or 'instances' key");
    fails(
      () => predict(`{"instances": [1]}`, {}),
      Code.INVALID_ARGUMENT,
      "Failed to get input map for signature: DEFAULT",
    );
  });
  await t.step("ragged and misshapen lists", () => {
    predictFails(
      `{"instances": [[1,2],[3,4],[5,6,7]]}`,
      int,
      "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 3",
    );
    predictFails(
      `{"instances": [[1,2],[3,4],[[5,6]]]}`,
      int,
      "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [2] but got: [1,2]",
    );
    predictFails(
      `{"instances": [1, [1]]}`,
      int,
      "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [] but got: [1]",
    );
    predictFails(
      `{"instances": [[[1,2],[3]]]}`,
      int,
      "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Encountered list at unexpected size: 1 at level: 1 expected size: 2",
    );
    predictFails(
      `{"instances": [[[1,2],3]]}`,
      int,
      "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
    );
    predictFails(
      `{"inputs": [1, [2]]}`,
      int,
      "Encountered list at unexpected level: 1 expected < 1",
    );
    predictFails(
      `{"inputs": [[1, 2], [3]]}`,
      { x: DT_FLOAT },
      "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
    );
  });
  await t.step("type errors", () => {
    predictFails(
      `{"instances": [[1,2],["a", "b"]]}`,
      int,
      `Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "a" Type: String is not of expected type: int32`,
    );
    predictFails(
      `{"instances": [1.0]}`,
      int,
      "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1.0 Type: Number is not of expected type: int32",
    );
    predictFails(
      `{"instances": [2147483648]}`,
      int,
      /JSON Value: 2147483648 Type: Number is not of expected type: int32$/,
    );
    predictFails(
      `{"inputs": ["x", "y"]}`,
      { x: DT_FLOAT },
      `JSON Value: "x" Type: String is not of expected type: float`,
    );
    predictFails(
      `{"inputs": [1.5]}`,
      { x: DT_INT64 },
      "JSON Value: 1.5 Type: Number is not of expected type: int64",
    );
    predictFails(
      `{"inputs": [1]}`,
      { x: DT_BOOL },
      "JSON Value: 1 Type: Number is not of expected type: bool",
    );
    predictFails(
      `{"inputs": [null]}`,
      { x: DT_FLOAT },
      "JSON Value: null Type: Null is not of expected type: float",
    );
    predictFails(
      `{"inputs": [{"b64": "aGVsbG8="}]}`,
      { x: DT_FLOAT },
      `JSON Value: {\n    "b64": "aGVsbG8="\n} Type: Object is not of expected type: float`,
    );
    predictFails(
      `{"inputs": [{"b64": "aGVsbG8=", "x": 1}]}`,
      { x: DT_STRING },
      `JSON Value: {\n    "b64": "aGVsbG8=",\n    "x": 1\n} not formatted correctly for base64 data`,
    );
    predictFails(`{"inputs": [{"b64": "a"}]}`, { x: DT_STRING }, "Unable to base64 decode");
    // A type JSON cannot express: UNIMPLEMENTED, wrapped (as INVALID_ARGUMENT) in row format.
    predictFails(
      `{"inputs": [1]}`,
      { x: DT_HALF },
      "Conversion of JSON Value: 1 to type: half",
      Code.UNIMPLEMENTED,
    );
    predictFails(
      `{"instances": [1]}`,
      { x: DT_HALF },
      "Failed to process element: 0 of 'instances' list. Error: UNIMPLEMENTED: Conversion of JSON Value: 1 to type: half",
    );
  });
  await t.step("named inputs", () => {
    const two = { int_tensor: DT_INT32, str_tensor: DT_STRING };
    predictFails(
      `{"instances": [[1,2]]}`,
      two,
      "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map",
    );
    predictFails(
      `{"instances": [{"int_tensor": [1], "str_tensor": ["a"]}, [1, 20, 30]]}`,
      two,
      "Expecting object but got list at item 1 of input list",
    );
    predictFails(
      `{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}`,
      { str_tensor: DT_STRING },
      "Expecting value/list but got object at item 1 of input list",
    );
    predictFails(
      `{"instances": [{"int_tensor": [1], "foo": 1}]}`,
      two,
      "Failed to process element: 0 key: foo of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have named input: foo",
    );
    predictFails(
      `{"instances": [{"int_tensor": [1]}]}`,
      two,
      `Failed to process element: 0 of 'instances' list. JSON object: {\n    "int_tensor": [1]\n} keys must be equal to: int_tensor,str_tensor`,
    );
    predictFails(
      `{"instances": [{"int_tensor": [[1,2],[3,4]], "str_tensor": ["a"]}, {"int_tensor": [[[1,2],[3,4]]], "str_tensor": ["b"]}]}`,
      two,
      "Failed to process element: 1 key: int_tensor of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [2,2] but got: [1,2,2]",
    );
    predictFails(
      `{"inputs": [1]}`,
      two,
      "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map",
    );
    predictFails(
      `{"inputs": {"int_tensor": [1]}}`,
      two,
      "Missing named input: str_tensor in 'inputs' object.",
    );
  });
  await t.step("debug strings are cut after 256 bytes", () => {
    const long = `[${Array.from({ length: 200 }, (_, i) => `"s${i}"`).join(",")}]`;
    try {
      predict(`{"signature_name": ${long}}`, int);
      assert.fail("expected an error");
    } catch (e) {
      const m = (e as Error).message;
      assert.match(m, /^JSON Value: \{\n {4}"signature_name": \["s0", "s1", /);
      assert.ok(m.length < 400, m);
      assert.match(
        m,
        /", "s\d+" not formatted correctly\. 'signature_name' key must be a string value\.$/,
      );
    }
  });
});

/** The response text for outputs. */
function outputs(tensors: Record<string, Tensor>, format: JsonPredictRequestFormat): string {
  const protos = Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, tensorToProto(v)]));
  const r = makeJsonFromTensors(protos, format);
  return typeof r === "string" ? r : dec.decode(r);
}

const i32 = (shape: number[], v: number[]) => new Tensor(DT_INT32, shape, Int32Array.from(v));
const f32 = (shape: number[], v: number[]) => new Tensor(DT_FLOAT, shape, Float32Array.from(v));
const str = (shape: number[], v: string[]) =>
  new Tensor(DT_STRING, shape, v.map((s) => enc.encode(s)));

Deno.test("Predict response text", async (t) => {
  await t.step("one output: predictions and outputs", () => {
    const x = i32([2, 3, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
    assert.equal(
      outputs({ int_tensor: x }, "row"),
      '{\n    "predictions": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]\n    ]\n}',
    );
    assert.equal(
      outputs({ int_tensor: x }, "columnar"),
      '{\n    "outputs": [\n        [\n            [\n                1,\n                2\n            ],\n' +
        "            [\n                3,\n                4\n            ],\n            [\n" +
        "                5,\n                6\n            ]\n        ],\n        [\n" +
        "            [\n                7,\n                8\n            ],\n            [\n" +
        "                9,\n                0\n            ],\n            [\n" +
        "                1,\n                2\n            ]\n        ]\n    ]\n}",
    );
    assert.equal(
      outputs({ y: f32([3], [3, 3.5, 4]) }, "row"),
      '{\n    "predictions": [3.0, 3.5, 4.0\n    ]\n}',
    );
    assert.equal(
      outputs({ y: f32([3], [3, 3.5, 4]) }, "columnar"),
      '{\n    "outputs": [\n        3.0,\n        3.5,\n        4.0\n    ]\n}',
    );
    assert.equal(outputs({ y: f32([], [2.5]) }, "columnar"), '{\n    "outputs": 2.5\n}');
  });
  await t.step("_bytes outputs are base64 objects", () => {
    assert.equal(
      outputs({ str_tensor_bytes: str([2, 2], ["hello", "world", "tf", "serving"]) }, "row"),
      '{\n    "predictions": [[{\n                "b64": "aGVsbG8="\n            }, {\n' +
        '                "b64": "d29ybGQ="\n            }], [{\n                "b64": "dGY="\n' +
        '            }, {\n                "b64": "c2VydmluZw=="\n            }]\n    ]\n}',
    );
  });
  await t.step("floats: six digits when enough, '.0' on whole numbers, NaN and Infinity", () => {
    assert.equal(
      outputs(
        { float_tensor: f32([2, 3], [9000000, 999999, 0.5, 0.0003, 0.00003, 555557.5]) },
        "row",
      ),
      '{\n    "predictions": [[9e+06, 999999.0, 0.5], [0.0003, 3e-05, 555557.5]\n    ]\n}',
    );
    assert.equal(
      outputs({ float_tensor: f32([2, 2], [NaN, Infinity, 3, -Infinity]) }, "row"),
      '{\n    "predictions": [[NaN, Infinity], [3.0, -Infinity]\n    ]\n}',
    );
  });
  await t.step("several outputs: objects per item, or an object of outputs", () => {
    const tensors = {
      int_tensor: i32([2, 3, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]),
      str_tensor: str([2, 2], ["foo", "bar", "baz", "bat"]),
      float_tensor: f32([2, 1], [1, 2]),
      double_scalar_tensor: new Tensor(DT_DOUBLE, [2], Float64Array.from([8, 9])),
    };
    assert.equal(
      outputs(tensors, "row"),
      '{\n    "predictions": [\n        {\n            "double_scalar_tensor": 8.0,\n' +
        '            "float_tensor": [1.0],\n            "int_tensor": [[1, 2], [3, 4], [5, 6]],\n' +
        '            "str_tensor": ["foo", "bar"]\n        },\n        {\n' +
        '            "double_scalar_tensor": 9.0,\n            "float_tensor": [2.0],\n' +
        '            "int_tensor": [[7, 8], [9, 0], [1, 2]],\n            "str_tensor": ["baz", "bat"]\n' +
        "        }\n    ]\n}",
    );
    const col = JSON.parse(outputs(tensors, "columnar"));
    assert.deepEqual(col, {
      outputs: {
        double_scalar_tensor: [8, 9],
        float_tensor: [[1], [2]],
        int_tensor: [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]],
        str_tensor: [["foo", "bar"], ["baz", "bat"]],
      },
    });
  });
  await t.step("int64, uint64 and bool values", () => {
    const r = outputs({
      a: new Tensor(DT_INT64, [2], BigInt64Array.from([9223372036854775807n, -1n])),
      b: new Tensor(DT_BOOL, [2], Uint8Array.from([1, 0])),
    }, "row");
    assert.equal(
      r,
      '{\n    "predictions": [\n        {\n            "a": 9223372036854775807,\n            "b": true\n' +
        '        },\n        {\n            "a": -1,\n            "b": false\n        }\n    ]\n}',
    );
  });
  await t.step("zero batch", () => {
    assert.equal(outputs({ x: i32([0, 2], []) }, "row"), '{\n    "predictions": []\n}');
    assert.equal(
      outputs({ s: str([0, 1, 2], []), f: f32([0, 3, 4], []) }, "row"),
      '{\n    "predictions": []\n}',
    );
  });
  await t.step("errors", () => {
    fails(
      () => makeJsonFromTensors({}, "row"),
      Code.INVALID_ARGUMENT,
      "Cannot convert empty tensor map to JSON",
    );
    fails(
      () =>
        outputs({ tensor: new Tensor(DT_COMPLEX64, [2], Float32Array.from([1, 2, 3, 4])) }, "row"),
      Code.INVALID_ARGUMENT,
      "Failed to write JSON value for tensor type: complex64",
    );
    fails(
      () => outputs({ tensor: i32([], [1]) }, "row"),
      Code.INVALID_ARGUMENT,
      "Tensor name: tensor has no shape information ",
    );
    fails(
      () =>
        outputs({
          int_tensor: i32([2, 3], [1, 2, 3, 4, 5, 6]),
          str_tensor: str([1, 3], ["a", "b", "c"]),
        }, "row"),
      Code.INVALID_ARGUMENT,
      "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 2",
    );
    fails(
      () => outputs({ int_tensor: i32([0, 2], []), str_tensor: str([1, 2], ["a", "b"]) }, "row"),
      Code.INVALID_ARGUMENT,
      "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 0",
    );
  });
});

/** A feature of an Example as plain data. */
function features(e: Example | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(e?.features?.feature ?? {})) {
    const kind = f.kind;
    if (kind.case === "bytesList") out[k] = { bytes: kind.value.value.map((b) => dec.decode(b)) };
    else if (kind.case === "floatList") out[k] = { float: kind.value.value };
    else if (kind.case === "int64List") out[k] = { int64: kind.value.value };
    else out[k] = {};
  }
  return out;
}

Deno.test("Classify and Regress requests", async (t) => {
  await t.step("examples without context", () => {
    for (const schema of [ClassificationRequestSchema, RegressionRequestSchema]) {
      const req = create(schema);
      const body = enc.encode(
        `{"examples": [{"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20}, {"names": ["baz"], "ratings": 6.0}]}`,
      );
      if (schema === ClassificationRequestSchema) {
        fillClassificationRequestFromJson(body, req as never);
      } else {
        fillRegressionRequestFromJson(body, req as never);
      }
      assert.equal(req.input?.kind.case, "exampleList");
      const examples = req.input!.kind.value!.examples;
      assert.deepEqual(features(examples[0]), {
        names: { bytes: ["foo", "bar"] },
        ratings: { float: [8, 9] },
        age: { int64: [20n] },
      });
      assert.deepEqual(features(examples[1]), {
        names: { bytes: ["baz"] },
        ratings: { float: [6] },
      });
    }
  });
  await t.step("context, signature, b64, NaN/Infinity, bools as int64", () => {
    const req = create(ClassificationRequestSchema);
    fillClassificationRequestFromJson(
      enc.encode(`{
        "signature_name": "custom_signture",
        "context": {"query": "pizza", "location": ["sfo"]},
        "examples": [
          {"names": ["foo", "bar"], "ratings": [8.0, 9.0, NaN, Infinity], "age": 20},
          {"names": ["baz", {"b64": "aGVsbG8="}], "ratings": 6.0, "intboolmix": [1, true, false]},
          {"names": "bar", "ratings": -Infinity, "empty": []}
        ]}`),
      req,
    );
    assert.equal(req.modelSpec?.signatureName, "custom_signture");
    assert.equal(req.input?.kind.case, "exampleListWithContext");
    const v = req.input!.kind.value as { context?: Example; examples: Example[] };
    assert.deepEqual(features(v.context), {
      query: { bytes: ["pizza"] },
      location: { bytes: ["sfo"] },
    });
    const e0 = features(v.examples[0]) as { ratings: { float: number[] } };
    assert.ok(Number.isNaN(e0.ratings.float[2]));
    assert.equal(e0.ratings.float[3], Infinity);
    assert.deepEqual(features(v.examples[1]), {
      names: { bytes: ["baz", "hello"] },
      ratings: { float: [6] },
      intboolmix: { int64: [1n, 1n, 0n] },
    });
    assert.deepEqual(features(v.examples[2]), {
      names: { bytes: ["bar"] },
      ratings: { float: [-Infinity] },
      empty: {},
    });
  });
  await t.step("errors", () => {
    const classify = (json: string) => () =>
      fillClassificationRequestFromJson(enc.encode(json), create(ClassificationRequestSchema));
    const bad = Code.INVALID_ARGUMENT;
    fails(
      classify(`{"signature_name": ["hello"], "examples": [{"names": ["foo", "bar"]}]}`),
      bad,
      /'signature_name' key must be a string value\.$/,
    );
    fails(
      classify(`{"context": [{"names": ["foo"]}]}`),
      bad,
      "Example must be JSON object but got JSON Array",
    );
    fails(
      classify(`{"examples": {"names": ["foo", "bar"]}}`),
      bad,
      `JSON Value: {\n    "examples": {\n        "names": ["foo", "bar"]\n    }\n} Expecting 'examples' value to be an list/array`,
    );
    fails(
      classify(`{"examples": [[{"names": ["foo"]}]]}`),
      bad,
      "Example must be JSON object but got JSON Array",
    );
    fails(
      classify(`{"examples": []}`),
      bad,
      `JSON Value: {\n    "examples": []\n} 'examples' value is an empty array`,
    );
    fails(
      classify(`{"context": {}}`),
      bad,
      `JSON Value: {\n    "context": {}\n} When method is classify, key 'examples' is expected and was not found`,
    );
    fails(
      classify(`{"examples": [{"names": [10, null]}]}`),
      bad,
      "Feature: names has element with unexpected JSON type: Null",
    );
    fails(
      classify(`{"examples": [{"names": [10, 10.0]}]}`),
      bad,
      "Unexpected element type in feature: names expecting type: int64",
    );
    fails(
      classify(`{"examples": [{"names": [10, {"test": 10}]}]}`),
      bad,
      "Feature: names has element with unexpected JSON type: Object",
    );
    fails(
      classify(`{"examples": [{"names": [[10], 20]}]}`),
      bad,
      "Feature: names has element with unexpected JSON type: Array",
    );
    fails(
      classify(`{"examples": [{"names": [20, 18446744073709551603]}]}`),
      bad,
      "Feature: names has uint64_t element. Only int64_t is supported.",
    );
    fails(
      classify(`{"examples": [{"names": ["a", 1.5]}]}`),
      bad,
      "Unexpected element type in feature: names expecting type: bytes",
    );
  });
});

Deno.test("Classify and Regress response text", () => {
  const result = create(ClassificationResultSchema, {
    classifications: [
      {
        classes: [{ label: "car", score: 0.2 }, { label: "bike", score: 0.7 }, {
          label: "bus",
          score: 0.1,
        }],
      },
      {
        classes: [{ label: "car", score: 0.7 }, { label: "bike", score: 0.1 }, {
          label: "bus",
          score: 0.2,
        }],
      },
    ],
  });
  assert.equal(
    makeJsonFromClassificationResult(result),
    '{\n    "results": [[["car", 0.2], ["bike", 0.7], ["bus", 0.1]], [["car", 0.7], ["bike", 0.1], ["bus", 0.2]]\n    ]\n}',
  );
  const reg = create(RegressionResultSchema, {
    regressions: [{ value: 0.2 }, { value: Infinity }, { value: 1 }, { value: -Infinity }, {
      value: NaN,
    }],
  });
  assert.equal(
    makeJsonFromRegressionResult(reg),
    '{\n    "results": [0.2, Infinity, 1.0, -Infinity, NaN]\n}',
  );
  fails(
    () => makeJsonFromClassificationResult(create(ClassificationResultSchema)),
    Code.INVALID_ARGUMENT,
    "Cannot convert empty ClassificationResults to JSON",
  );
  fails(
    () => makeJsonFromRegressionResult(create(RegressionResultSchema)),
    Code.INVALID_ARGUMENT,
    "Cannot convert empty RegressionResults to JSON",
  );
});

Deno.test("makeJsonFromStatus escapes as RapidJSON", () => {
  assert.equal(makeJsonFromStatus('Bad key: "key"'), '{\n    "error": "Bad key: \\"key\\""\n}');
  assert.equal(makeJsonFromStatus("Bad key: 'key'"), `{\n    "error": "Bad key: 'key'"\n}`);
  assert.equal(makeJsonFromStatus("a\nb\u001f/é"), '{\n    "error": "a\\nb\\u001F/é"\n}');
});

Deno.test("base64 as absl: padding optional, whitespace skipped, '.' pads", () => {
  const d = (s: string) => {
    const r = base64Unescape(enc.encode(s));
    return r === undefined ? undefined : dec.decode(r);
  };
  assert.equal(d("aGVsbG8="), "hello");
  assert.equal(d("aGVsbG8"), "hello");
  assert.equal(d("aGVs bG8=\n"), "hello");
  assert.equal(d("aGVsbG8."), "hello");
  assert.equal(d(""), "");
  assert.equal(d("aGVsbG8=="), undefined);
  assert.equal(d("a"), undefined);
  assert.equal(d("aGVs!"), undefined);
  assert.equal(d("aGk=aGk="), undefined);
  assert.equal(d("aGVsbG8=x"), undefined);
  for (const s of ["", "f", "fo", "foo", "foob", "fooba", "foobar"]) {
    assert.equal(base64Escape(enc.encode(s)), btoa(s));
  }
});

Deno.test("dataTypeString names types as TensorFlow", () => {
  assert.equal(dataTypeString(DT_FLOAT), "float");
  assert.equal(dataTypeString(DT_INT64), "int64");
  assert.equal(dataTypeString(DT_STRING), "string");
  assert.equal(dataTypeString(DataType.DT_INVALID), "INVALID");
  assert.equal(dataTypeString(DataType.DT_FLOAT_REF), "float_ref");
});
