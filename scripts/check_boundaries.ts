/**
 * Checks the import boundaries of `src/`: every folder (or root file) is a unit placed in a layer
 * that follows the data flow of ARCHITECTURE.md, and a unit may import only itself and units of
 * lower layers. An import against the flow, or a cycle between folders, fails `deno task check`
 * with one line per offending import. (Deno's std keeps a script for the same job; TF Serving's
 * Bazel `visibility` does it at build time.)
 *
 * Run: `deno run --allow-read scripts/check_boundaries.ts [root]`.
 *
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";

/**
 * The layers, lowest first. A unit is a folder under `src/` or a file at its root; a few files
 * are units of their own where they sit above their folder (named by path).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ["errors.ts", "log.ts"],
  ["proto"],
  ["config", "tensor"],
  // File formats: SavedModel, TensorBundle, TFRecord readers (kernels' RestoreV2 reads bundles).
  ["saved_model"],
  ["kernels"],
  ["graph"],
  // The SavedModel writer builds graphs with the graph builder, so it sits above graph/.
  ["saved_model/writer.ts"],
  ["runtime"],
  ["servables"],
  ["exec"],
  ["sources", "core"],
  ["model_server"],
  ["monitoring"],
  ["trainer"],
  // Transports and clients are peers: a client speaks the wire protocol, not the server's code.
  ["api", "client"],
  ["server.ts"],
];

/** Where each unit sits. */
const LAYER_OF = new Map<string, number>(
  LAYERS.flatMap((units, i) => units.map((u) => [u, i] as [string, number])),
);

/** The unit a path (relative to `src/`) belongs to. */
export function unitOf(rel: string): string {
  if (LAYER_OF.has(rel)) return rel;
  const slash = rel.indexOf("/");
  return slash < 0 ? rel : rel.slice(0, slash);
}

/** One import that breaks the layering. */
export interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly from: string;
  readonly to: string;
}

// Static imports and re-exports (`import … from "x"`, `export … from "x"`, `import "x"`) and
// dynamic `import("x")` with a literal specifier.
const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** Relative import specifiers of a source text, comments stripped. */
export function importsOf(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec && spec.startsWith(".")) out.push(spec);
  }
  return out;
}

/**
 * Checks one file's imports.
 *
 * @param src absolute path of `src/`
 * @param file absolute path of the file
 * @param source its text
 */
export function checkFile(src: string, file: string, source: string): Violation[] {
  const rel = relative(src, file);
  const from = unitOf(rel);
  const fromLayer = LAYER_OF.get(from);
  const out: Violation[] = [];
  for (const spec of importsOf(source)) {
    const target = relative(src, resolve(dirname(file), spec));
    if (target.startsWith("..")) continue; // outside src/ (none today)
    const to = unitOf(target);
    if (to === from) continue;
    const toLayer = LAYER_OF.get(to);
    if (fromLayer === undefined || toLayer === undefined || toLayer >= fromLayer) {
      out.push({ file: rel, specifier: spec, from, to });
    }
  }
  return out;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) {
      if (p.endsWith(join("proto", "gen"))) continue; // generated: imports only itself
      yield* walk(p);
    } else if (e.isFile && e.name.endsWith(".ts")) yield p;
  }
}

/** Checks every file under `root/src`; returns the violations. */
export async function checkTree(root: string): Promise<Violation[]> {
  const src = resolve(root, "src");
  const out: Violation[] = [];
  for await (const file of walk(src)) {
    out.push(...checkFile(src, file, await Deno.readTextFile(file)));
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

if (import.meta.main) {
  const root = Deno.args[0] ?? resolve(dirname(new URL(import.meta.url).pathname), "..");
  const violations = await checkTree(root);
  for (const v of violations) {
    const why = LAYER_OF.has(v.from) && LAYER_OF.has(v.to)
      ? "against the data flow"
      : "unit not in LAYERS";
    console.error(`src/${v.file}: imports "${v.specifier}" (${v.from} → ${v.to}): ${why}`);
  }
  if (violations.length > 0) {
    console.error(
      `${violations.length} import(s) break the boundaries (scripts/check_boundaries.ts)`,
    );
    Deno.exit(1);
  }
  console.log("Import boundaries hold");
}
