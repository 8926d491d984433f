/**
 * Kernels for one graph, importing only the families it uses (issue 10, start-up): a model load
 * does not pay for the modules (and WebAssembly builds, and re2js) of ops it never runs. The
 * registry it returns holds the same kernels as `mod.ts`'s `defaultRegistry()` for every op
 * asked for, so a plan compiles to the same kernels either way; an op no family registers is
 * left out, and reported as missing by the plan exactly as with the full registry.
 *
 * @module
 */
import type { Kernel } from "./kernel.ts";
import { KERNEL_FAMILIES, type KernelFamily } from "./families.ts";
import { KernelRegistry } from "./registry.ts";

/**
 * Ops the plan's graph rewrites (graph/fuse.ts) may put in place of an op of the graph: their
 * families are loaded with it, so a fused node finds its kernel.
 */
export const REWRITTEN_OPS: Readonly<Record<string, readonly string[]>> = {
  MatMul: ["_FusedMatMul", "_FusedDenseSoftmax"],
  Conv2D: ["_FusedConv2D"],
  DepthwiseConv2dNative: ["_FusedDepthwiseConv2dNative"],
};

let familyOf: Map<string, KernelFamily> | undefined;
/** Each family's kernels, imported once. */
const loaded = new Map<KernelFamily, Promise<readonly Kernel[]>>();

/** Whether some family registers a kernel for `op`. */
export function hasKernelFamily(op: string): boolean {
  return opIndex().has(op);
}

function opIndex(): Map<string, KernelFamily> {
  if (!familyOf) {
    familyOf = new Map();
    for (const f of KERNEL_FAMILIES) for (const op of f.ops) familyOf.set(op, f);
  }
  return familyOf;
}

/**
 * A registry holding the kernels of `ops` (and of the ops rewrites may turn them into), whose
 * families are imported on first use.
 *
 * @param ops op names, e.g. every node's op of a graph and of its function library
 * @returns a registry of the families those ops belong to
 */
export async function kernelsFor(ops: Iterable<string>): Promise<KernelRegistry> {
  const index = opIndex();
  const families = new Set<KernelFamily>();
  const add = (op: string) => {
    const f = index.get(op);
    if (f) families.add(f);
  };
  for (const op of ops) {
    add(op);
    for (const r of REWRITTEN_OPS[op] ?? []) add(r);
  }
  // In mod.ts's order, so the registry's contents do not depend on the order of `ops`.
  const wanted = KERNEL_FAMILIES.filter((f) => families.has(f));
  const lists = await Promise.all(wanted.map((f) => {
    let p = loaded.get(f);
    if (!p) {
      p = f.load();
      loaded.set(f, p);
      // A failed import is tried again by the next load rather than cached.
      p.catch(() => loaded.delete(f));
    }
    return p;
  }));
  return new KernelRegistry(...lists.map((l) => [...l]));
}
