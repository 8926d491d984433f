/**
 * The REST API end to end: a real server (startServer in-process, and main.ts in a child
 * process) on 127.0.0.1 with TF Serving's test models, called with fetch. Covers every endpoint,
 * both request formats, versions and labels, b64, the expected JSON of upstream's
 * tensorflow_model_server_test.py (testPredictREST, testPredictColumnarREST, testClassifyREST,
 * testRegressREST, testGetStatusREST, testGetModelMetadataREST), each error with its status and
 * body, CORS, the route hook, gzip bodies, the body limit and the timeout.
 */
import assert from "node:assert/strict";
import { parseFlags } from "../../src/config/flags.ts";
import { startServer } from "../../src/server.ts";
import type { ServingApi } from "../../src/model_server/serving_api.ts";
import { startRestServer } from "../../src/api/rest/server.ts";
import { encodeExample } from "../../src/tensor/example.ts";
import { freePort, ServerProcess } from "../server_process.ts";
import { testdata } from "../testdata.ts";

// Deno.serve and grpc-js keep sockets and timers across a test's steps.
const opts = { sanitizeOps: false, sanitizeResources: false };

const TWO_VERSIONS = "saved_model_half_plus_two_2_versions";

async function writeConfig(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rest_test_" });
  const path = `${dir}/models.config`;
  await Deno.writeTextFile(
    path,
    `model_config_list {
  config { name: "default" base_path: "${
      testdata("saved_model_half_plus_two_cpu")
    }" model_platform: "tensorflow" }
  config { name: "tf2" base_path: "${
      testdata("saved_model_half_plus_two_tf2_cpu")
    }" model_platform: "tensorflow" }
  config {
    name: "${TWO_VERSIONS}"
    base_path: "${testdata(TWO_VERSIONS)}"
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 123 }
    version_labels { key: "canary" value: 124 }
  }
}
`,
  );
  return path;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: BodyInit,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const r = await fetch(base + path, { method, body, headers });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

/** Python's `SortedObject` from tensorflow_model_server_test_base.py. */
function sortedObject(obj: unknown): unknown {
  if (Array.isArray(obj)) {
    return obj.map(sortedObject).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  }
  if (obj !== null && typeof obj === "object") {
    return Object.entries(obj).map(([k, v]) => [k, sortedObject(v)]).sort((a, b) =>
      (a[0] as string) < (b[0] as string) ? -1 : 1
    );
  }
  return obj;
}

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

async function expectError(r: Promise<Reply>, status: number, error: string): Promise<void> {
  const reply = await r;
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.headers.get("content-type"), "application/json");
  assert.deepEqual(reply.json, { error });
}

Deno.test("REST API on a real server", opts, async (t) => {
  const config = await writeConfig();
  const restPort = freePort();
  const lines: string[] = [];
  const server = await startServer(
    parseFlags([
      `--port=${freePort()}`,
      `--rest_api_port=${restPort}`,
      `--model_config_file=${config}`,
      "--allow_version_labels_for_unavailable_models=true",
      "--file_system_poll_wait_seconds=0",
    ]),
    {
      host: "127.0.0.1",
      log: (_level, message) => lines.push(message),
      routes: (_req, url) =>
        url.pathname === "/healthz" ? new Response("ok", { status: 200 }) : undefined,
    },
  );
  const base = `http://127.0.0.1:${restPort}`;
  const get = (path: string, headers?: Record<string, string>) =>
    call(base, "GET", path, undefined, headers);
  const post = (path: string, body: BodyInit, headers?: Record<string, string>) =>
    call(base, "POST", path, body, headers);
  try {
    await t.step("startServer logs upstream's line and exposes the port", () => {
      assert.equal(server.restPort, restPort);
      assert.ok(
        lines.includes(`Exporting HTTP/REST API at:localhost:${restPort} ...`),
        lines.join("\n"),
      );
    });

    await t.step("GET status (testGetStatusREST)", async () => {
      const r = await get("/v1/models/default");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/json");
      assert.deepEqual(r.json, {
        model_version_status: [{
          version: "123",
          state: "AVAILABLE",
          status: { error_code: "OK", error_message: "" },
        }],
      });
      // Printed as protobuf's JSON printer with whitespace does.
      assert.ok(
        r.text.startsWith('{\n "model_version_status": [\n  {\n   "version": "123",'),
        r.text,
      );
      const v = await get("/v1/models/default/versions/123");
      assert.deepEqual(v.json, r.json);
      // A label does not narrow the status (upstream's GetModelStatus ignores it).
      const all = await get(`/v1/models/${TWO_VERSIONS}/labels/stable`);
      assert.deepEqual(
        all.json.model_version_status.map((s: { version: string }) => s.version).sort(),
        [
          "123",
          "124",
        ],
      );
    });

    await t.step("GET metadata (testGetModelMetadataREST)", async () => {
      const expected = JSON.parse(
        await Deno.readTextFile(testdata(`${TWO_VERSIONS}_metadata.json`)),
      );
      for (
        const path of [
          `/v1/models/${TWO_VERSIONS}/versions/123/metadata`,
          `/v1/models/${TWO_VERSIONS}/labels/stable/metadata`,
        ]
      ) {
        const r = await get(path);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(sortedObject(r.json), sortedObject(expected));
        assert.ok(r.text.startsWith('{\n"model_spec":{\n "name": '), r.text);
        assert.ok(r.text.endsWith("}}\n}\n"));
      }
      const latest = await get(`/v1/models/${TWO_VERSIONS}/metadata`);
      assert.equal(latest.json.model_spec.version, "124");
      const tf2 = await get("/v1/models/tf2/metadata");
      assert.ok("serving_default" in tf2.json.metadata.signature_def.signature_def);
    });

    await t.step(
      "POST predict, row and columnar (testPredictREST, testPredictColumnarREST)",
      async () => {
        for (const model of ["default", "tf2"]) {
          const row = await post(`/v1/models/${model}:predict`, '{"instances": [2.0, 3.0, 4.0]}');
          assert.equal(row.status, 200, row.text);
          assert.deepEqual(row.json, { predictions: [3.0, 3.5, 4.0] });
          assert.equal(row.text, '{\n    "predictions": [3.0, 3.5, 4.0\n    ]\n}');
          const col = await post(`/v1/models/${model}:predict`, '{"inputs": [2.0, 3.0, 4.0]}');
          assert.equal(col.status, 200, col.text);
          assert.deepEqual(col.json, { outputs: [3.0, 3.5, 4.0] });
          assert.equal(
            col.text,
            '{\n    "outputs": [\n        3.0,\n        3.5,\n        4.0\n    ]\n}',
          );
        }
        const nested = await post(
          "/v1/models/default:predict",
          '{"instances": [[2.0], [NaN], [Infinity]]}',
        );
        assert.equal(nested.text, '{\n    "predictions": [[3.0], [NaN], [Infinity]\n    ]\n}');
        const named = await post(
          "/v1/models/default:predict",
          '{"signature_name": "serving_default", "instances": [{"x": [1.0]}, {"x": [5.0]}]}',
        );
        assert.deepEqual(named.json, { predictions: [[2.5], [4.5]] });
      },
    );

    await t.step("versions and labels", async () => {
      for (
        const path of ["/versions/123", "/versions/124", "/labels/stable", "/labels/canary", ""]
      ) {
        const r = await post(
          `/v1/models/${TWO_VERSIONS}${path}:predict`,
          '{"instances": [1.0, 2.0]}',
        );
        assert.equal(r.status, 200, `${path}: ${r.text}`);
        assert.deepEqual(r.json, { predictions: [2.5, 3.0] });
      }
      const r = await post(
        `/v1/models/${TWO_VERSIONS}/versions/00000123:regress`,
        '{"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]}',
      );
      assert.deepEqual(r.json, { results: [42.0] });
    });

    await t.step("POST classify and regress (testClassifyREST, testRegressREST)", async () => {
      for (const model of ["default", "tf2"]) {
        const c = await post(
          `/v1/models/${model}:classify`,
          '{"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}',
        );
        assert.equal(c.status, 200, c.text);
        assert.deepEqual(c.json, { results: [[["", 3.0]]] });
        const r = await post(
          `/v1/models/${model}:regress`,
          '{"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}',
        );
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { results: [3.0] });
      }
      const ctx = await post(
        "/v1/models/default:regress",
        '{"signature_name": "regress_x_to_y", "context": {"x": 10.0}, "examples": [{}, {"x": 20.0}]}',
      );
      assert.deepEqual(ctx.json, { results: [7.0, 12.0] });
    });

    await t.step("b64: a serialized tf.Example in instances of a string input", async () => {
      const example = b64(encodeExample({ x: { floatList: [2] } }));
      const r = await post(
        "/v1/models/default:predict",
        JSON.stringify({ signature_name: "classify_x_to_y", instances: [{ b64: example }] }),
      );
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { predictions: [[3.0]] });
      const col = await post(
        "/v1/models/tf2:predict",
        JSON.stringify({
          signature_name: "regress_x_to_y",
          inputs: [{ b64: example }, { b64: example }],
        }),
      );
      assert.equal(col.status, 200, col.text);
      assert.deepEqual(col.json, { outputs: [[3.0], [3.0]] });
    });

    await t.step("the request Content-Type is ignored, as upstream", async () => {
      for (
        const type of [
          "text/plain",
          "application/x-www-form-urlencoded",
          "application/octet-stream",
        ]
      ) {
        const r = await post("/v1/models/default:predict", '{"instances": [2.0]}', {
          "content-type": type,
        });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { predictions: [3.0] });
      }
    });

    await t.step("a gzip-encoded body is inflated", async () => {
      const gz = new Response(
        new Blob(['{"instances": [2.0, 4.0]}']).stream().pipeThrough(new CompressionStream("gzip")),
      );
      const body = new Uint8Array(await gz.arrayBuffer());
      const r = await post("/v1/models/default:predict", body, { "content-encoding": "gzip" });
      assert.deepEqual(r.json, { predictions: [3.0, 4.0] });
      // One that does not inflate reads as empty, as upstream.
      await expectError(
        post("/v1/models/default:predict", "not gzip", { "content-encoding": "gzip" }),
        400,
        "JSON Parse error: The document is empty",
      );
    });

    await t.step("errors: malformed body", async () => {
      await expectError(
        post("/v1/models/default:predict", '{"instances": [1.0, 5.0]'),
        400,
        "JSON Parse error: Missing a comma or '}' after an object member. at offset: 24",
      );
      await expectError(
        post("/v1/models/default:predict", ""),
        400,
        "JSON Parse error: The document is empty",
      );
      await expectError(
        post("/v1/models/default:predict", '{"instances": ["a"]}'),
        400,
        `Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "a" Type: String is not of expected type: float`,
      );
      await expectError(
        post("/v1/models/default:predict", '{"instances": [[1.0], [2.0, 3.0]]}'),
        400,
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2",
      );
      await expectError(
        post("/v1/models/default:classify", '{"signature_name": "classify_x_to_y"}'),
        400,
        `JSON Value: {\n    "signature_name": "classify_x_to_y"\n} When method is classify, key 'examples' is expected and was not found`,
      );
    });

    await t.step("errors: unknown model, version, label, signature", async () => {
      await expectError(
        post("/v1/models/half:predict", '{"instances": [1.0, 5.0]}'),
        404,
        "Servable not found for request: Latest(half)",
      );
      await expectError(
        post("/v1/models/default/versions/999:predict", '{"instances": [1.0]}'),
        404,
        "Servable not found for request: Specific(default, 999)",
      );
      await expectError(
        post("/v1/models/default/labels/nope:predict", '{"instances": [1.0]}'),
        400,
        "Unrecognized servable version label: nope",
      );
      await expectError(
        post("/v1/models/default:predict", '{"signature_name": "nope", "instances": [1.0]}'),
        400,
        'Serving signature name: "nope" not found in signature def',
      );
      await expectError(get("/v1/models/nope"), 404, "Could not find any versions of model nope");
      await expectError(
        get("/v1/models/default/versions/999"),
        404,
        "Could not find version 999 of model default",
      );
      await expectError(
        get("/v1/models/nope/metadata"),
        404,
        "Servable not found for request: Latest(nope)",
      );
      await expectError(get("/v1/models"), 400, "Missing model name in request.");
      await expectError(
        get("/v1/models/default/versions/99999999999999999999"),
        400,
        "Failed to convert version: 99999999999999999999 to numeric.",
      );
    });

    await t.step("errors: wrong method or path", async () => {
      await expectError(
        call(base, "PUT", "/v1/models/default:predict", "{}"),
        400,
        "Malformed request: PUT /v1/models/default:predict",
      );
      await expectError(
        call(base, "DELETE", "/v1/models/default"),
        400,
        "Malformed request: DELETE /v1/models/default",
      );
      await expectError(
        get("/v1/models/default:predict"),
        400,
        "Malformed request: GET /v1/models/default:predict",
      );
      await expectError(
        post("/v1/models/default", '{"instances": [1.0]}'),
        400,
        "Malformed request: POST /v1/models/default",
      );
      await expectError(
        post("/v1/models/default:PREDICT", '{"instances": [1.0]}'),
        400,
        "Malformed request: POST /v1/models/default:PREDICT",
      );
      await expectError(get("/v1/foo"), 400, "Malformed request: GET /v1/foo");
      await expectError(get("/foo/bar"), 404, "Not Found: GET /foo/bar");
    });

    await t.step("paths are matched case-insensitively and names are percent-decoded", async () => {
      const r = await post("/V1/Models/%64efault:predict", '{"instances": [2.0]}');
      assert.deepEqual(r.json, { predictions: [3.0] });
      // `/METADATA` is not the metadata subresource (upstream compares it exactly): status.
      const s = await get("/v1/models/default/METADATA");
      assert.ok("model_version_status" in s.json, s.text);
    });

    await t.step("the route hook answers first", async () => {
      const r = await get("/healthz");
      assert.equal(r.status, 200);
      assert.equal(r.text, "ok");
    });

    await t.step("no CORS headers unless enabled; a preflight without Origin fails", async () => {
      const r = await get("/v1/models/default");
      assert.equal(r.headers.get("access-control-allow-origin"), null);
      await expectError(
        call(base, "OPTIONS", "/v1/models/default:predict"),
        400,
        "Origin header is missing in CORS preflight",
      );
    });

    await t.step("the server keeps answering after errors", async () => {
      const replies = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) =>
            i % 2
              ? post("/v1/models/default:predict", '{"instances": [2.0]}')
              : post("/v1/models/default:predict", "{bad json"),
        ),
      );
      for (const [i, r] of replies.entries()) assert.equal(r.status, i % 2 ? 200 : 400);
      const r = await post("/v1/models/default:predict", '{"instances": [4.0]}');
      assert.deepEqual(r.json, { predictions: [4.0] });
    });

    await t.step("body limit, CORS and the timeout on a second REST server", async () => {
      const api: ServingApi = server.service;
      const slow: ServingApi = {
        predict: (req, via) => {
          const until = performance.now() + 30;
          while (performance.now() < until) { /* a slow model */ }
          return api.predict(req, via);
        },
        classify: (req, via) => api.classify(req, via),
        regress: (req, via) => api.regress(req, via),
        multiInference: (req, via) => api.multiInference(req, via),
        getModelMetadata: (req, via) => api.getModelMetadata(req, via),
        getModelStatus: (req, via) => api.getModelStatus(req, via),
        handleReloadConfigRequest: (req, via) => api.handleReloadConfigRequest(req, via),
        health: (s) => api.health(s),
      };
      await using rest = await startRestServer(slow, {
        host: "127.0.0.1",
        port: 0,
        timeoutMs: 10,
        enableCors: true,
        maxBodyBytes: 1024,
      });
      const base2 = `http://127.0.0.1:${rest.port}`;
      const cors = (r: Reply) => {
        assert.equal(r.headers.get("access-control-allow-origin"), "*");
        assert.equal(r.headers.get("access-control-allow-methods"), "POST, GET");
        assert.equal(r.headers.get("access-control-allow-headers"), "Content-Type");
      };
      const big = JSON.stringify({ instances: Array.from({ length: 300 }, () => 1.5) });
      const tooBig = await call(base2, "POST", "/v1/models/default:predict", big);
      assert.equal(tooBig.status, 413);
      assert.deepEqual(tooBig.json, {
        error: "Request body is larger than the limit of 1024 bytes",
      });
      cors(tooBig);
      // Without a Content-Length (chunked), the limit applies while reading.
      const chunked = await call(
        base2,
        "POST",
        "/v1/models/default:predict",
        new Blob([big]).stream(),
      );
      assert.equal(chunked.status, 413);
      // Inference slower than --rest_api_timeout_in_ms: DEADLINE_EXCEEDED.
      const late = await call(base2, "POST", "/v1/models/default:predict", '{"instances": [1.0]}');
      assert.equal(late.status, 504);
      assert.deepEqual(late.json, { error: "Timed out waiting for notification" });
      cors(late);
      const status = await call(base2, "GET", "/v1/models/default");
      assert.equal(status.status, 200);
      cors(status);
      const preflight = await call(base2, "OPTIONS", "/v1/models/default:predict", undefined, {
        origin: "https://example.com",
      });
      assert.equal(preflight.status, 200);
      assert.equal(preflight.text, "");
      cors(preflight);
    });
  } finally {
    await server.close();
  }
  assert.ok(lines.includes("Server shut down"));
});

Deno.test("main.ts serves REST with --rest_api_port", opts, async () => {
  const restPort = freePort();
  await using server = await ServerProcess.start([
    `--rest_api_port=${restPort}`,
    "--model_name=default",
    `--model_base_path=${testdata("saved_model_half_plus_two_cpu")}`,
  ]);
  await server.waitFor(new RegExp(`Exporting HTTP/REST API at:localhost:${restPort} \\.\\.\\.`));
  const base = `http://127.0.0.1:${restPort}`;
  const status = await call(base, "GET", "/v1/models/default");
  assert.deepEqual(status.json, {
    model_version_status: [{
      version: "123",
      state: "AVAILABLE",
      status: { error_code: "OK", error_message: "" },
    }],
  });
  const predict = await call(
    base,
    "POST",
    "/v1/models/default:predict",
    '{"instances": [2.0, 3.0, 4.0]}',
  );
  assert.deepEqual(predict.json, { predictions: [3.0, 3.5, 4.0] });
  const code = await server.kill("SIGTERM");
  assert.equal(code.code, 0, server.log());
});

Deno.test("startServer skips REST on the gRPC port, as upstream", opts, async () => {
  const port = freePort();
  const lines: string[] = [];
  const server = await startServer(
    parseFlags([
      `--port=${port}`,
      `--rest_api_port=${port}`,
      "--model_name=default",
      `--model_base_path=${testdata("saved_model_half_plus_two_cpu")}`,
    ]),
    { host: "127.0.0.1", log: (_l, m) => lines.push(m) },
  );
  try {
    assert.equal(server.restPort, 0);
    assert.ok(
      lines.includes(
        "server_options.http_port cannot be same as grpc_port. Please use a different port for HTTP/REST API. Skipped exporting HTTP/REST API.",
      ),
    );
  } finally {
    await server.close();
  }
});
