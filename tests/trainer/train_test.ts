import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { DataSet, type MnistDataSets, readDataSets } from "../../src/trainer/mnist_data.ts";
import { formatG, type TextSink, train } from "../../src/trainer/train.ts";
import { mnistDir } from "./mnist_files.ts";

/** Collects what is written. */
function sink(tty = false): TextSink & { text: string } {
  return {
    text: "",
    write(s: string) {
      this.text += s;
    },
    isTerminal: () => tty,
  };
}

/** Small random data sets of 784-pixel images (deterministic). */
function synthetic(n: number, seed = 7): MnistDataSets {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16;
  const pixels = Uint8Array.from({ length: n * 784 }, () => next() & 0xff);
  const labels = Uint8Array.from({ length: n }, () => next() % 10);
  const set = () => new DataSet(pixels, labels, 784);
  return { train: set(), validation: set(), test: set() };
}

Deno.test("formatG() formats as Python's %g", () => {
  const cases: [number, string][] = [
    [Math.fround(0.9092), "0.9092"],
    [1, "1"],
    [0, "0"],
    [0.5, "0.5"],
    [0.1, "0.1"],
    [100, "100"],
    [-2.5, "-2.5"],
    [123456, "123456"],
    [1234567, "1.23457e+06"],
    [999999.5, "1e+06"],
    [0.0001, "0.0001"],
    [9.9999995e-5, "0.0001"],
    [1e-5, "1e-05"],
    [0.000123456789, "0.000123457"],
    [1e100, "1e+100"],
    [Number.NaN, "nan"],
    [Number.POSITIVE_INFINITY, "inf"],
  ];
  for (const [x, want] of cases) assert.equal(formatG(x), want, `%g of ${x}`);
});

Deno.test("train() takes one gradient descent step on the summed cross-entropy", async () => {
  const data = synthetic(60);
  const batch = synthetic(60).train.nextBatch(50);
  const out = sink();
  const model = await train(data, { trainingIteration: 1, out });
  // From W = 0, b = 0: y = 0.1 everywhere, so d(loss)/d(logits) = 0.1 - y_ for each row.
  assert.ok(Math.abs(model.losses[0] - 50 * Math.log(10)) < 1e-3, `${model.losses[0]}`);
  const g = new Float64Array(50 * 10);
  for (let r = 0; r < 50; r++) {
    for (let k = 0; k < 10; k++) g[r * 10 + k] = 0.1 - batch.labels[r * 10 + k];
  }
  for (let k = 0; k < 10; k++) {
    let db = 0;
    for (let r = 0; r < 50; r++) db += g[r * 10 + k];
    assert.ok(Math.abs(model.biases[k] - -0.01 * db) < 1e-6, `b[${k}] = ${model.biases[k]}`);
  }
  for (const p of [0, 1, 100, 407, 783]) {
    for (let k = 0; k < 10; k++) {
      let dw = 0;
      for (let r = 0; r < 50; r++) dw += batch.images[r * 784 + p] * g[r * 10 + k];
      const w = model.weights[p * 10 + k];
      assert.ok(Math.abs(w - -0.01 * dw) < 1e-5, `W[${p},${k}] = ${w}, want ${-0.01 * dw}`);
    }
  }
  assert.equal(model.weights.length, 7840);
  assert.equal(model.biases.length, 10);
  assert.match(out.text, /^Training model...\n/);
  assert.match(out.text, /\ntraining accuracy [0-9.e+-]+\nDone training!\n$/);
});

Deno.test("train() lowers the loss over 50 iterations of the real data", async () => {
  const data = await readDataSets(await mnistDir());
  const out = sink();
  const model = await train(data, { trainingIteration: 50, out });
  const first = model.losses[0];
  const last10 = model.losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
  assert.ok(Math.abs(first - 50 * Math.log(10)) < 1e-3, `first loss ${first}`);
  assert.ok(last10 < first / 2, `the loss went from ${first} to ${last10}`);
  assert.ok(model.accuracy > 0.8, `accuracy ${model.accuracy}`);
  // Progress: a line every tenth of the run when not on a terminal.
  const lines = out.text.trimEnd().split("\n");
  assert.equal(lines[0], "Training model...");
  const progress = lines.filter((l) => l.startsWith("Iteration "));
  assert.equal(progress.length, 10);
  assert.match(progress[9], /^Iteration 50\/50 loss \d+\.\d{4} \d+\.\d it\/s$/);
  assert.deepEqual(lines.slice(-2), [
    `training accuracy ${formatG(model.accuracy)}`,
    "Done training!",
  ]);
});

Deno.test("train() redraws one progress bar on a terminal", async () => {
  let t = 0;
  const out = sink(true);
  await train(synthetic(120), { trainingIteration: 40, batchSize: 10, out, now: () => (t += 10) });
  const bar = out.text.split("\n")[1];
  assert.ok(bar.startsWith("\r["), JSON.stringify(bar));
  const draws = bar.split("\r").slice(1);
  assert.ok(draws.length > 1 && draws.length < 40, `${draws.length} draws`);
  assert.match(draws.at(-1)!, /^\[#{30}\] 40\/40 loss \d+\.\d{4} [\d.]+ it\/s$/);
  // Each redraw covers the previous one.
  for (let i = 1; i < draws.length; i++) {
    assert.ok(draws[i].length >= draws[i - 1].trimEnd().length);
  }
});

Deno.test("train() reaches TensorFlow's accuracy after upstream's 1000 iterations", async () => {
  const out = sink();
  const model = await train(await mnistDir(), { trainingIteration: 1000, out });
  // TF's tutorial prints "training accuracy 0.9092": no shuffle happens in 1000 batches of 50
  // from 55,000 examples, so the run is the same as TensorFlow's.
  assert.ok(model.accuracy > 0.905 && model.accuracy < 0.915, `accuracy ${model.accuracy}`);
  assert.match(out.text, /^Training model...\nExtracting .*train-images-idx3-ubyte\n/);
  assert.ok(out.text.includes(`training accuracy ${formatG(model.accuracy)}\nDone training!\n`));
});

Deno.test("train() rejects a non-positive iteration count with upstream's message", async () => {
  await assert.rejects(
    () => train(synthetic(60), { trainingIteration: 0 }),
    (e) =>
      e instanceof ServingError && e.code === Code.INVALID_ARGUMENT &&
      e.message === "Please specify a positive value for training iteration.",
  );
  const wrong = new DataSet(new Uint8Array(60 * 4), new Uint8Array(60), 4);
  await assert.rejects(
    () => train({ train: wrong, validation: wrong, test: wrong }, { trainingIteration: 1 }),
    /images of 4 pixels/,
  );
});
