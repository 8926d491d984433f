/**
 * The basic tutorial end to end, as a user runs it: `main.ts train` exports a SavedModel,
 * `main.ts` serves it, `main.ts client` reports the error rate.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ServerProcess } from "./server_process.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));
const opts = { sanitizeOps: false, sanitizeResources: false };

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", CONFIG, "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("train → serve → client: the full tutorial run errs on at most 12%", opts, async () => {
  const base = await Deno.makeTempDir({ prefix: "tfs_mnist_" });
  const trained = await run(["train", "--training_iteration=1000", "--model_version=1", base]);
  assert.equal(trained.code, 0, trained.err);
  assert.match(trained.out, /^Training model\.\.\./m);
  assert.match(trained.out, /^training accuracy 0\.9\d*$/m);
  assert.match(trained.out, /^Done training!$/m);
  assert.match(trained.out, new RegExp(`^Exporting trained model to ${base}/1$`, "m"));
  assert.match(trained.out, /^Done exporting!$/m);

  await using server = await ServerProcess.start([
    "--model_name=mnist",
    `--model_base_path=${base}`,
  ]);
  for (const concurrency of [1, 32]) {
    const client = await run([
      "client",
      "--num_tests=1000",
      `--server=127.0.0.1:${server.port}`,
      `--concurrency=${concurrency}`,
    ]);
    assert.equal(client.code, 0, client.err);
    assert.equal((client.out.match(/\./g) ?? []).length >= 1000, true);
    const m = /^Inference error rate: ([\d.]+)%$/m.exec(client.out);
    assert.ok(m, client.out);
    const rate = Number(m[1]);
    assert.ok(rate <= 12, `error rate ${rate}%`);
    assert.ok(rate > 0, "an error rate of 0 would mean the check is broken");
    console.log(`--concurrency=${concurrency}: Inference error rate: ${m[1]}%`);
  }

  // A second export of the same version is refused, and the served model is untouched.
  const again = await run(["train", "--training_iteration=1", base]);
  assert.equal(again.code, 2);
  assert.match(again.err, /already exists/);
});

Deno.test("train rejects bad flags with exit code 2", opts, async () => {
  for (
    const [args, text] of [
      [
        ["train", "--training_iteration=0", "/tmp/x"],
        /Please specify a positive value for training iteration\./,
      ],
      [
        ["train", "--model_version=-1", "/tmp/x"],
        /Please specify a positive value for version number\./,
      ],
      [["train", "--bogus=1", "/tmp/x"], /bogus/],
      [["train"], /Usage:/],
    ] as const
  ) {
    const r = await run([...args]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.out + r.err, text);
  }
});
