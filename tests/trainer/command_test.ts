import assert from "node:assert/strict";
import { loadModel } from "../../src/runtime/model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  parseTrainArgs,
  runTrain,
  type TrainArgs,
  USAGE,
  UsageError,
} from "../../src/trainer/command.ts";
import { mnistDir, tempDir } from "./mnist_files.ts";

function sink() {
  return {
    text: "",
    write(s: string) {
      this.text += s;
    },
  };
}

Deno.test("parseTrainArgs() reads upstream's flags and defaults", () => {
  assert.deepEqual(parseTrainArgs(["/tmp/mnist"]), {
    trainingIteration: 1000,
    modelVersion: 1,
    workDir: undefined,
    exportBase: "/tmp/mnist",
  });
  assert.deepEqual(
    parseTrainArgs([
      "--training_iteration=20",
      "-model_version",
      "3",
      "--work_dir",
      "/data",
      "out",
    ]),
    { trainingIteration: 20, modelVersion: 3, workDir: "/data", exportBase: "out" },
  );
  assert.equal((parseTrainArgs(["--", "-odd-name"]) as TrainArgs).exportBase, "-odd-name");
  assert.equal(parseTrainArgs(["--help"]), "help");
  assert.equal(parseTrainArgs(["-h", "x"]), "help");
});

Deno.test("parseTrainArgs() rejects bad command lines with clear messages", () => {
  const cases: [string[], string][] = [
    [[], "Missing export_dir"],
    [["--training_iteration=5"], "Missing export_dir"],
    [["a", "b"], "Expected one export_dir, got 2: a b"],
    [["--foo=1", "x"], "Unknown flag: --foo=1"],
    [["--training_iteration=ten", "x"], 'Invalid value for --training_iteration: "ten"'],
    [["--model_version=1.5", "x"], 'Invalid value for --model_version: "1.5"'],
    [["x", "--model_version"], "Flag --model_version needs a value"],
    [["--training_iteration=0", "x"], "Please specify a positive value for training iteration."],
    [
      ["--training_iteration", "-3", "x"],
      "Please specify a positive value for training iteration.",
    ],
    [["--model_version=0", "x"], "Please specify a positive value for version number."],
    [["--work_dir=", "x"], "Flag --work_dir needs a directory"],
  ];
  for (const [argv, message] of cases) {
    assert.throws(
      () => parseTrainArgs(argv),
      (e) => e instanceof UsageError && e.message.startsWith(message),
      argv.join(" "),
    );
  }
});

Deno.test("runTrain() exits 2 with the usage for bad arguments", async () => {
  const out = sink();
  const err = sink();
  assert.equal(await runTrain(["--training_iteration=-1", "x"], out, err), 2);
  assert.equal(out.text, "");
  assert.equal(err.text, `Please specify a positive value for training iteration.\n${USAGE}\n`);
  const help = sink();
  assert.equal(await runTrain(["--help"], help, err), 0);
  assert.ok(help.text.startsWith(USAGE));
});

Deno.test("runTrain() refuses an existing version before training", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/1`);
  await Deno.writeTextFile(`${dir.path}/1/saved_model.pb`, "");
  const out = sink();
  const err = sink();
  assert.equal(await runTrain([dir.path], out, err), 2);
  assert.equal(out.text, "");
  assert.match(err.text, /^Error: Export directory already exists, and isn't empty\./);
  assert.ok(err.text.includes(`${dir.path}/1`));
});

Deno.test("runTrain() names an unreadable MNIST directory and exits 1", async () => {
  await using dir = await tempDir();
  const out = sink();
  const err = sink();
  const code = await runTrain([`--work_dir=${dir.path}/none`, `${dir.path}/models`], out, err);
  assert.equal(code, 1);
  assert.equal(out.text, "Training model...\n");
  assert.equal(
    err.text,
    `Error: Cannot read MNIST file ${dir.path}/none/train-images-idx3-ubyte: neither it nor ` +
      `${dir.path}/none/train-images-idx3-ubyte.gz exists\n`,
  );
  await assert.rejects(() => Deno.stat(`${dir.path}/models/1`), Deno.errors.NotFound);
});

Deno.test("runTrain() trains and exports EXPORT_BASE/VERSION with upstream's messages", async () => {
  await using dir = await tempDir();
  const work = await mnistDir();
  const out = sink();
  const err = sink();
  const code = await runTrain(
    ["--training_iteration=20", "--model_version=3", `--work_dir=${work}`, `${dir.path}/mnist`],
    out,
    err,
  );
  assert.equal(code, 0, err.text);
  assert.equal(err.text, "");
  const lines = out.text.trimEnd().split("\n");
  assert.equal(lines[0], "Training model...");
  assert.equal(lines[1], `Extracting ${work}/train-images-idx3-ubyte`);
  assert.match(lines.at(-4)!, /^training accuracy 0\.\d+$/);
  assert.deepEqual(lines.slice(-3), [
    "Done training!",
    `Exporting trained model to ${dir.path}/mnist/3`,
    "Done exporting!",
  ]);
  const model = await loadModel(`${dir.path}/mnist/3`);
  const scores = model.signature("predict_images").run({
    images: new Tensor(DataType.DT_FLOAT, [1, 784], new Float32Array(784)),
  }).scores;
  const sum = Array.from(scores.data as Float32Array).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-5);
});
