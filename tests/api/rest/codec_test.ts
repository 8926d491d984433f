/**
 * Big REST bodies off the event loop (src/api/rest/codec.ts): a Predict decoded or encoded on a
 * JSON codec worker answers the same bytes, statuses and messages as the inline path, and while
 * a 60 MB body is being decoded, /healthz and a small Predict on other connections are
 * answered first (ordering, not timing).
 */
import assert from "node:assert/strict";
import { parseFlags } from "../../../src/config/flags.ts";
import { startServer } from "../../../src/server.ts";
import type { ServingApi } from "../../../src/model_server/serving_api.ts";
import { RestApiHandler, type RestReply } from "../../../src/api/rest/handler.ts";
import { startRestServer } from "../../../src/api/rest/server.ts";
import { JsonCodec } from "../../../src/api/rest/codec.ts";
import { makeJsonFromTensors } from "../../../src/api/rest/json_tensor.ts";
import { create } from "@bufbuild/protobuf";
import {
  type TensorProto,
  TensorProtoSchema,
} from "../../../src/proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { DataType } from "../../../src/tensor/dtype.ts";
import type { ServingError } from "../../../src/errors.ts";
import { freePort } from "../../server_process.ts";
import { testdata } from "../../testdata.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();

async function modelServer() {
  return await startServer(
    parseFlags([
      `--port=${freePort()}`,
      "--model_name=half_plus_two",
      `--model_base_path=${testdata("saved_model_half_plus_two_cpu")}`,
      "--file_system_poll_wait_seconds=0",
    ]),
    { host: "127.0.0.1", log: () => {} },
  );
}

function bytesOf(reply: RestReply): Uint8Array {
  const b = reply.body;
  return b === null ? new Uint8Array(0) : typeof b === "string" ? enc.encode(b) : b;
}

const PREDICT = "/v1/models/half_plus_two:predict";
const many = (n: number, v: string) => Array.from({ length: n }, () => v).join(",");

/** Predict calls: valid ones in both formats and one failure at each step of the decoding. */
const CASES: [string, string][] = [
  [PREDICT, '{"instances": [1.0, 2.0, 5.0]}'],
  [PREDICT, `{"instances": [${many(100_000, "1.5")}]}`],
  [PREDICT, `{"instances": [${many(70_000, "[0.25]")}]}`],
  [PREDICT, '{"signature_name": "serving_default", "inputs": {"x": [[1], [NaN], [-Infinity]]}}'],
  [PREDICT, '{"inputs": [1e300, -0.0, 3.4028235e38]}'],
  [PREDICT, '{"instances": [1, 2'],
  [PREDICT, ""],
  [PREDICT, "[1, 2]"],
  [PREDICT, '{"signature_name": 5, "instances": [1]}'],
  [PREDICT, '{"signature_name": "nope", "instances": [1]}'],
  [PREDICT, '{"instances": [1], "inputs": [1]}'],
  [PREDICT, '{"instances": 1}'],
  [PREDICT, '{"instances": []}'],
  [PREDICT, '{"instances": [1, "a"]}'],
  [PREDICT, '{"instances": [[1, 2], [3]]}'],
  [PREDICT, '{"inputs": {"y": [1]}}'],
  [PREDICT, '{"instances": [{"b64": "AAAA"}]}'],
  [PREDICT, '{"something": 1}'],
  ["/v1/models/nope:predict", '{"instances": [1]}'],
  // A failed model lookup comes after the body's own syntax and signature_name errors.
  ["/v1/models/nope:predict", '{"instances": [1, 2'],
  ["/v1/models/nope:predict", '{"signature_name": 5, "instances": [1]}'],
  ["/v1/models/nope:predict", '{"signature_name": "x", "instances": "y"}'],
  ["/v1/models/half_plus_two/versions/7:predict", '{"instances": [1]}'],
  ["/v1/models/half_plus_two/labels/l:predict", '{"instances": [1]}'],
];

Deno.test(
  "a Predict decoded and encoded on a codec worker answers the inline bytes",
  opts,
  async () => {
    await using server = await modelServer();
    const inline = new RestApiHandler(server.service);
    const offload = new RestApiHandler(server.service, {
      workerBodyBytes: -1,
      workerOutputElements: -1,
    });
    try {
      for (const [path, text] of CASES) {
        const a = await inline.handle("POST", path, enc.encode(text));
        const body = enc.encode(text);
        const b = await offload.handle("POST", path, body);
        const what = `${path} ${text.slice(0, 80)}`;
        assert.equal(b.status, a.status, what);
        assert.deepEqual(b.headers, a.headers, what);
        assert.deepEqual(bytesOf(b), bytesOf(a), what);
        // The body went to a worker (transferred, not copied), and a success came back as the
        // worker's bytes.
        if (text.length > 0) assert.equal(body.byteLength, 0, what);
        if (b.status === 200) assert.ok(b.body instanceof Uint8Array, what);
      }
      // A body that is a view into a larger buffer is copied, not taken.
      const whole = enc.encode(` ${CASES[0][1]} `);
      const view = whole.subarray(1, whole.length - 1);
      const r = await offload.handle("POST", PREDICT, view);
      assert.equal(r.status, 200);
      assert.equal(view.byteLength, whole.length - 2);
    } finally {
      offload.close();
      inline.close();
    }
  },
);

Deno.test("after close, an offloaded call is refused with 503", opts, async () => {
  await using server = await modelServer();
  const handler = new RestApiHandler(server.service, { workerBodyBytes: -1 });
  handler.close();
  const r = await handler.handle("POST", PREDICT, enc.encode('{"instances": [1]}'));
  assert.equal(r.status, 503);
});

Deno.test(
  "while a 60 MB body is decoded, /healthz and a small Predict are answered first",
  opts,
  async () => {
    await using server = await modelServer();
    const api: ServingApi = server.service;
    // Resolved when the handler looks up the big call's signatures: the body has been read
    // whole and its decoding is about to start.
    let decoding!: () => void;
    const started = new Promise<void>((resolve) => (decoding = resolve));
    let bigSeen = false;
    const watched: ServingApi = {
      predict: (req, via, ctx) => api.predict(req, via, ctx),
      classify: (req, via, ctx) => api.classify(req, via, ctx),
      regress: (req, via, ctx) => api.regress(req, via, ctx),
      multiInference: (req, via) => api.multiInference(req, via),
      getModelStatus: (req, via) => api.getModelStatus(req, via),
      handleReloadConfigRequest: (req, via) => api.handleReloadConfigRequest(req, via),
      health: (s) => api.health(s),
      getModelMetadata: (req, via) => {
        if (!bigSeen) {
          bigSeen = true;
          decoding();
        }
        return api.getModelMetadata(req, via);
      },
    };
    await using rest = await startRestServer(watched, {
      host: "127.0.0.1",
      port: 0,
      timeoutMs: 0,
      enableCors: false,
      routes: (_req, url) => url.pathname === "/healthz" ? new Response("ok") : undefined,
    });
    const base = `http://127.0.0.1:${rest.port}`;
    // 30M one-digit ints and a string last: decoded whole, then a 400 (no inference to wait on).
    const n = 30_000_000;
    const big = new Uint8Array(16 + 2 * n + 4);
    big.set(enc.encode('{"instances": ['));
    for (let i = 0; i < n; i++) {
      big[15 + 2 * i] = 0x31;
      big[16 + 2 * i] = 0x2c;
    }
    big.set(enc.encode('"a"]}'), 15 + 2 * n);
    const order: string[] = [];
    const bigCall = fetch(`${base}${PREDICT}`, { method: "POST", body: big }).then(async (r) => {
      const json = await r.json();
      order.push("big");
      return { status: r.status, json };
    });
    await started;
    const health = fetch(`${base}/healthz`).then(async (r) => {
      assert.equal(await r.text(), "ok");
      order.push("healthz");
    });
    const small = fetch(`${base}${PREDICT}`, {
      method: "POST",
      body: '{"instances": [1, 2]}',
    }).then(async (r) => {
      assert.deepEqual(await r.json(), { predictions: [2.5, 3] });
      order.push("predict");
    });
    const [b] = await Promise.all([bigCall, health, small]);
    assert.equal(b.status, 400);
    assert.equal(
      b.json.error,
      `Failed to process element: ${n} of 'instances' list. Error: INVALID_ARGUMENT: JSON ` +
        `Value: "a" Type: String is not of expected type: float`,
    );
    assert.equal(order[2], "big", order.join(","));
  },
);

Deno.test("JsonCodec.encodePredict writes every value field as makeJsonFromTensors", async () => {
  const codec = new JsonCodec();
  try {
    const shape = (...d: number[]) => ({ dim: d.map((size) => ({ size: BigInt(size) })) });
    const p = (init: Record<string, unknown>) => create(TensorProtoSchema, init as never);
    const outputs: Record<string, TensorProto>[] = [
      {
        f: p({
          dtype: DataType.DT_FLOAT,
          tensorShape: shape(2, 2),
          floatVal: [0.1, -2, NaN, 1e30],
        }),
        d: p({ dtype: DataType.DT_DOUBLE, tensorShape: shape(2), doubleVal: [0.1, -Infinity] }),
        i: p({ dtype: DataType.DT_INT32, tensorShape: shape(2, 1), intVal: [-7, 2147483647] }),
        l: p({ dtype: DataType.DT_INT64, tensorShape: shape(2), int64Val: [-(2n ** 63n), 5n] }),
        u: p({ dtype: DataType.DT_UINT64, tensorShape: shape(2), uint64Val: [2n ** 64n - 1n, 0n] }),
        w: p({ dtype: DataType.DT_UINT32, tensorShape: shape(2), uint32Val: [4294967295, 1] }),
        b: p({ dtype: DataType.DT_BOOL, tensorShape: shape(2), boolVal: [true, false] }),
        s_bytes: p({
          dtype: DataType.DT_STRING,
          tensorShape: shape(2),
          stringVal: [enc.encode("a"), new Uint8Array([0xff])],
        }),
      },
      // One value filling three elements, and a batch-size mismatch (an error in row format).
      { f: p({ dtype: DataType.DT_FLOAT, tensorShape: shape(3), floatVal: [1.5] }) },
      {
        a: p({ dtype: DataType.DT_FLOAT, tensorShape: shape(2), floatVal: [1, 2] }),
        b: p({ dtype: DataType.DT_FLOAT, tensorShape: shape(3), floatVal: [1, 2, 3] }),
      },
      { h: p({ dtype: DataType.DT_HALF, tensorShape: shape(1), halfVal: [15360] }) },
    ];
    for (const out of outputs) {
      for (const format of ["row", "columnar"] as const) {
        const what = `${Object.keys(out).join(",")} ${format}`;
        let expected: Uint8Array | string;
        try {
          const t = makeJsonFromTensors(out, format);
          expected = typeof t === "string" ? enc.encode(t) : t;
        } catch (e) {
          expected = `${(e as ServingError).code}: ${(e as Error).message}`;
        }
        let got: Uint8Array | string;
        try {
          got = await codec.encodePredict(out, format)!;
        } catch (e) {
          got = `${(e as ServingError).code}: ${(e as Error).message}`;
        }
        assert.deepEqual(got, expected, what);
      }
    }
    // The response given was not changed.
    assert.deepEqual(outputs[0].f.floatVal.length, 4);
    assert.equal(outputs[0].f.tensorContent.length, 0);
  } finally {
    codec.close();
  }
});

Deno.test("an idle JsonCodec worker ends (its heap with it); the next job starts one", async () => {
  const codec = new JsonCodec(1);
  try {
    const out = {
      f: create(TensorProtoSchema, {
        dtype: DataType.DT_FLOAT,
        tensorShape: { dim: [{ size: 1n }] },
        floatVal: [1],
      }),
    };
    const decoded = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.equal(
      decoded(await codec.encodePredict(out, "row")!),
      '{\n    "predictions": [1.0\n    ]\n}',
    );
    assert.equal(codec.workers, 1);
    for (let i = 0; i < 60 && codec.workers > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(codec.workers, 0, "still running after 6 s idle");
    assert.ok((await codec.encodePredict(out, "row")!).byteLength > 0);
    assert.equal(codec.workers, 1);
  } finally {
    codec.close();
  }
});
