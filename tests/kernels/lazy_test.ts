/**
 * kernels/lazy.ts: a graph's kernels without importing every family (issue 10, start-up).
 */
import assert from "node:assert/strict";
import { hasKernelFamily, kernelsFor, REWRITTEN_OPS } from "../../src/kernels/lazy.ts";
import { KERNEL_FAMILIES } from "../../src/kernels/families.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { familiesSource } from "../../scripts/gen_kernel_families.ts";

Deno.test("src/kernels/families.ts is what scripts/gen_kernel_families.ts generates from mod.ts", async () => {
  const have = await Deno.readTextFile(new URL("../../src/kernels/families.ts", import.meta.url));
  assert.equal(
    have,
    await familiesSource(),
    "stale: run deno run --allow-read --allow-write --allow-run scripts/gen_kernel_families.ts",
  );
});

Deno.test("the families register exactly the default registry's ops, each once", async () => {
  const all = KERNEL_FAMILIES.flatMap((f) => f.ops);
  assert.equal(new Set(all).size, all.length);
  assert.deepEqual([...all].sort(), defaultRegistry().ops());
  for (const f of KERNEL_FAMILIES) {
    assert.deepEqual((await f.load()).map((k) => k.op), f.ops, f.module);
  }
});

Deno.test("kernelsFor() holds the default registry's kernels for the ops asked, not others", async () => {
  const all = defaultRegistry();
  const r = await kernelsFor(["Add", "Const", "NotAnOp"]);
  assert.equal(r.get("Add"), all.get("Add"));
  assert.equal(r.get("Const"), all.get("Const"));
  // Whole families: Mul comes with Add.
  assert.equal(r.get("Mul"), all.get("Mul"));
  assert.equal(r.get("Conv2D"), undefined);
  assert.equal(r.get("NotAnOp"), undefined);
  assert.ok(hasKernelFamily("Conv2D"));
  assert.ok(!hasKernelFamily("NotAnOp"));
});

Deno.test("kernelsFor() brings the fused ops the plan's rewrites may make of a graph's ops", async () => {
  const r = await kernelsFor(["MatMul", "Conv2D", "DepthwiseConv2dNative"]);
  for (const op of Object.values(REWRITTEN_OPS).flat()) assert.ok(r.get(op), op);
  // Every op graph/fuse.ts names that has a kernel is reachable through REWRITTEN_OPS.
  const fuse = await Deno.readTextFile(new URL("../../src/graph/fuse.ts", import.meta.url));
  const named = new Set([...fuse.matchAll(/"(_Fused\w+)"/g)].map((m) => m[1]));
  const reachable = new Set(Object.values(REWRITTEN_OPS).flat());
  for (const op of named) {
    if (hasKernelFamily(op)) assert.ok(reachable.has(op), `${op} is missing from REWRITTEN_OPS`);
  }
});
