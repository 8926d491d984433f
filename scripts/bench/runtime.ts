/**
 * Runtime benchmark (issue: SavedModel runtime): a 784×10 dense+softmax signature and
 * half_plus_two, batch 1 and 1024, through the executor, next to the same arithmetic through
 * plain tfjs-core ops and a bare typed-array loop, all in one run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadModel } from "../../src/runtime/model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { table, time, us } from "./timing.ts";
import { denseWeights, random, writeDenseSoftmax } from "./models.ts";

const TESTDATA = new URL("../../../shared/testdata/tf-serving/", import.meta.url).pathname;

/** The bare loop: softmax(x·W + b), row by row. */
function bareDense(x: Float32Array, w: Float32Array, b: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * 10);
  for (let r = 0; r < n; r++) {
    const o = r * 10;
    for (let j = 0; j < 10; j++) out[o + j] = b[j];
    for (let k = 0; k < 784; k++) {
      const xv = x[r * 784 + k];
      const wk = k * 10;
      for (let j = 0; j < 10; j++) out[o + j] += xv * w[wk + j];
    }
    let max = -Infinity;
    for (let j = 0; j < 10; j++) if (out[o + j] > max) max = out[o + j];
    let sum = 0;
    for (let j = 0; j < 10; j++) sum += out[o + j] = Math.exp(out[o + j] - max);
    for (let j = 0; j < 10; j++) out[o + j] /= sum;
  }
  return out;
}

function bareHalfPlusTwo(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = 0.5 * x[i] + 2;
  return out;
}

/** Runs the section and returns its markdown report. */
export async function benchRuntime(): Promise<string> {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir({ prefix: "bench_dense_" });
  const { w, b } = denseWeights();
  await writeDenseSoftmax(dir);
  const dense = (await loadModel(dir)).signature("predict_images");
  const hp2 = (await loadModel(`${TESTDATA}saved_model_half_plus_two_cpu/00000123`))
    .signature("serving_default");
  const tw = tf.tensor2d(w, [784, 10]);
  const tb = tf.tensor1d(b);

  const rows: (string | number)[][] = [];
  for (const batch of [1, 1024]) {
    const x = random(batch * 784, 3 + batch);
    const xt = new Tensor(DataType.DT_FLOAT, [batch, 784], x);
    // The three must agree before their speed is compared.
    const a = dense.run({ images: xt })["scores"].data as Float32Array;
    const c = bareDense(x, w, b, batch);
    for (let i = 0; i < a.length; i++) {
      if (Math.abs(a[i] - c[i]) > 1e-5) {
        throw new Error(`dense mismatch at ${i}: ${a[i]} vs ${c[i]}`);
      }
    }
    const exec = time(() => dense.run({ images: xt }));
    const tfjs = time(() =>
      tf.tidy(() => tf.softmax(tf.add(tf.matMul(tf.tensor2d(x, [batch, 784]), tw), tb)).dataSync())
    );
    const bare = time(() => bareDense(x, w, b, batch));
    rows.push([
      `dense 784×10 + softmax`,
      batch,
      us(exec.usPerCall),
      us(tfjs.usPerCall),
      us(bare.usPerCall),
      (tfjs.usPerCall / exec.usPerCall).toFixed(1),
      (exec.usPerCall / bare.usPerCall).toFixed(2),
    ]);
  }
  for (const batch of [1, 1024]) {
    const x = random(batch, 9 + batch);
    const xt = new Tensor(DataType.DT_FLOAT, [batch, 1], x);
    const exec = time(() => hp2.run({ x: xt }));
    const tfjs = time(() =>
      tf.tidy(() =>
        tf.add(tf.mul(tf.scalar(0.5), tf.tensor2d(x, [batch, 1])), tf.scalar(2)).dataSync()
      )
    );
    const bare = time(() => bareHalfPlusTwo(x));
    rows.push([
      "half_plus_two (TF1, variables)",
      batch,
      us(exec.usPerCall),
      us(tfjs.usPerCall),
      us(bare.usPerCall),
      (tfjs.usPerCall / exec.usPerCall).toFixed(1),
      (exec.usPerCall / bare.usPerCall).toFixed(2),
    ]);
  }
  tw.dispose();
  tb.dispose();
  await Deno.remove(dir, { recursive: true });
  return [
    "### Runtime: one signature call (µs per call, median of 7 rounds)",
    "",
    table(
      [
        "model",
        "batch",
        "executor",
        "tfjs-core (cpu)",
        "bare loop",
        "tfjs ÷ executor",
        "executor ÷ bare",
      ],
      rows,
    ),
  ].join("\n");
}
