/**
 * The REST Predict hot path (JSON straight into tensors, `ServingApi.predictTensors`, outputs
 * written from the tensors) answers exactly what the message path (JSON → PredictRequest →
 * `predict` → PredictResponse → JSON) answers: the same status, headers and body bytes, for
 * valid calls in the row and columnar formats, several inputs and outputs, b64 and raw strings,
 * and every kind of error with TF Serving's words.
 */
import assert from "node:assert/strict";
import { parseFlags } from "../../../src/config/flags.ts";
import { startServer } from "../../../src/server.ts";
import type { ServingApi } from "../../../src/model_server/serving_api.ts";
import { RestApiHandler, type RestReply } from "../../../src/api/rest/handler.ts";
import { GraphBuilder, signatureDef, tensorInfo } from "../../../src/graph/builder.ts";
import { writeSavedModel } from "../../../src/saved_model/writer.ts";
import { DataType } from "../../../src/tensor/dtype.ts";
import { attrValue } from "../../../src/graph/builder.ts";
import { freePort } from "../../server_process.ts";
import { testdata } from "../../testdata.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();

/** A model of identities: float `a` [-1,2], int32 `b` [-1], string `img` [-1]. */
async function writeMultiModel(exportDir: string): Promise<void> {
  const g = new GraphBuilder();
  const id = (name: string, input: string, t: DataType) =>
    g.op(name, "Identity", [input], { T: attrValue.type(t) });
  g.placeholder("a", DataType.DT_FLOAT, [-1, 2]);
  g.placeholder("b", DataType.DT_INT32, [-1]);
  g.placeholder("img", DataType.DT_STRING, [-1]);
  const a = id("a_id", "a:0", DataType.DT_FLOAT);
  const b = id("b_id", "b:0", DataType.DT_INT32);
  const s = id("s_id", "img:0", DataType.DT_STRING);
  const s2 = id("s_id2", "img:0", DataType.DT_STRING);
  await writeSavedModel(exportDir, {
    nodes: g.nodes,
    signatures: {
      serving_default: signatureDef(
        {
          a: tensorInfo("a:0", DataType.DT_FLOAT, [-1, 2]),
          b: tensorInfo("b:0", DataType.DT_INT32, [-1]),
          img_bytes: tensorInfo("img:0", DataType.DT_STRING, [-1]),
        },
        {
          a_out: tensorInfo(a, DataType.DT_FLOAT, [-1, 2]),
          b_out: tensorInfo(b, DataType.DT_INT32, [-1]),
          img_bytes: tensorInfo(s, DataType.DT_STRING, [-1]),
          text: tensorInfo(s2, DataType.DT_STRING, [-1]),
        },
        "tensorflow/serving/predict",
      ),
      just_a: signatureDef(
        { a: tensorInfo("a:0", DataType.DT_FLOAT, [-1, 2]) },
        { a_out: tensorInfo(a, DataType.DT_FLOAT, [-1, 2]) },
        "tensorflow/serving/predict",
      ),
    },
  });
}

/** The same ServingApi without the tensor methods: the REST handler takes the message path. */
function messagePathOnly(s: ServingApi): ServingApi {
  return {
    predict: s.predict.bind(s),
    classify: s.classify.bind(s),
    regress: s.regress.bind(s),
    multiInference: s.multiInference.bind(s),
    getModelMetadata: s.getModelMetadata.bind(s),
    getModelStatus: s.getModelStatus.bind(s),
    handleReloadConfigRequest: s.handleReloadConfigRequest.bind(s),
    health: s.health.bind(s),
  };
}

function bytesOf(reply: RestReply): Uint8Array {
  const b = reply.body;
  return b === null ? new Uint8Array(0) : typeof b === "string" ? enc.encode(b) : b;
}

const HPT = "/v1/models/hpt:predict";
const MULTI = "/v1/models/multi:predict";
const range = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));

const CASES: [string, string][] = [
  [HPT, '{"instances": [2.0]}'],
  [HPT, `{"instances": [${range(64, (i) => `${i}.5`)}]}`],
  [HPT, `{"instances": [${range(64, (i) => `[${i}]`)}]}`],
  [HPT, '{"inputs": [1e300, -0.0, 3.4028235e38, 1e-45]}'],
  [HPT, '{"signature_name": "serving_default", "inputs": {"x": [[1], [NaN], [-Infinity]]}}'],
  [HPT, '{"inputs": {"x": 3}}'],
  [HPT, '{"inputs": []}'],
  [HPT, '{"signature_name": "classify_x_to_y", "instances": [1]}'],
  [HPT, '{"signature_name": "regress_x_to_y2", "inputs": [[1, 2]]}'],
  [HPT, '{"instances": [1, 2'],
  [HPT, ""],
  [HPT, "[1, 2]"],
  [HPT, '{"signature_name": 5, "instances": [1]}'],
  [HPT, '{"signature_name": "nope", "instances": [1]}'],
  [HPT, '{"instances": [1], "inputs": [1]}'],
  [HPT, '{"instances": 1}'],
  [HPT, '{"instances": []}'],
  [HPT, '{"instances": [1, "a"]}'],
  [HPT, '{"instances": [[1, 2], [3]]}'],
  [HPT, '{"inputs": {"y": [1]}}'],
  [HPT, '{"instances": [{"b64": "AAAA"}]}'],
  [HPT, '{"instances": [{"x": 1}, {"x": 2}]}'],
  [HPT, '{"instances": [{"x": 1}, {"y": 2}]}'],
  [HPT, '{"something": 1}'],
  ["/v1/models/hpt/versions/123:predict", '{"instances": [1]}'],
  ["/v1/models/hpt/versions/7:predict", '{"instances": [1]}'],
  ["/v1/models/hpt/labels/l:predict", '{"instances": [1]}'],
  ["/v1/models/nope:predict", '{"instances": [1]}'],
  ["/v1/models/nope:predict", '{"instances": [1, 2'],
  ["/v1/models/nope:predict", '{"signature_name": 5, "instances": [1]}'],
  [
    MULTI,
    '{"instances": [{"a": [1, 2], "b": 3, "img_bytes": {"b64": "aGVsbG8="}}, ' +
    '{"a": [3.5, -4], "b": -7, "img_bytes": {"b64": "/w=="}}]}',
  ],
  [
    MULTI,
    '{"inputs": {"a": [[1, 2]], "b": [2147483647], "img_bytes": ["caf\\u00e9 \\"q\\" \\n"]}}',
  ],
  [MULTI, '{"inputs": {"a": [[1, 2], [3, 4]], "b": [1, 2], "img_bytes": ["x", "y"]}}'],
  [MULTI, '{"inputs": {"a": [[1, 2]], "b": [1, 2], "img_bytes": [{"b64": "//79"}]}}'],
  [MULTI, '{"signature_name": "just_a", "instances": [[1, 2], [3, 4]]}'],
  [MULTI, '{"signature_name": "just_a", "inputs": [[[1, 2]]]}'],
  [MULTI, '{"instances": [{"a": [1, 2], "b": 1.5, "img_bytes": "x"}]}'],
  [MULTI, '{"instances": [{"a": [1, 2], "b": 1}]}'],
  [MULTI, '{"instances": [{"a": [1, 2], "b": 1, "img_bytes": "x", "c": 1}]}'],
  [MULTI, '{"instances": [[1, 2]]}'],
  [MULTI, '{"inputs": {"a": [[1, 2]], "b": [1]}}'],
  [MULTI, '{"inputs": {"a": [[1, 2]], "b": [1], "img_bytes": [{"b64": "!!"}]}}'],
  [MULTI, '{"inputs": {"a": [[1, 2]], "b": [1], "img_bytes": [{"b64": 1}]}}'],
  [MULTI, '{"inputs": {"a": [[1, 2]], "b": [1], "img_bytes": [5]}}'],
  [MULTI, '{"inputs": {"a": [1, 2], "b": [1], "img_bytes": ["x"]}}'],
  [
    MULTI,
    '{"instances": [{"a": [1, 2], "b": 1, "img_bytes": "x"}, {"a": [1], "b": 1, "img_bytes": "y"}]}',
  ],
];

/** Seeded bodies: `{"instances": …}` of 1 or 64 rows or `{"inputs": …}`, literals of all kinds. */
function generatedBodies(count: number): string[] {
  let seed = 12345;
  const next = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
    return (seed >>> 0) / 4294967296;
  };
  const literals = [
    () => String(Math.floor((next() - 0.5) * 2000)),
    () => ((next() - 0.5) * 100).toFixed(Math.floor(next() * 9)),
    () => "-0.0",
    () => "-0",
    () => `${Math.floor(next() * 100)}e${Math.floor(next() * 80 - 40)}`,
    () => "NaN",
    () => "-Infinity",
    () => "1.00000000000000000001",
    () => `0.${"0".repeat(40)}17`,
    () => String(Math.fround(next() * 1e-40)),
  ];
  const lit = () => literals[next() < 0.7 ? Math.floor(next() * 2) : Math.floor(next() * 10)]();
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const rows = next() < 0.5 ? 64 : 1;
    const inner = next() < 0.5;
    const items = Array.from({ length: rows }, () => inner ? `[${lit()}]` : lit());
    if (next() < 0.05 && rows > 1) items[1] = "[]"; // ragged: an error either way
    bodies.push(
      next() < 0.7 ? `{"instances":[${items.join(",")}]}` : `{ "inputs" : [${items.join(", ")}] }`,
    );
  }
  return bodies;
}

Deno.test(
  "REST Predict: the tensor path answers the message path's bytes, statuses and messages",
  opts,
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      await writeMultiModel(`${dir}/multi/1`);
      const config = `${dir}/models.config`;
      await Deno.writeTextFile(
        config,
        `model_config_list {
  config { name: "hpt" base_path: "${
          testdata("saved_model_half_plus_two_cpu")
        }" model_platform: "tensorflow" }
  config { name: "multi" base_path: "${dir}/multi" model_platform: "tensorflow" }
}`,
      );
      await using server = await startServer(
        parseFlags([
          `--port=${freePort()}`,
          `--model_config_file=${config}`,
          "--file_system_poll_wait_seconds=0",
        ]),
        { host: "127.0.0.1", log: () => {} },
      );
      const tensors = new RestApiHandler(server.service);
      const messages = new RestApiHandler(messagePathOnly(server.service));
      try {
        let direct = 0;
        for (const [path, body] of CASES) {
          const a = await tensors.handle("POST", path, enc.encode(body));
          const b = await messages.handle("POST", path, enc.encode(body));
          const what = `${path} ${body.slice(0, 120)}`;
          assert.equal(a.status, b.status, what);
          assert.deepEqual(a.headers, b.headers, what);
          assert.deepEqual(bytesOf(a), bytesOf(b), what);
          if (a.status === 200) direct++;
        }
        // Enough of the cases succeed for the comparison to mean something.
        assert.ok(direct >= 12, `${direct} calls succeeded`);
        // Bodies of the form the fast scan reads (and near misses), 1 and 64 rows and columnar,
        // with every kind of literal: the same answers both ways.
        for (const body of generatedBodies(300)) {
          const a = await tensors.handle("POST", HPT, enc.encode(body));
          const b = await messages.handle("POST", HPT, enc.encode(body));
          assert.equal(a.status, b.status, body);
          assert.deepEqual(bytesOf(a), bytesOf(b), body);
        }
        // Spot checks against known answers.
        const one = await tensors.handle("POST", HPT, enc.encode('{"instances": [2.0]}'));
        assert.deepEqual(JSON.parse(new TextDecoder().decode(bytesOf(one))), {
          predictions: [3],
        });
        const multi = await tensors.handle("POST", MULTI, enc.encode(CASES[30][1]));
        const json = JSON.parse(new TextDecoder().decode(bytesOf(multi)));
        assert.deepEqual(json.predictions[0], {
          a_out: [1, 2],
          b_out: 3,
          img_bytes: { b64: "aGVsbG8=" },
          text: "hello",
        });
      } finally {
        tensors.close();
        messages.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
