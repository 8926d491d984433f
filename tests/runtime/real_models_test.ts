/**
 * Every model of the development corpus that the server loads (`../shared/testdata/
 * real-models/`, see its README) runs its batch-1 case through the executor with the fused
 * WebAssembly kernels, and its outputs match the references computed by TensorFlow.js
 * (`|got − ref| ≤ 1e-4 + 1e-3·|ref|`, the corpus' tolerance). Batch 1 only, to bound the time.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../src/runtime/model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const ROOT = fileURLToPath(new URL("../../../shared/testdata/real-models/", import.meta.url));

/** The corpus models the server loads today (faceboxes and facemesh_detection_full do not). */
const MODELS = [
  "emotion",
  "ssrnet_age",
  "meet",
  "selfie",
  "movenet_multipose",
  "facemesh_attention",
];

interface IoSpec {
  dtype: string;
  shape: number[];
  file: string;
}

interface Manifest {
  cases: {
    name: string;
    batch: number;
    inputs: Record<string, IoSpec>;
    outputs: Record<string, IoSpec>;
  }[];
  compare: { rtol: number; atol: number };
}

const DTYPES: Record<string, DataType> = {
  DT_FLOAT: DataType.DT_FLOAT,
  DT_INT32: DataType.DT_INT32,
  DT_UINT8: DataType.DT_UINT8,
};

async function read(model: string, spec: IoSpec): Promise<Tensor> {
  const bytes = await Deno.readFile(`${ROOT}${model}/data/${spec.file}`);
  const dtype = DTYPES[spec.dtype];
  assert.ok(dtype !== undefined, `dtype ${spec.dtype}`);
  const data = dtype === DataType.DT_FLOAT
    ? new Float32Array(bytes.buffer)
    : dtype === DataType.DT_INT32
    ? new Int32Array(bytes.buffer)
    : bytes;
  return new Tensor(dtype, spec.shape, data);
}

const present = (() => {
  try {
    return Deno.statSync(ROOT).isDirectory;
  } catch {
    return false;
  }
})();

for (const name of MODELS) {
  Deno.test({
    name: `real model ${name}: batch-1 outputs match the tfjs reference`,
    ignore: !present,
    async fn() {
      const manifest: Manifest = JSON.parse(
        await Deno.readTextFile(`${ROOT}${name}/manifest.json`),
      );
      const c = manifest.cases.find((k) => k.batch === 1);
      assert.ok(c, "a batch-1 case");
      const { rtol, atol } = manifest.compare;
      const model = await loadModel(`${ROOT}${name}/model/1`);
      const feeds: Record<string, Tensor> = {};
      for (const [k, spec] of Object.entries(c.inputs)) feeds[k] = await read(name, spec);
      const out = model.signature("serving_default").run(feeds);
      assert.deepEqual(Object.keys(out).sort(), Object.keys(c.outputs).sort());
      for (const [k, spec] of Object.entries(c.outputs)) {
        const ref = await read(name, spec);
        const got = out[k];
        assert.equal(got.dtype, ref.dtype, `${k}: dtype`);
        assert.deepEqual(got.shape, ref.shape, `${k}: shape`);
        const g = got.data as ArrayLike<number>, r = ref.data as ArrayLike<number>;
        let bad = 0, first = -1;
        for (let i = 0; i < r.length; i++) {
          if (!(Math.abs(g[i] - r[i]) <= atol + rtol * Math.abs(r[i]))) {
            if (first < 0) first = i;
            bad++;
          }
        }
        assert.equal(
          bad,
          0,
          `${k}: ${bad} elements off, first at ${first}: ${g[first]} vs ${r[first]}`,
        );
      }
    },
  });
}
