/**
 * Issue 8, the model-config and model-directory rows, against the real server (main.ts in a
 * child process), each ending with a valid Predict:
 * - the config file truncated to empty, or made unparsable, while it is polled: logged with
 *   upstream's text, the models keep serving;
 * - version dirs `1` and `00001`, `1` deleted while serving: no NOT_FOUND at any time;
 * - a version dir that is a symlink to `/etc`: reported by GetModelStatus as a failed load;
 * - an int64 version beyond 2^53 in a request: printed exactly in the NOT_FOUND message.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelServiceClient, PredictionServiceClient } from "../../src/client/grpc_client.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { ModelVersionStatus_State } from "../../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { freePort, ServerProcess } from "../server_process.ts";
import { copyDir, testdata } from "../testdata.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const HALF = testdata("saved_model_half_plus_two_cpu/00000123");

function predictRequest(name: string, version?: bigint) {
  return {
    modelSpec: {
      name,
      signatureName: "serving_default",
      versionChoice: version === undefined
        ? { case: undefined }
        : { case: "version" as const, value: { value: version } },
    },
    inputs: { x: tensorToProto(Tensor.float32([2], [1])) },
  };
}

/** A valid Predict answers y = x / 2 + 2. */
async function assertPredicts(client: PredictionServiceClient, name: string): Promise<void> {
  const res = await client.predict(predictRequest(name), { deadlineMs: 10_000 });
  assert.deepEqual(res.outputs["y"].floatVal, [3]);
}

async function expectError(p: Promise<unknown>, code: Code, text: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.equal(e.message, text);
    return;
  }
  assert.fail(`expected ${Code[code]}`);
}

async function tempBase(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "hostile_models_" });
}

Deno.test(
  "a model config file truncated or made unparsable while polled keeps the models serving",
  opts,
  async () => {
    const dir = await tempBase();
    const config = join(dir, "models.config");
    const text = `model_config_list {
  config { name: "half" base_path: "${join(dir, "half")}" model_platform: "tensorflow" }
}
`;
    await copyDir(HALF, join(dir, "half", "1"));
    await Deno.writeTextFile(config, text);
    await using server = await ServerProcess.start([
      `--model_config_file=${config}`,
      "--model_config_file_poll_wait_seconds=1",
    ]);
    using client = new PredictionServiceClient(`127.0.0.1:${server.port}`);
    await assertPredicts(client, "half");

    // An editor saving in place: the file is empty for a moment (here: for several polls).
    await Deno.writeTextFile(config, "");
    await server.waitFor(/Taking no action for empty config\./);
    await assertPredicts(client, "half");

    // Half-written text that does not parse.
    await Deno.writeTextFile(config, text.slice(0, 40));
    await server.waitFor(/Failed to read ModelServerConfig file: .*Error parsing text-format/);
    await assertPredicts(client, "half");

    // Another config type, then a config that fails validation: refused, as upstream's
    // ServerCore::ReloadConfig refuses them.
    await Deno.writeTextFile(config, 'custom_model_config { type_url: "x/y.Z" }');
    await server.waitFor(
      /PollFilesystemAndReloadConfig failed to ReloadConfig: Cannot transition to requested config\. It is only legal to transition from one ModelConfigList to another\./,
    );
    await assertPredicts(client, "half");
    await Deno.writeTextFile(config, text.replace(/(config \{[^\n]*\})/, "$1 $1"));
    await server.waitFor(
      /PollFilesystemAndReloadConfig failed to ReloadConfig: Illegal to list model half multiple times in config list/,
    );
    await assertPredicts(client, "half");

    // The full file again: reloaded, same model, still serving.
    await Deno.writeTextFile(config, text);
    const count = (re: RegExp) => server.lines.filter((l) => re.test(l)).length;
    for (let i = 0; i < 100 && count(/Finished adding\/updating models/) < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(count(/Finished adding\/updating models/), 2, server.log());
    await assertPredicts(client, "half");

    // An empty config by RPC is refused, as upstream's model_service_impl.cc does.
    using models = new ModelServiceClient(`127.0.0.1:${server.port}`);
    await expectError(
      models.handleReloadConfigRequest({ config: {} }),
      Code.INVALID_ARGUMENT,
      "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList " +
        "is currently supported",
    );
    await assertPredicts(client, "half");
    assert.ok(!server.log().includes("Unloading"), server.log());
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test(
  "deleting one of two dirs of the same version while serving leaves no NOT_FOUND gap",
  opts,
  async () => {
    const dir = await tempBase();
    await copyDir(HALF, join(dir, "1"));
    await copyDir(HALF, join(dir, "00001"));
    await using server = await ServerProcess.start([
      "--model_name=half",
      `--model_base_path=${dir}`,
      "--file_system_poll_wait_seconds=1",
    ]);
    using client = new PredictionServiceClient(`127.0.0.1:${server.port}`);
    await assertPredicts(client, "half");
    const polls = () => server.lines.filter((l) => l.includes("Duplicate version")).length;
    assert.equal(polls(), 1, server.log());

    await Deno.remove(join(dir, "1"), { recursive: true });
    // Call for as long as three polls take (each call is checked, none is timed).
    const errors: string[] = [];
    let calls = 0;
    const until = Date.now() + 3500;
    while (Date.now() < until) {
      try {
        await assertPredicts(client, "half");
      } catch (e) {
        errors.push((e as Error).message);
      }
      calls++;
    }
    assert.deepEqual(errors, [], `${errors.length} of ${calls} calls failed`);
    assert.ok(!server.log().includes("Unloading"), server.log());
    await assertPredicts(client, "half");
    await Deno.remove(dir, { recursive: true });
  },
);

/** Polls GetModelStatus until `version` of "half" is END; returns its status. */
async function endedStatus(models: ModelServiceClient, version: bigint) {
  let status;
  for (let i = 0; i < 100; i++) {
    status = await models.getModelStatus({
      modelSpec: { name: "half", versionChoice: { case: "version", value: { value: version } } },
    }).catch(() => undefined);
    if (status?.modelVersionStatus[0]?.state === ModelVersionStatus_State.END) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return status?.modelVersionStatus[0];
}

Deno.test(
  "a version dir that is a symlink to /etc, or that never gets a SavedModel, is reported as a failed load; the others serve",
  opts,
  async () => {
    const dir = await tempBase();
    await copyDir(HALF, join(dir, "1"));
    await using server = await ServerProcess.start([
      "--model_name=half",
      `--model_base_path=${dir}`,
      "--file_system_poll_wait_seconds=1",
      "--version_dir_ready_timeout_seconds=2",
      "--max_num_load_retries=0",
    ]);
    const target = `127.0.0.1:${server.port}`;
    using client = new PredictionServiceClient(target);
    using models = new ModelServiceClient(target);
    await assertPredicts(client, "half");

    // Inside the model root but never written: upstream's NOT_FOUND once the wait runs out.
    await Deno.mkdir(join(dir, "200"));
    await server.waitFor(/Waiting for version 200 of servable half to be written/);
    await server.waitFor(/Version 200 of servable half has no complete saved_model\.pb/);
    const v200 = await endedStatus(models, 200n);
    assert.equal(v200?.state, ModelVersionStatus_State.END, server.log());
    assert.equal(v200?.status?.errorCode, Code.NOT_FOUND);
    assert.equal(
      v200?.status?.errorMessage,
      `Could not find SavedModel .pb or .pbtxt at supplied export directory path: ${
        join(dir, "200")
      }. Check that the directory exists and that you have the right permissions for accessing it.`,
    );

    // A symlink leading outside the allowed roots: refused before anything is read.
    await Deno.symlink("/etc", join(dir, "300"));
    await server.waitFor(/Version 300 of servable half has no complete saved_model\.pb/);
    const v300 = await endedStatus(models, 300n);
    assert.equal(v300?.state, ModelVersionStatus_State.END, server.log());
    assert.equal(v300?.status?.errorCode, Code.PERMISSION_DENIED, v300?.status?.errorMessage ?? "");
    assert.match(v300?.status?.errorMessage ?? "", /outside the allowed model roots|\/etc/);
    // Version 1 keeps serving (the failed versions never became available).
    await assertPredicts(client, "half");
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("an int64 version beyond 2^53 is printed exactly in messages", opts, async () => {
  const restPort = freePort();
  await using server = await ServerProcess.start([
    `--rest_api_port=${restPort}`,
    "--model_name=half_plus_two",
    `--model_base_path=${testdata("saved_model_half_plus_two_cpu")}`,
  ]);
  await server.waitFor(/Exporting HTTP\/REST API/);
  const target = `127.0.0.1:${server.port}`;
  using client = new PredictionServiceClient(target);
  using models = new ModelServiceClient(target);
  const max = 9223372036854775807n;
  await expectError(
    client.predict(predictRequest("half_plus_two", max)),
    Code.NOT_FOUND,
    "Servable not found for request: Specific(half_plus_two, 9223372036854775807)",
  );
  // 2^53 + 123 rounds (as a double) onto no served version, but must not be taken for 123 + 2^53.
  await expectError(
    client.predict(predictRequest("half_plus_two", 2n ** 53n + 1n)),
    Code.NOT_FOUND,
    "Servable not found for request: Specific(half_plus_two, 9007199254740993)",
  );
  await expectError(
    models.getModelStatus({
      modelSpec: {
        name: "half_plus_two",
        versionChoice: { case: "version", value: { value: max } },
      },
    }),
    Code.NOT_FOUND,
    "Could not find version 9223372036854775807 of model half_plus_two",
  );
  await assertPredicts(client, "half_plus_two");
  // The same over REST.
  const base = `http://127.0.0.1:${restPort}/v1/models/half_plus_two/versions/${max}`;
  const predict = await fetch(`${base}:predict`, {
    method: "POST",
    body: JSON.stringify({ instances: [1] }),
  });
  assert.equal(predict.status, 404);
  assert.deepEqual(await predict.json(), {
    error: "Servable not found for request: Specific(half_plus_two, 9223372036854775807)",
  });
  const status = await fetch(base);
  assert.equal(status.status, 404);
  assert.deepEqual(await status.json(), {
    error: "Could not find version 9223372036854775807 of model half_plus_two",
  });
  await assertPredicts(client, "half_plus_two");
});
