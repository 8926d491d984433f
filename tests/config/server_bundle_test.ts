/**
 * The bundled server (src/config/server_bundle.ts, scripts/bundle_server.ts): the launcher runs
 * it only while it matches its sources, and it serves like the sources.
 */
import assert from "node:assert/strict";
import {
  BUNDLE_DIR,
  BUNDLE_ENTRY,
  BUNDLE_MANIFEST,
  type BundleManifest,
  fileStamp,
  freshBundle,
} from "../../src/config/server_bundle.ts";
import { freePort, ServerProcess } from "../server_process.ts";
import { testdata } from "../testdata.ts";
import { writeSlowModel } from "../exec/models.ts";

/** A project root holding two sources and, if `manifest`, a bundle made from them. */
async function fakeRoot(): Promise<string> {
  const root = `${await Deno.makeTempDir({ prefix: "bundle_root_" })}/`;
  await Deno.mkdir(`${root}src`);
  await Deno.writeTextFile(`${root}server_main.ts`, "export {};\n");
  await Deno.writeTextFile(`${root}src/a.ts`, "export const a = 1;\n");
  await Deno.mkdir(`${root}${BUNDLE_DIR}`, { recursive: true });
  await Deno.writeTextFile(`${root}${BUNDLE_DIR}${BUNDLE_ENTRY}`, "");
  const manifest: BundleManifest = {
    deno: Deno.version.deno,
    files: Object.fromEntries(
      ["server_main.ts", "src/a.ts"].map((f) => [f, fileStamp(`${root}${f}`)]),
    ),
  };
  await Deno.writeTextFile(`${root}${BUNDLE_DIR}${BUNDLE_MANIFEST}`, JSON.stringify(manifest));
  return root;
}

Deno.test("freshBundle() names the bundle only while every source matches the manifest", async () => {
  const root = await fakeRoot();
  try {
    assert.equal(freshBundle(root), `${root}${BUNDLE_DIR}${BUNDLE_ENTRY}`);
    // An edit of the same size still moves the mtime.
    const later = new Date(Date.now() + 5_000);
    await Deno.utime(`${root}src/a.ts`, later, later);
    assert.equal(freshBundle(root), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("freshBundle() refuses a bundle of another Deno, a missing source, or none", async () => {
  const root = await fakeRoot();
  const manifestPath = `${root}${BUNDLE_DIR}${BUNDLE_MANIFEST}`;
  try {
    const manifest = JSON.parse(await Deno.readTextFile(manifestPath)) as BundleManifest;
    await Deno.writeTextFile(manifestPath, JSON.stringify({ ...manifest, deno: "0.0.1" }));
    assert.equal(freshBundle(root), undefined);
    await Deno.writeTextFile(manifestPath, JSON.stringify(manifest));
    assert.ok(freshBundle(root));
    await Deno.remove(`${root}src/a.ts`);
    assert.equal(freshBundle(root), undefined);
    await Deno.writeTextFile(manifestPath, "not json");
    assert.equal(freshBundle(root), undefined);
    await Deno.remove(`${root}${BUNDLE_DIR}`, { recursive: true });
    assert.equal(freshBundle(root), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task bundle writes a bundle the launcher runs, which serves Predict", async () => {
  const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);
  const hadBundle = freshBundle(root) !== undefined;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "bundle"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const models = await Deno.makeTempDir({ prefix: "bundle_models_" });
  try {
    assert.equal(freshBundle(root), `${root}${BUNDLE_DIR}${BUNDLE_ENTRY}`);
    // Worker entry points resolve next to the chunks and load their sources.
    for (const shim of ["worker.ts", "codec_worker.ts"]) {
      const text = await Deno.readTextFile(`${root}${BUNDLE_DIR}${shim}`);
      const target = /import "([^"]+)";/.exec(text)?.[1];
      assert.ok(target, shim);
      Deno.statSync(new URL(target, `file://${root}${BUNDLE_DIR}`));
    }
    // A model heavy enough for the worker pool, so a worker starts from the bundle's shim.
    await writeSlowModel(`${models}/slow/1`, 4);
    const config = `${models}/models.config`;
    await Deno.writeTextFile(
      config,
      `model_config_list {
  config { name: "half_plus_two" base_path: "${
        testdata("saved_model_half_plus_two_cpu")
      }" model_platform: "tensorflow" }
  config { name: "slow" base_path: "${models}/slow" model_platform: "tensorflow" }
}
`,
    );
    const rest = freePort();
    // The bundle as the launcher starts it (least privilege).
    await using server = await ServerProcess.start([
      `--model_config_file=${config}`,
      `--rest_api_port=${rest}`,
      "--tensorflow_intra_op_parallelism=2",
    ]);
    assert.ok(
      server.lines.some((l) => l.includes(`(the bundle in ${BUNDLE_DIR})`)),
      server.lines.join("\n"),
    );
    await server.waitFor(/Exporting HTTP\/REST API/);
    const predict = async (model: string, instances: number[]) => {
      const res = await fetch(`http://127.0.0.1:${rest}/v1/models/${model}:predict`, {
        method: "POST",
        body: JSON.stringify({ instances }),
      });
      return await res.json();
    };
    assert.deepEqual(await predict("half_plus_two", [1.0, 2.0]), { predictions: [2.5, 3.0] });
    assert.deepEqual(await predict("slow", [1, 2]), { predictions: [2, 3] });
    await server.waitFor(/Started \d+ inference worker/);
  } finally {
    await Deno.remove(models, { recursive: true });
    // Left as found: a run of the tests does not leave a bundle the launcher would pick up.
    if (!hadBundle) await Deno.remove(`${root}${BUNDLE_DIR}`, { recursive: true });
  }
});
