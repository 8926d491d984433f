/**
 * Least privilege end to end: the real server started as `deno task serve` starts it (the
 * launcher, then `main.ts` with scoped permissions). Its permission state is asserted from
 * inside (the test-mode report line) and its command line from outside (/proc/<pid>/cmdline);
 * a version directory with a symlink leading outside the roots fails to load with
 * PERMISSION_DENIED while the other model serves; configs naming /proc/self or a path outside
 * the roots are refused.
 */
import assert from "node:assert/strict";
import { ModelServiceClient, PredictionServiceClient } from "../src/client/grpc_client.ts";
import { Code, ServingError } from "../src/errors.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { tensorToProto } from "../src/tensor/tensor_proto.ts";
import { ModelVersionStatus_State } from "../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import {
  PERMISSION_REPORT_ENV,
  PERMISSION_REPORT_PREFIX,
  type PermissionProbe,
  v8FlagsArg,
} from "../src/config/permissions.ts";
import { ServerProcess, taskCommand } from "./server_process.ts";
import { copyDir, testdata } from "./testdata.ts";

const TF1 = testdata("saved_model_half_plus_two_cpu");
const opts = { sanitizeOps: false, sanitizeResources: false };

function predictRequest(model: string) {
  return {
    modelSpec: { name: model, signatureName: "serving_default" },
    inputs: { x: tensorToProto(Tensor.float32(new Float32Array([2]), [1])) },
    outputFilter: ["y"],
  };
}

async function expectError(p: Promise<unknown>, code: Code, text: RegExp) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, text);
    return;
  }
  assert.fail(`expected ${Code[code]}`);
}

function config(models: [name: string, basePath: string][]): string {
  return `model_config_list {\n${
    models.map(([n, p]) =>
      `  config { name: "${n}" base_path: "${p}" model_platform: "tensorflow" }`
    )
      .join("\n")
  }\n}\n`;
}

/** The server's pid, from the launcher's "Starting the server (pid N)" line. */
async function serverPid(server: ServerProcess): Promise<number> {
  const line = await server.waitFor(/Starting the server \(pid \d+\)/);
  return Number(/pid (\d+)/.exec(line)![1]);
}

/**
 * /proc/<pid>/cmdline as its arguments. Read by `cat`: Deno lets only --allow-all read /proc/<pid>
 * directly, and `deno task test` runs without it.
 */
function cmdline(pid: number): string[] {
  const out = new Deno.Command("cat", { args: [`/proc/${pid}/cmdline`] }).outputSync();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\0").filter((a) => a !== "");
}

Deno.test(
  "the server runs with scoped permissions, seen from inside and outside",
  opts,
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "tfs_priv_" });
    await copyDir(`${TF1}/00000123`, `${dir}/good/1`);
    // A second model whose variables file is a symlink to a file outside every root.
    await copyDir(`${TF1}/00000123`, `${dir}/evil/1`);
    const secret = `${await Deno.makeTempDir({ prefix: "tfs_secret_" })}/variables.data`;
    await Deno.copyFile(`${TF1}/00000123/variables/variables.data-00000-of-00001`, secret);
    const linked = `${dir}/evil/1/variables/variables.data-00000-of-00001`;
    await Deno.remove(linked);
    await Deno.symlink(secret, linked);
    const modelConfig = `${dir}/models.config`;
    await Deno.writeTextFile(
      modelConfig,
      config([["good", `${dir}/good`], ["evil", `${dir}/evil`]]),
    );

    await using server = await ServerProcess.start(
      [`--model_config_file=${modelConfig}`, "--max_num_load_retries=0"],
      30_000,
      { [PERMISSION_REPORT_ENV]: "1" },
    );
    const target = `127.0.0.1:${server.port}`;
    using client = new PredictionServiceClient(target);
    using models = new ModelServiceClient(target);

    await t.step(
      "its command line (from /proc) grants only the roots, files and ports",
      async () => {
        const pid = await serverPid(server);
        const args = cmdline(pid);
        // Deno's own flags are those before the script.
        const denoFlags = args.slice(0, args.findIndex((a) => a.endsWith("/main.ts")));
        assert.ok(denoFlags.length > 0, args.join(" "));
        const allow = denoFlags.filter((a) => a.startsWith("--allow-") || a === "-A");
        const value = (flag: string) =>
          allow.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1).split(",");
        assert.deepEqual(
          allow.map((a) => a.split("=")[0]).sort(),
          ["--allow-env", "--allow-net", "--allow-read"],
          args.join(" "),
        );
        assert.ok(args.includes("--no-prompt"));
        // The heap settings for a flat footprint, given to Deno (before the script).
        assert.ok(denoFlags.includes(v8FlagsArg()), args.join(" "));
        assert.deepEqual(value("--allow-net"), [`0.0.0.0:${server.port}`]);
        const read = value("--allow-read")!;
        for (const p of [`${dir}/good`, `${dir}/evil`, modelConfig]) assert.ok(read.includes(p), p);
        assert.ok(!read.some((p) => p === "/" || secret.startsWith(`${p}/`)), read.join(","));
        assert.ok(value("--allow-env")!.every((v) => /^TFS_[A-Z_]+$/.test(v)));
        assert.ok(args.includes(`--allowed_model_roots=${dir}/good,${dir}/evil`), args.join(" "));
      },
    );

    await t.step(
      "its own Deno.permissions.query: granted inside the scope, nothing else",
      async () => {
        const line = await server.waitFor(new RegExp(PERMISSION_REPORT_PREFIX));
        const report: PermissionProbe[] = JSON.parse(
          line.slice(line.indexOf(PERMISSION_REPORT_PREFIX) + PERMISSION_REPORT_PREFIX.length),
        );
        const state = (d: Deno.PermissionDescriptor) =>
          report.find((p) => JSON.stringify(p.descriptor) === JSON.stringify(d))?.state;
        assert.equal(state({ name: "read", path: `${dir}/good` }), "granted");
        assert.equal(state({ name: "read", path: modelConfig }), "granted");
        assert.equal(state({ name: "net", host: `0.0.0.0:${server.port}` }), "granted");
        assert.equal(state({ name: "env", variable: "TFS_PERMISSION_REPORT" }), "granted");
        for (
          const d of [
            { name: "read", path: "/" },
            { name: "read", path: "/etc/passwd" },
            { name: "read", path: "/proc/self/environ" },
            { name: "write", path: "/" },
            { name: "write", path: "/tmp" },
            { name: "net" },
            { name: "net", host: "example.com:443" },
            { name: "net", host: "127.0.0.1:22" },
            { name: "env" },
            { name: "env", variable: "HOME" },
            { name: "env", variable: "GRPC_TRACE" },
            { name: "run" },
            { name: "ffi" },
            { name: "sys" },
          ] as Deno.PermissionDescriptor[]
        ) {
          const s = state(d);
          assert.ok(s !== undefined && s !== "granted", `${JSON.stringify(d)}: ${s}`);
        }
      },
    );

    await t.step("a symlink out of the roots fails the load with PERMISSION_DENIED", async () => {
      const res = await models.getModelStatus({ modelSpec: { name: "evil" } });
      assert.equal(res.modelVersionStatus.length, 1);
      const st = res.modelVersionStatus[0];
      assert.equal(st.state, ModelVersionStatus_State.END);
      const message = st.status?.errorMessage ?? "";
      assert.equal(Code[st.status?.errorCode ?? 0], "PERMISSION_DENIED", message);
      assert.match(message, /leads to .*outside the allowed model roots/);
      assert.ok(message.includes(secret), message);
    });

    await t.step("the other model serves", async () => {
      const res = await client.predict(predictRequest("good"));
      assert.deepEqual(res.outputs["y"].floatVal, [3]);
    });

    await t.step(
      "a reload naming a path outside the roots is refused; the rest serves",
      async () => {
        const outside = await Deno.makeTempDir({ prefix: "tfs_outside_" });
        await copyDir(`${TF1}/00000123`, `${outside}/1`);
        await expectError(
          models.handleReloadConfigRequest({
            config: {
              config: {
                case: "modelConfigList",
                value: {
                  config: [
                    { name: "good", basePath: `${dir}/good`, modelPlatform: "tensorflow" },
                    { name: "other", basePath: outside, modelPlatform: "tensorflow" },
                  ],
                },
              },
            },
          }),
          Code.PERMISSION_DENIED,
          /Model other's base path .* is outside the allowed model roots .*--allowed_model_roots/,
        );
        assert.deepEqual((await client.predict(predictRequest("good"))).outputs["y"].floatVal, [3]);
      },
    );

    await t.step("a reload naming /proc/self is refused; the rest serves", async () => {
      await expectError(
        models.handleReloadConfigRequest({
          config: {
            config: {
              case: "modelConfigList",
              value: {
                config: [{
                  name: "proc",
                  basePath: "/proc/self/root",
                  modelPlatform: "tensorflow",
                }],
              },
            },
          },
        }),
        Code.PERMISSION_DENIED,
        /Refusing model proc's base path \/proc\/self\/root: nothing is served from \/proc/,
      );
      assert.deepEqual((await client.predict(predictRequest("good"))).outputs["y"].floatVal, [3]);
    });
  },
);

Deno.test("a config naming /proc/self is refused before anything starts", opts, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfs_proc_" });
  const modelConfig = `${dir}/models.config`;
  await Deno.writeTextFile(modelConfig, config([["proc", "/proc/self/cwd"]]));
  for (
    const [what, args] of [
      ["a config file whose base path is /proc/self/cwd", [`--model_config_file=${modelConfig}`]],
      ["--model_config_file=/proc/self/environ", ["--model_config_file=/proc/self/environ"]],
      ["--model_base_path=/proc/self/root", ["--model_base_path=/proc/self/root"]],
      [
        "--allowed_model_roots=/proc/self/root",
        [`--model_base_path=${TF1}`, "--allowed_model_roots=/proc/self/root"],
      ],
    ] as const
  ) {
    await t.step(what, async () => {
      const p = ServerProcess.spawn(["--port=1", ...args]);
      const status = await p.exited();
      assert.equal(status.code, 1, p.log());
      assert.match(p.log(), /Failed to start server\. Error: Refusing .*\/proc/);
    });
  }
});

Deno.test("gRPC on a UNIX socket only, under scoped permissions", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfs_sock_" });
  const socket = `${dir}/grpc.sock`;
  await using server = await ServerProcess.start([
    "--port=0",
    `--grpc_socket_path=${socket}`,
    "--model_name=m",
    `--model_base_path=${TF1}`,
  ]);
  const args = cmdline(await serverPid(server));
  assert.ok(args.includes(`--allow-net=unix:${socket}`), args.join(" "));
  assert.ok(args.includes(`--allow-write=${socket}`), args.join(" "));
  using client = new PredictionServiceClient(`unix:${socket}`);
  assert.deepEqual((await client.predict(predictRequest("m"))).outputs["y"].floatVal, [3]);
});

Deno.test("a root the process may not read stops the start (as in a compiled binary)", async () => {
  const main = new URL("../server_main.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${TF1}`,
      "--allow-env",
      "--no-prompt",
      main,
      "--port=1",
      `--model_base_path=${TF1}`,
      `--allowed_model_roots=${TF1},/srv/not_granted`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, err);
  assert.match(
    err,
    /--allowed_model_roots names \/srv\/not_granted, which this process may not read/,
  );
});

Deno.test("the serve task's command is the one tests run", () => {
  const args = taskCommand("serve", ["--port=1"]);
  assert.equal(args[0], "run");
  assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
  assert.ok(args.some((a) => a.endsWith("/launch.ts")));
});

Deno.test("a model root reached through a symlinked folder is served", opts, async () => {
  const real = await Deno.makeTempDir({ prefix: "tfs_real_" });
  await copyDir(`${TF1}/00000123`, `${real}/hp2/1`);
  const links = await Deno.makeTempDir({ prefix: "tfs_links_" });
  await Deno.symlink(real, `${links}/data`);
  // The root as given goes through the link; the server reads the files at their real path.
  await using server = await ServerProcess.start(
    ["--model_name=hp2", `--model_base_path=${links}/data/hp2`, "--max_num_load_retries=0"],
    30_000,
  );
  using client = new PredictionServiceClient(`127.0.0.1:${server.port}`);
  const res = await client.predict(predictRequest("hp2"));
  assert.deepEqual([...res.outputs.y.floatVal], [3]);
});
