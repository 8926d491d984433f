/**
 * The REST port of the real server, end to end: the tutorial's MNIST model trained and served,
 * Prometheus metrics counting gRPC and REST calls, /healthz and /readyz, and the web page in
 * headless Chromium predicting a digit drawn on its pad with the real model.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PredictionServiceClient } from "../../src/client/grpc_client.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { freePort, ServerProcess } from "../server_process.ts";
import { testdata } from "../testdata.ts";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, importChromium, inCI } from "./chromium.ts";
import { parseExposition } from "./exposition.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "REST port: metrics, health probes and the page with the real MNIST model",
  opts,
  async (t) => {
    const base = await Deno.makeTempDir({ prefix: "tfs_page_" });
    const trained = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", CONFIG, "-A", MAIN, "train", "--training_iteration=1000", base],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(trained.success, new TextDecoder().decode(trained.stderr));
    const rest = freePort();
    await using server = await ServerProcess.start([
      "--model_name=mnist",
      `--model_base_path=${base}`,
      `--rest_api_port=${rest}`,
      `--monitoring_config_file=${testdata("monitoring_config.txt")}`,
    ]);
    await server.waitFor(/Exporting HTTP\/REST API at:localhost:\d+/);
    const url = `http://127.0.0.1:${rest}`;
    const image = Tensor.float32(new Float32Array(784), [1, 784]);

    await t.step("health probes answer 200 once the model is available", async () => {
      for (const path of ["/healthz", "/readyz"]) {
        const res = await fetch(url + path);
        assert.equal(res.status, 200, path);
        assert.deepEqual(await res.json(), { status: "ok" });
      }
    });

    await t.step("metrics count one gRPC and one REST Predict under upstream's names", async () => {
      using client = new PredictionServiceClient(`127.0.0.1:${server.port}`);
      await client.predict({
        modelSpec: { name: "mnist", signatureName: "predict_images" },
        inputs: { images: tensorToProto(image, true) },
      });
      const res = await fetch(`${url}/v1/models/mnist:predict`, {
        method: "POST",
        body: JSON.stringify({ signature_name: "predict_images", instances: [Array(784).fill(0)] }),
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).predictions[0].length, 10);
      const text = await (await fetch(`${url}/monitoring/prometheus/metrics`)).text();
      const samples = [...parseExposition(text).values()].flatMap((f) => f.samples);
      const value = (name: string, labels: Record<string, string>) =>
        samples.filter((s) =>
          s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
        ).reduce((sum, s) => sum + s.value, 0);
      assert.equal(
        value(":tensorflow:serving:request_count", { model_name: "mnist", status: "OK" }),
        2,
        text,
      );
      assert.equal(
        value(":tensorflow:serving:request_latency_count", {
          model_name: "mnist",
          entrypoint: "GRPC",
        }),
        1,
      );
      assert.equal(
        value(":tensorflow:serving:request_latency_count", {
          model_name: "mnist",
          entrypoint: "REST",
        }),
        1,
      );
      assert.equal(
        value(":tensorflow:cc:saved_model:load_attempt_count", { status: "success" }),
        1,
      );
    });

    await t.step({
      name: "the page predicts a digit drawn on the pad with the served model",
      ignore: !haveChromium && !inCI,
      fn: async () => {
        const profile = await Deno.makeTempDir({ prefix: "page_e2e_chromium_" });
        const chromium = await importChromium();
        const context = await chromium.launchPersistentContext(profile, {
          executablePath: CHROMIUM,
          headless: true,
          args: CHROMIUM_ARGS,
          viewport: { width: 1100, height: 900 },
        });
        try {
          const page = context.pages()[0] ?? await context.newPage();
          page.setDefaultTimeout(15_000);
          const problems: string[] = [];
          page.on("pageerror", (e) => problems.push(e.message));
          await page.goto(`${url}/`);
          await page.locator('tr[data-model="mnist"] .badge').first().waitFor();
          await page.locator("#digit-ui").waitFor({ state: "visible" });
          // A "1": one upright stroke down the middle of the pad.
          const box = (await page.locator("#pad").boundingBox())!;
          await page.mouse.move(box.x + 140, box.y + 40);
          await page.mouse.down();
          await page.mouse.move(box.x + 143, box.y + 240, { steps: 20 });
          await page.mouse.up();
          await page.locator("#digit").filter({ hasText: /^1$/ }).waitFor();
          assert.equal(await page.locator("#scores li").count(), 10);
          const keep = Deno.env.get("PAGE_SCREENSHOT");
          if (keep) await page.screenshot({ path: keep, fullPage: true });
          assert.deepEqual(problems, []);
        } finally {
          await context.close();
          await Deno.remove(profile, { recursive: true }).catch(() => {});
        }
      },
    });
  },
);
