/**
 * The web page in a real headless Chromium (Debian's `chromium` package, driven by
 * playwright-core): it lists the models, finds the MNIST-shaped one through the metadata API,
 * and a digit drawn with mouse (and touch) events on the pad is sent to `:predict` as 784
 * MNIST-style floats, with the scores and the predicted digit shown.
 *
 * The server is the monitoring routes plus a stand-in for the REST API's metadata and predict
 * that returns fixed scores. Set PAGE_SCREENSHOT=/path.png to keep a screenshot.
 *
 * Needs: `apt-get install -y chromium` and the `playwright-core` npm package (deno.json).
 * Without /usr/bin/chromium the test is skipped, except under CI=true where it fails.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, importChromium, inCI } from "./chromium.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { createMonitoring } from "../../src/monitoring/monitoring.ts";
import { monitoringRoutes } from "../../src/api/rest/monitoring_routes.ts";
import type { ModelsView, VersionStatus } from "../../src/monitoring/models_view.ts";

/** Fixed scores: digit 7 wins. */
const SCORES = [0.01, 0.02, 0.03, 0.04, 0.05, 0.02, 0.01, 0.72, 0.06, 0.04];

function dims(...sizes: number[]) {
  return { dim: sizes.map((s) => ({ size: String(s), name: "" })), unknown_rank: false };
}

/** The REST metadata of upstream's MNIST export: a predict and a classify signature. */
const MNIST_METADATA = {
  model_spec: { name: "mnist", signature_name: "", version: "1" },
  metadata: {
    signature_def: {
      signature_def: {
        serving_default: {
          inputs: { inputs: { dtype: "DT_STRING", tensor_shape: dims(), name: "tf_example:0" } },
          outputs: {
            scores: { dtype: "DT_FLOAT", tensor_shape: dims(-1, 10), name: "TopKV2:0" },
          },
          method_name: "tensorflow/serving/classify",
        },
        predict_images: {
          inputs: { images: { dtype: "DT_FLOAT", tensor_shape: dims(-1, 784), name: "x:0" } },
          outputs: { scores: { dtype: "DT_FLOAT", tensor_shape: dims(-1, 10), name: "y:0" } },
          method_name: "tensorflow/serving/predict",
        },
      },
    },
  },
};

const HALF_METADATA = {
  model_spec: { name: "half", signature_name: "", version: "123" },
  metadata: {
    signature_def: {
      signature_def: {
        serving_default: {
          inputs: { x: { dtype: "DT_FLOAT", tensor_shape: dims(-1, 1), name: "x:0" } },
          outputs: { y: { dtype: "DT_FLOAT", tensor_shape: dims(-1, 1), name: "y:0" } },
          method_name: "tensorflow/serving/predict",
        },
      },
    },
  },
};

const STATES: Record<string, VersionStatus[]> = {
  mnist: [{ version: 1, state: "AVAILABLE" }],
  half: [{ version: 123, state: "AVAILABLE" }],
  broken: [{
    version: 3,
    state: "END",
    error: new ServingError(Code.NOT_FOUND, "Could not find SavedModel .pb or .pbtxt at /m/3"),
  }],
};

const core: ModelsView = {
  models: Object.keys(STATES).map((name) => ({ name, basePath: `/models/${name}` })),
  status: (name) => STATES[name] ?? [],
};

interface PredictBody {
  signature_name: string;
  instances: number[][];
}

/** The monitoring routes plus a stand-in REST API; records the predict bodies. */
function startFakeServer() {
  const monitoring = createMonitoring({ core: () => core });
  const routes = monitoringRoutes({
    config: { prometheus: { enable: true, path: "/monitoring/prometheus/metrics" } },
    metrics: monitoring.metrics,
    core: () => core,
  });
  const predictions: PredictBody[] = [];
  const json = (body: unknown, status = 200) => Response.json(body, { status });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const routed = routes(req, url);
    if (routed) return routed;
    const t0 = performance.now();
    if (req.method === "GET" && url.pathname === "/v1/models/mnist/versions/1/metadata") {
      return json(MNIST_METADATA);
    }
    if (req.method === "GET" && url.pathname === "/v1/models/half/versions/123/metadata") {
      return json(HALF_METADATA);
    }
    if (req.method === "POST" && url.pathname === "/v1/models/mnist:predict") {
      predictions.push(await req.json());
      monitoring.observer({
        api: "predict",
        model: "mnist",
        version: 1,
        via: "rest",
        code: Code.OK,
        ms: performance.now() - t0,
      });
      return json({ predictions: [SCORES] });
    }
    return json({ error: "Not found" }, 404);
  });
  return { server, predictions };
}

/** Center of mass of a 28×28 image, in pixel-centre coordinates. */
function centerOfMass(pixels: number[]): [number, number] {
  let m = 0, x = 0, y = 0;
  pixels.forEach((v, i) => {
    m += v;
    x += v * ((i % 28) + 0.5);
    y += v * (Math.floor(i / 28) + 0.5);
  });
  return [x / m, y / m];
}

/** Waits until an element's text is exactly `text`. */
function waitText(page: Page, selector: string, text: string): Promise<void> {
  const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  return page.locator(selector).filter({ hasText: exact }).waitFor();
}

function checkInstance(body: PredictBody): void {
  assert.equal(body.signature_name, "predict_images");
  assert.equal(body.instances.length, 1);
  const pixels = body.instances[0];
  assert.equal(pixels.length, 784);
  assert.ok(pixels.every((v) => typeof v === "number" && v >= 0 && v <= 1), "values in [0, 1]");
  const ink = pixels.reduce((a, b) => a + b, 0);
  assert.ok(ink > 20 && ink < 300, `ink ${ink}`);
  assert.ok(pixels.some((v) => v > 0.9), "stroke centres are white");
  // The border stays black: the digit is fitted into the central 20×20 box, as MNIST's.
  for (let i = 0; i < 28; i++) {
    assert.equal(pixels[i], 0, "top row");
    assert.equal(pixels[27 * 28 + i], 0, "bottom row");
  }
  const [cx, cy] = centerOfMass(pixels);
  assert.ok(Math.abs(cx - 14) <= 0.75 && Math.abs(cy - 14) <= 0.75, `mass at ${cx}, ${cy}`);
}

Deno.test({
  name: "the web page shows the models and predicts a digit drawn on the pad",
  ignore: !haveChromium && !inCI,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { server, predictions } = startFakeServer();
    await using _server = server;
    const base = `http://127.0.0.1:${server.addr.port}/`;
    const profile = await Deno.makeTempDir({ prefix: "page_test_chromium_" });
    const chromium = await importChromium();
    // A persistent context on a fresh profile: playwright's launch() refuses --user-data-dir.
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 900 },
      hasTouch: true,
    });
    try {
      const page = context.pages()[0] ?? await context.newPage();
      page.setDefaultTimeout(15_000);
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      await page.goto(base);

      await t.step("the models table lists versions, states and errors", async () => {
        await page.locator('tr[data-model="mnist"] .badge').first().waitFor();
        assert.equal(await page.title(), "Model server");
        assert.equal(
          await page.locator('tr[data-model="mnist"] .badge').textContent(),
          "v1 AVAILABLE",
        );
        assert.equal(
          await page.locator('tr[data-model="broken"] .vererr').textContent(),
          "Could not find SavedModel .pb or .pbtxt at /m/3",
        );
        assert.equal(await page.locator("#ready").textContent(), "Not ready");
        assert.equal(
          await page.locator("#metrics-link").getAttribute("href"),
          "monitoring/prometheus/metrics",
        );
      });

      await t.step("only the MNIST-shaped model is offered for drawing", async () => {
        await page.locator("#digit-ui").waitFor({ state: "visible" });
        assert.deepEqual(await page.locator("#digit-model option").allTextContents(), ["mnist"]);
        assert.match(await page.locator("#digit-sig").textContent() ?? "", /predict_images/);
      });

      await t.step("a 7 drawn with the mouse is predicted on release", async () => {
        const box = (await page.locator("#pad").boundingBox())!;
        const at = (x: number, y: number) => [box.x + x, box.y + y] as const;
        await page.mouse.move(...at(70, 60));
        await page.mouse.down();
        await page.mouse.move(...at(200, 60), { steps: 12 });
        await page.mouse.move(...at(130, 230), { steps: 16 });
        await page.mouse.up();
        await waitText(page, "#digit", "7");
        assert.equal(predictions.length, 1);
        checkInstance(predictions[0]);
        const bars = page.locator("#scores li");
        assert.equal(await bars.count(), 10);
        assert.equal(await page.locator("#scores li.best").getAttribute("data-digit"), "7");
        assert.equal(await page.locator("#scores li.best .val").textContent(), "72.0%");
        assert.equal(await page.locator("#confidence").textContent(), "72.0% confident");
      });

      await t.step("the request shows up in the models table on the next poll", async () => {
        await waitText(page, 'tr[data-model="mnist"] td:nth-child(3)', "1");
      });

      await t.step("Clear, then a touch-drawn stroke and the Predict button", async () => {
        await page.locator("#clear").click();
        assert.equal(await page.locator("#digit").textContent(), "–");
        await page.locator("#auto").uncheck();
        const box = (await page.locator("#pad").boundingBox())!;
        const cdp = await context.newCDPSession(page);
        const touch = (type: "touchStart" | "touchMove" | "touchEnd", x: number, y: number) =>
          cdp.send("Input.dispatchTouchEvent", {
            type,
            touchPoints: type === "touchEnd" ? [] : [{ x: box.x + x, y: box.y + y }],
          });
        await touch("touchStart", 140, 50);
        for (let y = 50; y <= 230; y += 15) await touch("touchMove", 140 + (y - 50) / 30, y);
        await touch("touchEnd", 0, 0);
        await page.locator("#predict").click();
        await waitText(page, "#digit", "7");
        assert.equal(predictions.length, 2);
        checkInstance(predictions[1]);
        // A "1" is tall and thin: its ink sits in a narrow band of columns.
        const cols = new Set(
          predictions[1].instances[0].flatMap((v, i) => (v > 0.5 ? [i % 28] : [])),
        );
        assert.ok(cols.size <= 4, `a vertical stroke spans ${cols.size} columns`);
      });

      await t.step("a screenshot, and no errors on the page", async () => {
        await page.locator("#auto").check();
        await page.locator("#clear").click();
        const box = (await page.locator("#pad").boundingBox())!;
        const at = (x: number, y: number) => [box.x + x, box.y + y] as const;
        await page.mouse.move(...at(70, 60));
        await page.mouse.down();
        await page.mouse.move(...at(200, 60), { steps: 12 });
        await page.mouse.move(...at(130, 230), { steps: 16 });
        await page.mouse.up();
        await waitText(page, "#digit", "7");
        const keep = Deno.env.get("PAGE_SCREENSHOT");
        const path = keep ?? await Deno.makeTempFile({ prefix: "page_test_", suffix: ".png" });
        await page.screenshot({ path, fullPage: true });
        assert.ok(Deno.statSync(path).size > 10_000);
        if (!keep) await Deno.remove(path);
        assert.deepEqual(problems, []);
      });
    } finally {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
