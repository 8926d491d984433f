import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import {
  DataSet,
  parseIdx,
  readDataSets,
  readImages,
  readLabels,
  Rng,
  TEST_IMAGES,
  TEST_LABELS,
  TRAIN_IMAGES,
  TRAIN_LABELS,
} from "../../src/trainer/mnist_data.ts";
import { gzip, idx, mnistDir, tempDir } from "./mnist_files.ts";
import { assertServingError } from "../assert.ts";

const rejects = assertServingError;

Deno.test("readDataSets() splits the real MNIST files as read_data_sets does", async () => {
  const dir = await mnistDir();
  const log: string[] = [];
  const sets = await readDataSets(dir, { log: (l) => log.push(l) });
  assert.deepEqual(log, [
    `Extracting ${dir}/${TRAIN_IMAGES}`,
    `Extracting ${dir}/${TRAIN_LABELS}`,
    `Extracting ${dir}/${TEST_IMAGES}`,
    `Extracting ${dir}/${TEST_LABELS}`,
  ]);
  assert.equal(sets.train.numExamples, 55000);
  assert.equal(sets.validation.numExamples, 5000);
  assert.equal(sets.test.numExamples, 10000);
  assert.equal(sets.train.imageSize, 784);
  // The well-known first labels of each file; validation is the head of the training file.
  assert.deepEqual([...sets.validation.labels().slice(0, 10)], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  assert.deepEqual([...sets.test.labels().slice(0, 10)], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  const counts = new Array(10).fill(0);
  for (const l of sets.test.labels()) counts[l]++;
  assert.deepEqual(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  // The training split starts at example 5000 of the file.
  const trainImages = await readImages(`${dir}/${TRAIN_IMAGES}`);
  const trainLabels = await readLabels(`${dir}/${TRAIN_LABELS}`);
  assert.deepEqual([trainImages.count, trainImages.rows, trainImages.cols], [60000, 28, 28]);
  const first = sets.train.nextBatch(1);
  assert.equal(first.labels.indexOf(1), trainLabels[5000]);
  const scale = Math.fround(1 / 255);
  for (let k = 0; k < 784; k++) {
    assert.equal(first.images[k], Math.fround(trainImages.pixels[5000 * 784 + k] * scale));
  }
});

Deno.test("parseIdx() reads dims big-endian and rejects bad files, naming them", async (t) => {
  const ok = parseIdx(idx([2, 3], [1, 2, 3, 4, 5, 6]), "f");
  assert.deepEqual(ok.dims, [2, 3]);
  assert.equal(ok.magic, 0x0802);
  assert.deepEqual([...ok.data], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(parseIdx(idx([300], new Array(300).fill(7)), "f").dims, [300]);

  await t.step("a magic number that is not an unsigned-byte IDX array", async () => {
    await rejects(
      () => parseIdx(idx([1], [0], 0x0d01), "/data/x-idx1-ubyte"),
      Code.INVALID_ARGUMENT,
      "Invalid magic number 3329 in MNIST file: /data/x-idx1-ubyte",
    );
    await rejects(() => parseIdx(idx([1], [0], 0x01000801), "f"), Code.INVALID_ARGUMENT);
  });
  await t.step("truncated header and data, and trailing bytes", async () => {
    await rejects(() => parseIdx(new Uint8Array(3), "short"), Code.DATA_LOSS, "short", "too short");
    await rejects(
      () => parseIdx(idx([2, 3], [1, 2, 3, 4, 5, 6]).subarray(0, 10), "hdr"),
      Code.DATA_LOSS,
      "hdr",
      "needs 12 bytes",
    );
    await rejects(
      () => parseIdx(idx([2, 3], [1, 2, 3, 4, 5, 6]).subarray(0, 15), "cut"),
      Code.DATA_LOSS,
      "Cannot read MNIST file cut: dimensions [2, 3] need 6 bytes",
      "has 3 (truncated?)",
    );
    const long = new Uint8Array([...idx([2], [1, 2]), 9]);
    await rejects(() => parseIdx(long, "long"), Code.DATA_LOSS, "need 2 bytes", "has 3");
  });
});

Deno.test("readImages() and readLabels() check their magic numbers, labels and files", async () => {
  await using dir = await tempDir();
  const images = `${dir.path}/images`;
  const labels = `${dir.path}/labels`;
  await Deno.writeFile(images, idx([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 255], 2051));
  await Deno.writeFile(labels, idx([2], [3, 9], 2049));
  const im = await readImages(images);
  assert.deepEqual([im.count, im.rows, im.cols], [2, 2, 2]);
  assert.deepEqual([...await readLabels(labels)], [3, 9]);
  // Each file read as the other kind: upstream's wording.
  await rejects(
    () => readImages(labels),
    Code.INVALID_ARGUMENT,
    `Invalid magic number 2049 in MNIST image file: ${labels}`,
  );
  await rejects(
    () => readLabels(images),
    Code.INVALID_ARGUMENT,
    `Invalid magic number 2051 in MNIST label file: ${images}`,
  );
  await Deno.writeFile(labels, idx([2], [3, 10], 2049));
  await rejects(() => readLabels(labels), Code.DATA_LOSS, labels, "label 1 is 10");
  await rejects(
    () => readLabels(`${dir.path}/missing`),
    Code.NOT_FOUND,
    `Cannot read MNIST file ${dir.path}/missing: neither it nor ${dir.path}/missing.gz exists`,
  );
  // Upstream's gzipped files are read too.
  await Deno.writeFile(`${dir.path}/zipped.gz`, await gzip(idx([3], [1, 2, 3], 2049)));
  const lines: string[] = [];
  assert.deepEqual([...await readLabels(`${dir.path}/zipped`, (l) => lines.push(l))], [1, 2, 3]);
  assert.deepEqual(lines, [`Extracting ${dir.path}/zipped.gz`]);
  await Deno.writeFile(`${dir.path}/bad.gz`, new Uint8Array([1, 2, 3]));
  await rejects(() => readLabels(`${dir.path}/bad`), Code.DATA_LOSS, `${dir.path}/bad.gz`, "gzip");
});

Deno.test("readDataSets() names the corrupt or mismatched file of a copy of MNIST", async (t) => {
  const src = await mnistDir();
  await using dir = await tempDir();
  const copy = async (name: string, edit?: (b: Uint8Array) => Uint8Array) => {
    const b = await Deno.readFile(`${src}/${name}`);
    await Deno.writeFile(`${dir.path}/${name}`, edit ? edit(b) : b);
  };
  for (const name of [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]) await copy(name);
  await t.step("a truncated test image file", async () => {
    await copy(TEST_IMAGES, (b) => b.subarray(0, b.length - 100));
    await rejects(
      () => readDataSets(dir.path),
      Code.DATA_LOSS,
      `${dir.path}/${TEST_IMAGES}`,
      "need 7840000 bytes",
      "(truncated?)",
    );
    await copy(TEST_IMAGES);
  });
  await t.step("a corrupt magic number", async () => {
    await copy(TRAIN_LABELS, (b) => {
      const c = b.slice();
      c[3] = 0x03;
      return c;
    });
    await rejects(() => readDataSets(dir.path), Code.INVALID_ARGUMENT, TRAIN_LABELS);
    await copy(TRAIN_LABELS);
  });
  await t.step("labels that do not match the images in number", async () => {
    await Deno.writeFile(`${dir.path}/${TEST_LABELS}`, idx([3], [1, 2, 3], 2049));
    await rejects(
      () => readDataSets(dir.path),
      Code.INVALID_ARGUMENT,
      "MNIST test files",
      "10000 images but 3 labels",
    );
    await copy(TEST_LABELS);
  });
  await t.step("a missing file", async () => {
    await Deno.remove(`${dir.path}/${TRAIN_LABELS}`);
    await rejects(() => readDataSets(dir.path), Code.NOT_FOUND, `${dir.path}/${TRAIN_LABELS}`);
  });
  await t.step("an unreadable directory", async () => {
    await rejects(() => readDataSets(`${dir.path}/nowhere`), Code.NOT_FOUND, "nowhere");
  });
});

/** A data set of `n` one-pixel images whose pixel is the example's index. */
function indexed(n: number, seed = 0): DataSet {
  const pixels = Uint8Array.from({ length: n }, (_, i) => i);
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return new DataSet(pixels, labels, 1, seed);
}

function ids(batch: { images: Float32Array }): number[] {
  return Array.from(batch.images, (v) => Math.round(v * 255));
}

Deno.test("DataSet.nextBatch() walks in order, then reshuffles as next_batch does", () => {
  const ds = indexed(10);
  assert.deepEqual(ids(ds.nextBatch(4)), [0, 1, 2, 3]);
  const b = ds.nextBatch(4);
  assert.deepEqual(ids(b), [4, 5, 6, 7]);
  // One-hot labels.
  assert.deepEqual(
    Array.from(b.labels),
    [4, 5, 6, 7].flatMap((l) => Array.from({ length: 10 }, (_, k) => (k === l ? 1 : 0))),
  );
  assert.equal(ds.epochsCompleted, 0);
  // Two examples are left: the epoch ends, they are skipped, the data is shuffled.
  const c = ids(ds.nextBatch(4));
  assert.equal(ds.epochsCompleted, 1);
  const rest = [...c, ...ids(ds.nextBatch(4))];
  assert.equal(new Set(rest).size, 8, "no example twice within an epoch");
  assert.notDeepEqual(rest, [0, 1, 2, 3, 4, 5, 6, 7]);
  // The order persists: the labels follow their images.
  const all = ds.all();
  assert.deepEqual(
    Array.from(ds.labels()),
    ids(all).map((i) => i % 10),
  );
  assert.deepEqual([...ids(all)].sort((x, y) => x - y), [...Array(10).keys()]);
});

Deno.test("DataSet shuffles are seeded and reproducible", () => {
  const run = (seed: number) => {
    const ds = indexed(100, seed);
    const out: number[] = [];
    for (let i = 0; i < 6; i++) out.push(...ids(ds.nextBatch(30)));
    return out;
  };
  assert.deepEqual(run(1), run(1));
  assert.notDeepEqual(run(1), run(2));
  assert.deepEqual(run(1).slice(0, 90), [...Array(90).keys()], "the first epoch is in order");
});

Deno.test("DataSet.nextBatch() rejects a batch larger than the data set", async () => {
  await rejects(
    () => indexed(10).nextBatch(11),
    Code.INVALID_ARGUMENT,
    "batch of 11",
    "10 examples",
  );
  await rejects(() => indexed(10).nextBatch(0), Code.INVALID_ARGUMENT);
  await rejects(
    () => new DataSet(new Uint8Array(5), new Uint8Array(2), 2),
    Code.INVALID_ARGUMENT,
    "5 pixels are not 2 images of 2 pixels",
  );
});

Deno.test("Rng.interval() stays in range and covers it", () => {
  const rng = new Rng(42);
  const seen = new Array(7).fill(0);
  for (let i = 0; i < 7000; i++) {
    const v = rng.interval(6);
    assert.ok(v >= 0 && v <= 6);
    seen[v]++;
  }
  for (const c of seen) assert.ok(c > 850 && c < 1150, `uneven: ${seen}`);
  assert.equal(rng.interval(0), 0);
  const perm = Uint32Array.from({ length: 50 }, (_, i) => i);
  rng.shuffle(perm);
  assert.deepEqual([...perm].sort((a, b) => a - b), [...Array(50).keys()]);
});
