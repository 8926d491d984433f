/**
 * Shared assertions for tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Code, ServingError } from "../src/errors.ts";

/**
 * Asserts that `fn` throws (or rejects with) a ServingError with `code` whose message contains
 * each string and matches each RegExp; returns the error.
 */
export async function assertServingError(
  fn: () => Promise<unknown> | unknown,
  code: Code,
  ...patterns: (RegExp | string)[]
): Promise<ServingError> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ServingError, `expected a ServingError, got ${err}`);
  assert.equal(Code[err.code], Code[code], err.message);
  for (const p of patterns) {
    if (typeof p === "string") assert.ok(err.message.includes(p), `"${err.message}" lacks "${p}"`);
    else assert.match(err.message, p);
  }
  return err;
}
