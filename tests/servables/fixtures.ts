/**
 * Shared fixtures of the servables tests: the TF Serving testdata models (loaded once per file),
 * tf.Example builders, and an assertion for ServingError code and text.
 *
 * @module
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  type Example,
  ExampleSchema,
} from "../../src/proto/gen/tensorflow/core/example/example_pb.ts";
import { type Input, InputSchema } from "../../src/proto/gen/tensorflow_serving/apis/input_pb.ts";
import type { ModelSpec } from "../../src/proto/gen/tensorflow_serving/apis/model_pb.ts";
import { type Code, ServingError } from "../../src/errors.ts";
import { loadModel, type Model } from "../../src/runtime/model.ts";
import { fileURLToPath } from "node:url";

/** The TF1 half_plus_two (`saved_model_half_plus_two_cpu/00000123`). */
export const TF1 = "saved_model_half_plus_two_cpu/00000123";
/** The TF1 half_plus_two with more signatures (`saved_model_half_plus_two_2_versions/00000123`). */
export const TF1_2_VERSIONS = "saved_model_half_plus_two_2_versions/00000123";
/** The TF2 half_plus_two (`saved_model_half_plus_two_tf2_cpu/00000123`). */
export const TF2 = "saved_model_half_plus_two_tf2_cpu/00000123";
/** The version of all three. */
export const VERSION = 123;

/** The shared TF Serving testdata folder (beside the repo). */
const TESTDATA = new URL("../../../shared/testdata/tf-serving/", import.meta.url);

/** A path inside the testdata folder. */
export function testdata(rel: string): string {
  return fileURLToPath(new URL(rel, TESTDATA));
}

const cache = new Map<string, Promise<Model>>();

/** Loads a testdata model version (once per test file). */
export function model(rel: string): Promise<Model> {
  let m = cache.get(rel);
  if (!m) cache.set(rel, m = loadModel(testdata(rel)));
  return m;
}

/** A tf.Example of float features. */
export function example(features: Record<string, number[]>): Example {
  return create(ExampleSchema, {
    features: {
      feature: Object.fromEntries(
        Object.entries(features).map(([k, v]) => [k, {
          kind: { case: "floatList" as const, value: { value: v } },
        }]),
      ),
    },
  });
}

/** An Input of `example_list`. */
export function exampleList(...examples: Example[]): Input {
  return create(InputSchema, { kind: { case: "exampleList", value: { examples } } });
}

/** An Input of `example_list_with_context`. */
export function exampleListWithContext(context: Example, ...examples: Example[]): Input {
  return create(InputSchema, {
    kind: { case: "exampleListWithContext", value: { examples, context } },
  });
}

/** Asserts that `fn` throws a ServingError with `code` and exactly `message` (or matching it). */
export function assertServingError(fn: () => unknown, code: Code, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, `expected a ServingError, got ${e}`);
    assert.equal(e.code, code, `code of "${e.message}"`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

/** Upstream's `_VerifyModelSpec`: name, signature name and version of a response's ModelSpec. */
export function assertModelSpec(
  spec: ModelSpec | undefined,
  name: string,
  signatureName: string,
  version: number,
): void {
  assert.ok(spec, "model_spec is set");
  assert.equal(spec.name, name);
  assert.equal(spec.signatureName, signatureName);
  assert.equal(spec.versionChoice.case, "version");
  assert.equal(spec.versionChoice.value.value, BigInt(version));
}
