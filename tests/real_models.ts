/**
 * The development corpus of real-world graphs (`../shared/testdata/real-models/`, see its
 * README): where it is, its manifests, its input and reference tensors, and the comparison with
 * the corpus' tolerance. Shared by the corpus test and the `realmodels` bench.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { DataType } from "../src/tensor/dtype.ts";
import { Tensor } from "../src/tensor/tensor.ts";

/** The corpus folder (with a trailing slash). */
export const CORPUS_ROOT = fileURLToPath(
  new URL("../../shared/testdata/real-models/", import.meta.url),
);

/** Every model of the corpus. */
export const CORPUS_MODELS: readonly string[] = [
  "emotion",
  "ssrnet_age",
  "meet",
  "selfie",
  "movenet_multipose",
  "facemesh_attention",
  "facemesh_detection_full",
  "faceboxes",
];

/** One input or output of a case. */
export interface CorpusIo {
  readonly dtype: string;
  readonly shape: number[];
  readonly file: string;
}

/** One case: inputs and reference outputs keyed by signature key. */
export interface CorpusCase {
  readonly name: string;
  readonly batch: number;
  readonly inputs: Record<string, CorpusIo>;
  readonly outputs: Record<string, CorpusIo>;
}

/** A model's manifest (the parts the tests and the bench read). */
export interface CorpusManifest {
  readonly cases: CorpusCase[];
  readonly compare: { readonly rtol: number; readonly atol: number };
  readonly signature: {
    readonly inputs: Record<string, { tensorShape: { dim?: { size: string }[] } }>;
  };
  readonly latency_ms: Record<string, { median_ms: number } | undefined>;
}

/** True when the corpus is beside the repo. */
export const corpusPresent: boolean = (() => {
  try {
    return Deno.statSync(CORPUS_ROOT).isDirectory;
  } catch {
    return false;
  }
})();

/** The SavedModel version directory of a corpus model. */
export function corpusModelDir(model: string): string {
  return `${CORPUS_ROOT}${model}/model/1`;
}

/** Reads a corpus model's manifest. */
export async function readManifest(model: string): Promise<CorpusManifest> {
  return JSON.parse(await Deno.readTextFile(`${CORPUS_ROOT}${model}/manifest.json`));
}

const DTYPES: Record<string, DataType> = {
  DT_FLOAT: DataType.DT_FLOAT,
  DT_INT32: DataType.DT_INT32,
  DT_UINT8: DataType.DT_UINT8,
};

/** Reads one input or reference tensor (raw little-endian in the signature's dtype). */
export async function readCorpusTensor(model: string, spec: CorpusIo): Promise<Tensor> {
  const bytes = await Deno.readFile(`${CORPUS_ROOT}${model}/data/${spec.file}`);
  const dtype = DTYPES[spec.dtype];
  if (dtype === undefined) throw new Error(`${model}: dtype ${spec.dtype} is not in the corpus`);
  const data = dtype === DataType.DT_FLOAT
    ? new Float32Array(bytes.buffer)
    : dtype === DataType.DT_INT32
    ? new Int32Array(bytes.buffer)
    : bytes;
  return new Tensor(dtype, spec.shape, data);
}

/**
 * Counts the elements outside the corpus' tolerance (`|got − ref| ≤ atol + rtol·|ref|`);
 * a length mismatch counts every element.
 *
 * @returns the count and the first bad index (−1 if none)
 */
export function mismatches(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  rtol = 1e-3,
  atol = 1e-4,
): { bad: number; first: number } {
  if (got.length !== ref.length) return { bad: Math.max(got.length, ref.length), first: 0 };
  let bad = 0, first = -1;
  for (let i = 0; i < ref.length; i++) {
    if (!(Math.abs(got[i] - ref[i]) <= atol + rtol * Math.abs(ref[i]))) {
      if (first < 0) first = i;
      bad++;
    }
  }
  return { bad, first };
}
