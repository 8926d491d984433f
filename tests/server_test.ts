/**
 * End-to-end tests of the model server: the real program (`main.ts`) in a child process on a
 * free port of 127.0.0.1, called with a real gRPC client built from the project's protos.
 * Expected values are those of upstream's tensorflow_model_server_test.py.
 */
import assert from "node:assert/strict";
import { create, type JsonObject, toBinary, toJson } from "@bufbuild/protobuf";
import { GetModelMetadataResponseSchema } from "../src/proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import { ModelVersionStatus_State } from "../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import { PredictionLogSchema } from "../src/proto/gen/tensorflow_serving/apis/prediction_log_pb.ts";
import { PredictRequestSchema } from "../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { protoRegistry } from "../src/proto/mod.ts";
import { Code, ServingError } from "../src/errors.ts";
import {
  HealthClient,
  ModelServiceClient,
  PredictionServiceClient,
} from "../src/client/grpc_client.ts";
import { DataType } from "../src/tensor/dtype.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { tensorToProto } from "../src/tensor/tensor_proto.ts";
import { writeTFRecords } from "../src/saved_model/tfrecord.ts";
import { copyDir, TESTDATA, testdata } from "./testdata.ts";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { ServerProcess } from "./server_process.ts";

const TF1 = testdata("saved_model_half_plus_two_cpu");
const TF2 = testdata("saved_model_half_plus_two_tf2_cpu");
const TWO = testdata("saved_model_half_plus_two_2_versions");
const MATRIX = testdata("matrix_half_plus_two");

const opts = { sanitizeOps: false, sanitizeResources: false };

function x(values: number[], shape = [values.length]) {
  return tensorToProto(Tensor.float32(values, shape));
}

function predictRequest(model: string, extra: Record<string, unknown> = {}) {
  return create(PredictRequestSchema, {
    modelSpec: { name: model, signatureName: "serving_default" },
    inputs: { x: x([2]) },
    outputFilter: ["y"],
    ...extra,
  });
}

function example(features: Record<string, number[]>) {
  return {
    features: {
      feature: Object.fromEntries(
        Object.entries(features).map(([k, v]) => [k, {
          kind: { case: "floatList" as const, value: { value: v } },
        }]),
      ),
    },
  };
}

async function expectError(p: Promise<unknown>, code: Code, text?: RegExp | string) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    if (typeof text === "string") assert.equal(e.message, text);
    else if (text) assert.match(e.message, text);
    return;
  }
  assert.fail(`expected ${Code[code]}`);
}

function versionOf(spec: { versionChoice: { case?: string; value?: unknown } } | undefined) {
  const c = spec?.versionChoice;
  return c?.case === "version" ? Number((c.value as { value: bigint }).value) : undefined;
}

/** Sends raw bytes to a method, as a client with a broken serializer would. */
function sendRaw(target: string, path: string, bytes: Uint8Array): Promise<grpc.ServiceError> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
    "grpc.enable_http_proxy": 0,
  });
  return new Promise<grpc.ServiceError>((resolve, reject) => {
    client.makeUnaryRequest(path, () => Buffer.from(bytes), (b: Buffer) => b, null, (err, res) => {
      client.close();
      if (err) resolve(err);
      else reject(new Error(`unexpected success: ${res?.length} bytes`));
    });
  });
}

async function writeConfig(dir: string, models: string): Promise<string> {
  const path = `${dir}/models.config`;
  await Deno.writeTextFile(path, `model_config_list {\n${models}\n}\n`);
  return path;
}

function modelEntry(name: string, basePath: string, rest = "") {
  return `  config { name: "${name}" base_path: "${basePath}" model_platform: "tensorflow" ${rest} }`;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

Deno.test(
  "tensorflow_model_server flags: errors exit 2, --help and --version exit 0",
  opts,
  async (t) => {
    for (
      const [args, code, text] of [
        [["--no_such_flag=1"], 2, /Unknown flag "--no_such_flag=1"/],
        [["--port=eighty"], 2, /port/],
        [
          ["--model_base_path=/x", "--file_system_poll_wait_seconds=soon"],
          2,
          /file_system_poll_wait_seconds/,
        ],
        [["--help"], 0, /--model_config_file_poll_wait_seconds=0/],
        [["--version"], 0, /TensorFlow ModelServer:/],
      ] as const
    ) {
      await t.step(args.join(" "), async () => {
        const p = ServerProcess.spawn([...args]);
        const status = await p.exited();
        assert.equal(status.code, code, p.log());
        assert.match(p.log(), text);
      });
    }
  },
);

Deno.test("the server answers every method as upstream's tests expect", opts, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfs_e2e_" });
  const config = await writeConfig(
    dir,
    [
      modelEntry("default", TF1),
      modelEntry("tf2", TF2),
      modelEntry("matrix", MATRIX),
      modelEntry("specific", TWO, "model_version_policy { specific { versions: 123 } }"),
      modelEntry("latest", TWO),
      modelEntry(
        "saved_model_half_plus_two_2_versions",
        TWO,
        `model_version_policy { all {} } version_labels { key: "stable" value: 123 } version_labels { key: "canary" value: 124 }`,
      ),
    ].join("\n"),
  );
  await using server = await ServerProcess.start([
    `--model_config_file=${config}`,
    "--allow_version_labels_for_unavailable_models=true",
    "--enable_grpc_healthcheck_service=true",
  ]);
  const target = `127.0.0.1:${server.port}`;
  using client = new PredictionServiceClient(target);
  using models = new ModelServiceClient(target);

  for (const name of ["default", "tf2"]) {
    await t.step(`Predict on ${name}`, async () => {
      const res = await client.predict(predictRequest(name), { deadlineMs: 5000 });
      assert.equal(res.outputs["y"].dtype, DataType.DT_FLOAT);
      assert.deepEqual(res.outputs["y"].floatVal, [3]);
      assert.equal(res.modelSpec?.name, name);
      assert.equal(res.modelSpec?.signatureName, "serving_default");
      assert.equal(versionOf(res.modelSpec), 123);
    });
    await t.step(`Classify on ${name}`, async () => {
      const res = await client.classify({
        modelSpec: { name, signatureName: "classify_x_to_y" },
        input: { kind: { case: "exampleList", value: { examples: [example({ x: [2] })] } } },
      });
      assert.equal(res.result?.classifications.length, 1);
      assert.equal(res.result?.classifications[0].classes[0].score, 3);
      assert.equal(res.modelSpec?.signatureName, "classify_x_to_y");
      assert.equal(versionOf(res.modelSpec), 123);
    });
    await t.step(`Regress on ${name}`, async () => {
      for (const [sig, want] of [["regress_x_to_y", 3], ["regress_x_to_y2", 4]] as const) {
        const res = await client.regress({
          modelSpec: { name, signatureName: sig },
          input: { kind: { case: "exampleList", value: { examples: [example({ x: [2] })] } } },
        });
        assert.equal(res.result?.regressions[0].value, want);
      }
    });
    await t.step(`MultiInference on ${name}`, async () => {
      const res = await client.multiInference({
        tasks: [
          {
            modelSpec: { name, signatureName: "regress_x_to_y" },
            methodName: "tensorflow/serving/regress",
          },
          {
            modelSpec: { name, signatureName: "classify_x_to_y" },
            methodName: "tensorflow/serving/classify",
          },
        ],
        input: { kind: { case: "exampleList", value: { examples: [example({ x: [2] })] } } },
      });
      assert.equal(res.results.length, 2);
      const [r0, r1] = res.results;
      assert.equal(
        r0.result.case === "regressionResult" && r0.result.value.regressions[0].value,
        3,
      );
      assert.equal(
        r1.result.case === "classificationResult" &&
          r1.result.value.classifications[0].classes[0].score,
        3,
      );
    });
  }

  await t.step("Predict with tensor_content and a batch", async () => {
    const res = await client.predict({
      modelSpec: { name: "matrix" },
      inputs: { x: tensorToProto(Tensor.float32([...Array(18).keys()], [2, 3, 3]), true) },
    });
    assert.deepEqual(res.outputs["y"].floatVal, [...Array(18).keys()].map((v) => v / 2 + 2));
    assert.deepEqual(res.outputs["y"].tensorShape?.dim.map((d) => d.size), [2n, 3n, 3n]);
  });

  await t.step(
    "GetModelMetadata equals saved_model_half_plus_two_2_versions_metadata.json",
    async () => {
      const name = "saved_model_half_plus_two_2_versions";
      const res = await client.getModelMetadata({
        modelSpec: { name, versionChoice: { case: "version", value: { value: 123n } } },
        metadataField: ["signature_def"],
      });
      const json = toJson(GetModelMetadataResponseSchema, res, {
        registry: protoRegistry,
        useProtoFieldName: true,
        alwaysEmitImplicit: true,
      }) as JsonObject;
      delete ((json.metadata as JsonObject).signature_def as JsonObject)["@type"];
      const expected = JSON.parse(
        await Deno.readTextFile(testdata("saved_model_half_plus_two_2_versions_metadata.json")),
      );
      assert.deepEqual(json, expected);
    },
  );

  await t.step("GetModelStatus", async () => {
    const one = await models.getModelStatus({ modelSpec: { name: "default" } });
    assert.deepEqual(
      one.modelVersionStatus.map((
        s,
      ) => [s.version, s.state, s.status?.errorCode, s.status?.errorMessage]),
      [[123n, ModelVersionStatus_State.AVAILABLE, 0, ""]],
    );
    const two = await models.getModelStatus({
      modelSpec: { name: "saved_model_half_plus_two_2_versions" },
    });
    assert.deepEqual(two.modelVersionStatus.map((s) => [s.version, s.state]), [
      [124n, ModelVersionStatus_State.AVAILABLE],
      [123n, ModelVersionStatus_State.AVAILABLE],
    ]);
    await expectError(
      models.getModelStatus({
        modelSpec: { name: "default", versionChoice: { case: "version", value: { value: 9n } } },
      }),
      Code.NOT_FOUND,
      "Could not find version 9 of model default",
    );
    await expectError(
      models.getModelStatus({ modelSpec: { name: "nope" } }),
      Code.NOT_FOUND,
      "Could not find any versions of model nope",
    );
  });

  await t.step("version policies: latest serves 124 only, specific serves 123 only", async () => {
    const versions = async (name: string) =>
      (await models.getModelStatus({ modelSpec: { name } })).modelVersionStatus.map((s) => [
        Number(s.version),
        ModelVersionStatus_State[s.state],
      ]);
    assert.deepEqual(await versions("latest"), [[124, "AVAILABLE"]]);
    assert.deepEqual(await versions("specific"), [[123, "AVAILABLE"]]);
    const res = await client.predict(
      predictRequest("specific", { modelSpec: { name: "specific" } }),
    );
    assert.equal(versionOf(res.modelSpec), 123);
  });

  await t.step("versions and labels choose what serves", async () => {
    const name = "saved_model_half_plus_two_2_versions";
    const ask = async (versionChoice: unknown) =>
      versionOf(
        (await client.predict(predictRequest(name, { modelSpec: { name, versionChoice } })))
          .modelSpec,
      );
    assert.equal(await ask({ case: undefined }), 124);
    assert.equal(await ask({ case: "version", value: { value: 123n } }), 123);
    assert.equal(await ask({ case: "versionLabel", value: "stable" }), 123);
    assert.equal(await ask({ case: "versionLabel", value: "canary" }), 124);
  });

  await t.step(
    "each error has TF Serving's code and text, and the server answers after it",
    async () => {
      const ok = async () =>
        assert.deepEqual((await client.predict(predictRequest("default"))).outputs["y"].floatVal, [
          3,
        ]);
      const cases: [() => Promise<unknown>, Code, RegExp | string][] = [
        [
          () => client.predict({ inputs: { x: x([2]) } }),
          Code.INVALID_ARGUMENT,
          "Missing ModelSpec",
        ],
        [
          () => client.predict(predictRequest("")),
          Code.INVALID_ARGUMENT,
          "ModelSpec has no name specified.",
        ],
        [
          () => client.predict(predictRequest("nope")),
          Code.NOT_FOUND,
          "Servable not found for request: Latest(nope)",
        ],
        [
          () =>
            client.predict(
              predictRequest("default", {
                modelSpec: {
                  name: "default",
                  versionChoice: { case: "version", value: { value: 7n } },
                },
              }),
            ),
          Code.NOT_FOUND,
          "Servable not found for request: Specific(default, 7)",
        ],
        [
          () =>
            client.predict(
              predictRequest("default", {
                modelSpec: {
                  name: "default",
                  versionChoice: { case: "versionLabel", value: "nope" },
                },
              }),
            ),
          Code.INVALID_ARGUMENT,
          "Unrecognized servable version label: nope",
        ],
        [
          () =>
            client.predict(
              predictRequest("default", { modelSpec: { name: "default", signatureName: "nope" } }),
            ),
          Code.FAILED_PRECONDITION,
          /signature.*"nope"|"nope".*not found/i,
        ],
        [
          () => client.predict(predictRequest("default", { inputs: {} })),
          Code.INVALID_ARGUMENT,
          /input size does not match signature|Missing|not found in request/,
        ],
        [
          () => client.predict(predictRequest("default", { inputs: { x: x([2]), z: x([1]) } })),
          Code.INVALID_ARGUMENT,
          /Sent extra: \{z\}/,
        ],
        [
          () =>
            client.predict(
              predictRequest("default", { inputs: { x: tensorToProto(Tensor.int32([2], [1])) } }),
            ),
          Code.INVALID_ARGUMENT,
          /float|DT_FLOAT/,
        ],
        [
          () =>
            client.predict(
              predictRequest("default", {
                inputs: {
                  x: {
                    dtype: DataType.DT_FLOAT,
                    tensorShape: { dim: [{ size: 3n }] },
                    tensorContent: new Uint8Array(4),
                  },
                },
              }),
            ),
          Code.INVALID_ARGUMENT,
          /tensor parsing error: x/,
        ],
        [
          () => client.predict(predictRequest("default", { outputFilter: ["z"] })),
          Code.INVALID_ARGUMENT,
          /output tensor alias not found in signature: z/,
        ],
        [
          () => client.predict(predictRequest("default", { outputFilter: ["y", "y"] })),
          Code.INVALID_ARGUMENT,
          /duplicate output tensor alias: y/,
        ],
      ];
      for (const [call, code, text] of cases) {
        await expectError(call(), code, text);
        await ok();
      }
      // Malformed bytes: grpc++ answers INTERNAL with no message for a request it cannot parse.
      const raw = await sendRaw(
        target,
        "/tensorflow.serving.PredictionService/Predict",
        new Uint8Array([0x0a, 0x05, 0x01]),
      );
      assert.equal(raw.code, Code.INTERNAL);
      await ok();
    },
  );

  await t.step("grpc.health.v1.Health answers SERVING", async () => {
    using health = new HealthClient(target);
    const res = await health.check({ service: "" });
    assert.equal(res.status, 1);
  });
});

/** Copies a version dir in under a temp name and renames it, as a careful exporter does. */
async function addVersion(base: string, version: string, from = `${TWO}/00000123`) {
  const tmp = `${base}/.tmp-${version}`;
  await copyDir(from, tmp);
  await Deno.rename(tmp, `${base}/${version}`);
}

/** Sends Predict calls back to back until stopped; counts failures and versions seen. */
function clientLoop(client: PredictionServiceClient, model: string) {
  let running = true;
  const seen = new Set<number>();
  const failures: string[] = [];
  let calls = 0;
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        const res = await client.predict(predictRequest(model), { deadlineMs: 5000 });
        seen.add(versionOf(res.modelSpec)!);
        calls++;
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  });
  return {
    seen,
    failures,
    get calls() {
      return calls;
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

Deno.test("versions come and go under load with no failed request", opts, async (t) => {
  const base = await Deno.makeTempDir({ prefix: "tfs_versions_" });
  await addVersion(base, "1");
  await using server = await ServerProcess.start([
    "--model_name=hp2",
    `--model_base_path=${base}`,
    "--file_system_poll_wait_seconds=1",
    "--max_num_load_retries=1",
    "--load_retry_interval_micros=100000",
  ]);
  const target = `127.0.0.1:${server.port}`;
  using client = new PredictionServiceClient(target);
  using models = new ModelServiceClient(target);
  const states = async () =>
    (await models.getModelStatus({ modelSpec: { name: "hp2" } })).modelVersionStatus.map((
      s,
    ) => [Number(s.version), ModelVersionStatus_State[s.state]]);
  const loop = clientLoop(client, "hp2");

  await t.step("a new version loads, then the old one unloads", async () => {
    await addVersion(base, "2");
    await until("version 2 serving and 1 gone", async () => {
      const s = JSON.stringify(await states());
      return s === JSON.stringify([[2, "AVAILABLE"], [1, "END"]]);
    });
  });
  await t.step("a removed version is unloaded and the remaining one serves", async () => {
    await Deno.remove(`${base}/2`, { recursive: true });
    await until("version 1 back", async () => {
      const s = await states();
      return s.some(([v, st]) => v === 1 && st === "AVAILABLE") &&
        s.some(([v, st]) => v === 2 && st === "END");
    });
  });
  await t.step("a corrupt version is reported while the good one serves", async () => {
    const tmp = `${base}/.tmp-3`;
    await copyDir(`${TWO}/00000123`, tmp);
    const pb = await Deno.readFile(`${tmp}/saved_model.pb`);
    await Deno.writeFile(`${tmp}/saved_model.pb`, pb.subarray(0, 100));
    await Deno.rename(tmp, `${base}/3`);
    await until("version 3 failed", async () => {
      const res = await models.getModelStatus({ modelSpec: { name: "hp2" } });
      const v3 = res.modelVersionStatus.find((s) => s.version === 3n);
      return v3?.state === ModelVersionStatus_State.END &&
        v3.status?.errorCode === Code.DATA_LOSS &&
        /saved_model\.pb/.test(v3.status.errorMessage);
    });
    const res = await client.predict(predictRequest("hp2"));
    assert.equal(versionOf(res.modelSpec), 1);
  });
  await loop.stop();
  assert.deepEqual(loop.failures, [], `failed requests: ${loop.failures.slice(0, 3)}`);
  assert.ok(loop.calls > 50, `only ${loop.calls} calls`);
  assert.deepEqual([...loop.seen].sort(), [1, 2]);
});

Deno.test("config reload adds and removes models at run time", opts, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfs_reload_" });
  const config = await writeConfig(dir, modelEntry("a", TF1));
  // Reloads name models beyond the first config's: the roots must cover them.
  await using server = await ServerProcess.start([
    `--model_config_file=${config}`,
    "--model_config_file_poll_wait_seconds=1",
    `--allowed_model_roots=${TESTDATA},${dir}`,
  ]);
  const target = `127.0.0.1:${server.port}`;
  using client = new PredictionServiceClient(target);
  using models = new ModelServiceClient(target);
  const loop = clientLoop(client, "a");

  await t.step("HandleReloadConfigRequest adds b and keeps a serving", async () => {
    const res = await models.handleReloadConfigRequest({
      config: {
        config: {
          case: "modelConfigList",
          value: {
            config: [
              { name: "a", basePath: TF1, modelPlatform: "tensorflow" },
              { name: "b", basePath: TF2, modelPlatform: "tensorflow" },
            ],
          },
        },
      },
    });
    assert.equal(res.status?.errorCode, 0);
    assert.deepEqual((await client.predict(predictRequest("b"))).outputs["y"].floatVal, [3]);
  });
  await t.step(
    "a config naming a missing model path fails the reload, others keep serving",
    async () => {
      await expectError(
        models.handleReloadConfigRequest({
          config: {
            config: {
              case: "modelConfigList",
              value: {
                config: [
                  { name: "a", basePath: TF1, modelPlatform: "tensorflow" },
                  { name: "c", basePath: `${dir}/missing`, modelPlatform: "tensorflow" },
                ],
              },
            },
          },
        }),
        Code.UNKNOWN,
        /1 model\(s\) did not become available/,
      );
      assert.deepEqual((await client.predict(predictRequest("a"))).outputs["y"].floatVal, [3]);
    },
  );
  await t.step("the failed reload still applied its config: b is gone", async () => {
    await expectError(client.predict(predictRequest("b")), Code.NOT_FOUND);
  });
  await t.step("rewriting the polled config file adds d", async () => {
    await writeConfig(dir, [modelEntry("a", TF1), modelEntry("d", TWO)].join("\n"));
    await until("d serving", async () => {
      try {
        return versionOf((await client.predict(predictRequest("d"))).modelSpec) === 124;
      } catch (e) {
        assert.equal((e as ServingError).code, Code.NOT_FOUND);
        return false;
      }
    });
  });
  await loop.stop();
  assert.deepEqual(loop.failures, []);
});

Deno.test(
  "warmup requests are replayed at load; a corrupt warmup file fails the load",
  opts,
  async () => {
    const base = await Deno.makeTempDir({ prefix: "tfs_warmup_" });
    await copyDir(`${TWO}/00000123`, `${base}/1`);
    await Deno.mkdir(`${base}/1/assets.extra`);
    const log = (req: unknown) =>
      toBinary(
        PredictionLogSchema,
        create(PredictionLogSchema, {
          logType: { case: "predictLog", value: { request: req as never } },
        }),
      );
    const records = writeTFRecords([log(predictRequest("w")), log(predictRequest("w"))]);
    await Deno.writeFile(`${base}/1/assets.extra/tf_serving_warmup_requests`, records);
    await copyDir(`${base}/1`, `${base}/2`);
    const bad = records.slice();
    bad[bad.length - 1] ^= 0xff;
    await Deno.writeFile(`${base}/2/assets.extra/tf_serving_warmup_requests`, bad);

    await using server = await ServerProcess.start([
      "--model_name=w",
      `--model_base_path=${base}`,
      "--max_num_load_retries=0",
      "--model_version_policy_placeholder_ignored=1",
    ].filter((f) => !f.includes("placeholder")));
    using models = new ModelServiceClient(`127.0.0.1:${server.port}`);
    // Latest policy: version 2 (bad warmup) fails, version 1 is not aspired; check the log
    // and status of 2.
    const res = await models.getModelStatus({ modelSpec: { name: "w" } });
    const v2 = res.modelVersionStatus.find((s) => s.version === 2n);
    assert.equal(v2?.state, ModelVersionStatus_State.END);
    assert.equal(v2?.status?.errorCode, Code.DATA_LOSS);
    assert.match(v2!.status!.errorMessage, /corrupted record.*TFRecord format/);
    await Deno.remove(`${base}/2`, { recursive: true });
    await server.waitFor(/Number of warmup records read: 2/);
  },
);

Deno.test("SIGTERM lets calls in flight finish, then exits 0", opts, async () => {
  await using server = await ServerProcess.start([
    "--model_name=matrix",
    `--model_base_path=${MATRIX}`,
  ]);
  using client = new PredictionServiceClient(`127.0.0.1:${server.port}`);
  // A large batch keeps the call busy long enough to be in flight when the signal arrives.
  const n = 400_000;
  const big = create(PredictRequestSchema, {
    modelSpec: { name: "matrix" },
    inputs: { x: tensorToProto(Tensor.float32(new Float32Array(n * 9), [n, 3, 3]), true) },
  });
  await client.predict({
    modelSpec: { name: "matrix" },
    inputs: { x: x([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3]) },
  });
  const inFlight = client.predict(big, { deadlineMs: 20_000 });
  // A small call on the same connection, answered, means the big call's stream is open (its
  // HEADERS came first), so the shutdown's GOAWAY cannot refuse it; a fixed sleep raced with
  // sending 14 MB on a loaded machine.
  await client.predict({
    modelSpec: { name: "matrix" },
    inputs: { x: x([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3]) },
  });
  const status = server.kill("SIGTERM");
  const res = await inFlight;
  assert.equal(res.outputs["y"].floatVal.length, n * 9);
  assert.equal((await status).code, 0);
  assert.match(server.log(), /Server shut down/);
});
