/**
 * The softmax regression of TF Serving's `mnist_saved_model.py` ("MNIST For ML Beginners"),
 * trained with tfjs on its CPU backend exactly as the script trains it: `y = softmax(x·W + b)`
 * with W (784×10) and b (10) starting at zero, batches of 50 from `next_batch`, plain gradient
 * descent at 0.01 on the summed cross-entropy `-Σ y_ · log(y)`, then accuracy on the 10,000 test
 * images.
 *
 * tfjs-core ships its gradient functions only in its ES module files, which Deno cannot load
 * from the npm package (they import without file extensions), so the gradients of the seven
 * kernels used here are registered below, written as TensorFlow's Python gradients are
 * (math_grad.py, nn_grad.py): the backward pass is the one the script's graph runs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { Code, ServingError } from "../errors.ts";
import { type MnistDataSets, NUM_CLASSES, readDataSets } from "./mnist_data.ts";

/** Where progress and results are printed; `isTerminal` enables the redrawn progress bar. */
export interface TextSink {
  /** Writes text as is (lines end with `\n`). */
  write(text: string): void;
  /** True if the sink is a terminal. */
  isTerminal?(): boolean;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** Training steps (`--training_iteration`, upstream's default 1000). */
  readonly trainingIteration: number;
  /** Examples per step (upstream: 50). */
  readonly batchSize?: number;
  /** Gradient descent step size (upstream: 0.01). */
  readonly learningRate?: number;
  /** Seeds the per-epoch shuffle when the data is read here (default 0). */
  readonly seed?: number;
  /** Receives `Training model...`, the progress, the accuracy and `Done training!`. */
  readonly out?: TextSink;
  /** Clock in milliseconds (tests). */
  readonly now?: () => number;
}

/** The trained parameters and how training went. */
export interface TrainedModel {
  /** W, row-major `[784, 10]`. */
  readonly weights: Float32Array;
  /** b, `[10]`. */
  readonly biases: Float32Array;
  /** Accuracy on the test images, as the float32 TensorFlow computes. */
  readonly accuracy: number;
  /** The summed cross-entropy of each step's batch, before that step's update. */
  readonly losses: Float32Array;
  /** Wall time of the training loop, in seconds. */
  readonly seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Gradients, as TensorFlow defines them.

/** Sums `t` down to `shape` over broadcast dimensions (BroadcastGradientArgs + Sum + Reshape). */
function unbroadcast(t: tf.Tensor, shape: readonly number[]): tf.Tensor {
  if (tf.util.arraysEqual(t.shape, shape as number[])) return t;
  const lead = t.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < t.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && t.shape[i] !== 1)) axes.push(i);
  }
  return tf.reshape(tf.sum(t, axes), shape as number[]);
}

const GRADIENTS: tf.GradConfig[] = [
  // _NegGrad: -grad.
  { kernelName: "Neg", gradFunc: (dy) => ({ x: () => tf.neg(dy as tf.Tensor) }) },
  // _SumGrad: the gradient reshaped to keep the reduced dims, then tiled to the input shape.
  {
    kernelName: "Sum",
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => {
      const rank = x.rank;
      const axis = attrs.axis as number | number[] | null;
      const axes = axis === null || axis === undefined
        ? [...Array(rank).keys()]
        : (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a));
      const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      return { x: () => tf.broadcastTo(tf.reshape(dy as tf.Tensor, kept), x.shape) };
    },
  },
  // _MulGrad: grad * y for x, x * grad for y, each summed over its broadcast dims.
  {
    kernelName: "Multiply",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b]) => ({
      a: () => unbroadcast(tf.mul(dy as tf.Tensor, b), a.shape),
      b: () => unbroadcast(tf.mul(a, dy as tf.Tensor), b.shape),
    }),
  },
  // _LogGrad: grad * reciprocal(x).
  {
    kernelName: "Log",
    inputsToSave: ["x"],
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy as tf.Tensor, tf.reciprocal(x)) }),
  },
  // _SoftmaxGrad: (grad - sum(grad * softmax, -1, keepdims)) * softmax.
  {
    kernelName: "Softmax",
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => ({
      logits: () => {
        const g = dy as tf.Tensor;
        const sum = tf.sum(tf.mul(g, y), attrs.dim as number, true);
        return tf.mul(tf.sub(g, sum), y);
      },
    }),
  },
  // _AddGrad: the gradient, summed over each input's broadcast dims.
  {
    kernelName: "Add",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b]) => ({
      a: () => unbroadcast(dy as tf.Tensor, a.shape),
      b: () => unbroadcast(dy as tf.Tensor, b.shape),
    }),
  },
  // _MatMulGrad, for each combination of transposes.
  {
    kernelName: "BatchMatMul",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b], attrs) => {
      const g = dy as tf.Tensor;
      if (a.rank !== 2 || b.rank !== 2) {
        throw new ServingError(
          Code.UNIMPLEMENTED,
          `Cannot differentiate a batched MatMul of ranks ${a.rank} and ${b.rank}`,
        );
      }
      const ta = attrs.transposeA as boolean;
      const tb = attrs.transposeB as boolean;
      if (!ta && !tb) {
        return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
      }
      if (!ta && tb) {
        return { a: () => tf.matMul(g, b), b: () => tf.matMul(g, a, true, false) };
      }
      if (ta && !tb) {
        return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g) };
      }
      return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
    },
  },
];

let gradientsRegistered = false;

/** Registers the gradients above, unless tfjs's own (from `@tensorflow/tfjs`) are loaded. */
function registerGradients(): void {
  if (gradientsRegistered) return;
  for (const g of GRADIENTS) {
    if (tf.getGradient(g.kernelName) === undefined) tf.registerGradient(g);
  }
  gradientsRegistered = true;
}

// ---------------------------------------------------------------------------------------------
// Output.

/**
 * Formats a number as Python's `'%g' % x`: 6 significant digits, trailing zeros dropped,
 * exponent notation below 1e-4 or from 1e6 (`0.9092`, `1`, `1e-05`, `1.23457e+06`).
 */
export function formatG(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const exp = Number(x.toExponential(5).split("e")[1]);
  if (exp < -4 || exp >= 6) {
    const [mantissa, e] = x.toExponential(5).split("e");
    const m = mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa;
    const sign = e.startsWith("-") ? "-" : "+";
    return `${m}e${sign}${e.replace(/^[+-]/, "").padStart(2, "0")}`;
  }
  const fixed = x.toFixed(Math.max(0, 5 - exp));
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

/** Draws the progress: a redrawn bar on a terminal, a line per tenth of the run otherwise. */
class Progress {
  readonly #tty: boolean;
  readonly #every: number;
  #lastDraw = -Infinity;
  #width = 0;

  constructor(
    private readonly out: TextSink | undefined,
    private readonly total: number,
    private readonly start: number,
  ) {
    this.#tty = out?.isTerminal?.() ?? false;
    this.#every = Math.max(1, Math.ceil(total / 10));
  }

  update(step: number, loss: number, now: number): void {
    if (!this.out) return;
    const seconds = (now - this.start) / 1000;
    const rate = seconds > 0 ? step / seconds : 0;
    const stats = `${step}/${this.total} loss ${loss.toFixed(4)} ${rate.toFixed(1)} it/s`;
    if (this.#tty) {
      // Redraw at most ~20 times a second; always draw the last step.
      if (step !== this.total && now - this.#lastDraw < 50) return;
      this.#lastDraw = now;
      const cells = 30;
      const done = Math.round((cells * step) / this.total);
      const line = `[${"#".repeat(done)}${"-".repeat(cells - done)}] ${stats}`;
      this.out.write(`\r${line.padEnd(this.#width)}`);
      this.#width = line.length;
      if (step === this.total) this.out.write("\n");
    } else if (step % this.#every === 0 || step === this.total) {
      this.out.write(`Iteration ${stats}\n`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Training.

/**
 * Trains the softmax regression as `mnist_saved_model.py` does and reports as it prints:
 * `Training model...`, a progress bar, `training accuracy X` (X as `%g`) and `Done training!`.
 *
 * @param data the data sets, or the directory of the four IDX files to read them from (read
 *   after `Training model...` is printed, with upstream's `Extracting <file>` lines)
 * @throws ServingError INVALID_ARGUMENT for a non-positive iteration count or batch size, or
 *   images that are not 784 pixels; the data reader's errors
 */
export async function train(
  data: MnistDataSets | string,
  options: TrainOptions,
): Promise<TrainedModel> {
  const iterations = options.trainingIteration;
  const batchSize = options.batchSize ?? 50;
  const learningRate = options.learningRate ?? 0.01;
  const out = options.out;
  const now = options.now ?? (() => performance.now());
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      "Please specify a positive value for training iteration.",
    );
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new ServingError(Code.INVALID_ARGUMENT, `Invalid batch size ${batchSize}`);
  }
  out?.write("Training model...\n");
  const sets = typeof data === "string"
    ? await readDataSets(data, { seed: options.seed, log: (l) => out?.write(`${l}\n`) })
    : data;
  const features = sets.train.imageSize;
  if (features !== 784 || sets.test.imageSize !== 784) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot train on images of ${features} pixels: the model takes 784 (28x28)`,
    );
  }

  registerGradients();
  // PROD silences tfjs's "install the node backend" banner (and its debug checks).
  const env = tf.env();
  const prod = env.getBool("PROD");
  env.set("PROD", true);
  const previousBackend = tf.getBackend();
  try {
    if (!(await tf.setBackend("cpu"))) {
      throw new ServingError(Code.INTERNAL, "Cannot start the tfjs CPU backend");
    }
    return await trainLoop(sets, { iterations, batchSize, learningRate, out, now });
  } finally {
    if (previousBackend && previousBackend !== "cpu") await tf.setBackend(previousBackend);
    env.set("PROD", prod);
  }
}

interface LoopOptions {
  readonly iterations: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly out: TextSink | undefined;
  readonly now: () => number;
}

function trainLoop(sets: MnistDataSets, o: LoopOptions): TrainedModel {
  const features = sets.train.imageSize;
  const w = tf.variable(tf.zeros([features, NUM_CLASSES]));
  const b = tf.variable(tf.zeros([NUM_CLASSES]));
  const optimizer = tf.train.sgd(o.learningRate);
  const losses = new Float32Array(o.iterations);
  try {
    const start = o.now();
    const progress = new Progress(o.out, o.iterations, start);
    for (let i = 0; i < o.iterations; i++) {
      const batch = sets.train.nextBatch(o.batchSize);
      const cost = tf.tidy(() => {
        const x = tf.tensor2d(batch.images, [batch.size, features]);
        const labels = tf.tensor2d(batch.labels, [batch.size, NUM_CLASSES]);
        return optimizer.minimize(
          () => {
            const y = tf.softmax(tf.add(tf.matMul(x, w), b));
            return tf.neg(tf.sum(tf.mul(labels, tf.log(y))));
          },
          true,
          [w, b],
        )!;
      });
      losses[i] = cost.dataSync()[0];
      cost.dispose();
      progress.update(i + 1, losses[i], o.now());
    }
    const seconds = (o.now() - start) / 1000;

    const test = sets.test.all();
    const correct = tf.tidy(() => {
      const x = tf.tensor2d(test.images, [test.size, features]);
      const y = tf.softmax(tf.add(tf.matMul(x, w), b));
      const truth = tf.argMax(tf.tensor2d(test.labels, [test.size, NUM_CLASSES]), 1);
      return tf.sum(tf.cast(tf.equal(tf.argMax(y, 1), truth), "int32"));
    });
    // reduce_mean over float32 0/1 values: an exact sum, then one rounded division.
    const accuracy = Math.fround(correct.dataSync()[0] / test.size);
    correct.dispose();
    o.out?.write(`training accuracy ${formatG(accuracy)}\n`);
    o.out?.write("Done training!\n");
    return {
      weights: (w.dataSync() as Float32Array).slice(),
      biases: (b.dataSync() as Float32Array).slice(),
      accuracy,
      losses,
      seconds,
    };
  } finally {
    optimizer.dispose();
    w.dispose();
    b.dispose();
  }
}
