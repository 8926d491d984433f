/**
 * Seeded fuzzing of every decoder (see cases.ts): a few thousand cases each, each ending in a
 * result or a clean error; afterwards the process's RSS is under a generous bound. `deno task
 * fuzz` runs the same targets with many more cases and other seeds.
 */
import assert from "node:assert/strict";
import { TARGETS } from "./cases.ts";

const CASES: Record<string, number> = {
  grpc: 3000,
  tensor_proto: 3000,
  rest_json: 2000,
  example: 3000,
  saved_model: 1000,
  tensor_bundle: 2000,
  warmup: 2000,
};

for (const [name, fn] of Object.entries(TARGETS)) {
  Deno.test(`fuzz ${name}: every case ends in a result or a clean error`, () => {
    const stats = fn(1, CASES[name]);
    assert.equal(stats.ok + stats.errors, CASES[name]);
    const rss = Deno.memoryUsage().rss / (1 << 20);
    assert.ok(rss < 1500, `RSS ${rss} MB`);
  });
}
