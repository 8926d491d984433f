/**
 * Compiles the WebAssembly kernels from their text (`src/kernels/wasm/*.wat`) with wabt and
 * writes each as a TypeScript module exporting the binary (`<name>_wasm.ts`, base64 decoded once
 * at load). The generated modules are committed, so nothing compiles WAT at run time and
 * `deno compile` bundles the kernels through plain static imports.
 *
 * Usage: `deno run --allow-read --allow-write scripts/gen_wasm.ts [--check]`.
 * With `--check` nothing is written; the exit status is 1 when a generated file is stale.
 *
 * @module
 */
// A build-time tool only, so it stays out of the import map (nothing at run time imports it).
// deno-lint-ignore no-import-prefix
import wabt from "npm:wabt@1.0.39";

const WASM_DIR = new URL("../src/kernels/wasm/", import.meta.url);

/**
 * Kernels to build: the WAT file stem, the output stem, the export name of its bytes, and
 * whether to fuse multiply-adds into relaxed SIMD's `f32x4.relaxed_madd` (see `toRelaxed`).
 */
const KERNELS: readonly {
  stem: string;
  out: string;
  exportName: string;
  relaxed: boolean;
  /** Import the process's shared memory instead of owning one (see `toShared`). */
  shared?: boolean;
  /** Read vector constants from globals (see `toConstGlobals`). */
  constGlobals?: boolean;
}[] = [
  { stem: "dense", out: "dense", exportName: "DENSE_WASM", relaxed: false },
  { stem: "conv", out: "conv", exportName: "CONV_WASM", relaxed: false },
  { stem: "conv", out: "conv_relaxed", exportName: "CONV_RELAXED_WASM", relaxed: true },
  { stem: "image", out: "image", exportName: "IMAGE_WASM", relaxed: false },
  {
    stem: "image",
    out: "image_shared",
    exportName: "IMAGE_SHARED_WASM",
    relaxed: false,
    shared: true,
  },
  {
    stem: "activation",
    out: "activation",
    exportName: "ACTIVATION_WASM",
    relaxed: false,
    constGlobals: true,
  },
  {
    stem: "activation",
    out: "activation_shared",
    exportName: "ACTIVATION_SHARED_WASM",
    relaxed: false,
    shared: true,
    constGlobals: true,
  },
  {
    stem: "elementwise",
    out: "elementwise",
    exportName: "ELEMENTWISE_WASM",
    relaxed: false,
    constGlobals: true,
  },
  {
    stem: "elementwise",
    out: "elementwise_shared",
    exportName: "ELEMENTWISE_SHARED_WASM",
    relaxed: false,
    shared: true,
    constGlobals: true,
  },
];

/**
 * The module with every `v128.const` inside its functions (but all-zero ones) read from an
 * immutable global instead, one per distinct value: V8 rebuilds a 128-bit constant from
 * immediates at every use, several instructions each, where a global is one load. The float32
 * exp and tanh, with some twenty constants a vector, run 25–30% faster; the values are the same.
 */
export function toConstGlobals(text: string): string {
  const globals = new Map<string, string>();
  const zero = (e: SExpr[]) =>
    e.slice(2).every((t) => typeof t === "string" && /^0x0+$|^0(\.0*)?$/.test(t));
  const walk = (e: SExpr): SExpr => {
    if (typeof e === "string") return e;
    if (e[0] === "v128.const" && !zero(e)) {
      const key = printSExpr(e);
      let name = globals.get(key);
      if (name === undefined) globals.set(key, name = `$const${globals.size}`);
      return ["global.get", name];
    }
    return e.map(walk);
  };
  const [module] = parseSExprs(text);
  if (!Array.isArray(module) || module[0] !== "module") throw new Error("not a module");
  const fields = module.slice(1).map((f) => (Array.isArray(f) && f[0] === "func" ? walk(f) : f));
  if (globals.size === 0) throw new Error("no constant to hoist");
  const decls: SExpr[] = [...globals].map(([key, name]) => ["global", name, "v128", key]);
  // After the imports, which must come first.
  const isImport = (f: SExpr) => Array.isArray(f) && f[0] === "import";
  return printSExpr([
    "module",
    ...fields.filter(isImport),
    ...decls,
    ...fields.filter((f) => !isImport(f)),
  ]);
}

/** The memory a module owns, as its text declares it. */
const OWN_MEMORY = '(memory (export "memory") 1)';

/**
 * The variant of a module that owns its memory which imports the process's shared kernel memory
 * instead (`shared_memory.ts`, as `conv.wat` declares it), so that it computes on tensors
 * already there without copying them in and out.
 */
export function toShared(text: string): string {
  if (text.split(OWN_MEMORY).length !== 2) throw new Error("no single own memory to share");
  return text.replace(OWN_MEMORY, '(import "env" "memory" (memory 1 32768 shared))');
}

/** A parsed S-expression: an atom (keyword, name, number, string) or a list. */
type SExpr = string | SExpr[];

/** Parses WAT text into S-expressions, dropping comments. */
function parseSExprs(text: string): SExpr[] {
  const stack: SExpr[][] = [[]];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === ";" && text[i + 1] === ";") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (ch === "(" && text[i + 1] === ";") {
      const end = text.indexOf(";)", i);
      if (end < 0) throw new Error("unterminated block comment");
      i = end + 2;
    } else if (ch === "(") {
      stack.push([]);
      i++;
    } else if (ch === ")") {
      const list = stack.pop()!;
      if (stack.length === 0) throw new Error("unbalanced )");
      stack[stack.length - 1].push(list);
      i++;
    } else if (/\s/.test(ch)) {
      i++;
    } else if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      stack[stack.length - 1].push(text.slice(i, j + 1));
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s()]/.test(text[j])) j++;
      stack[stack.length - 1].push(text.slice(i, j));
      i = j;
    }
  }
  if (stack.length !== 1) throw new Error("unbalanced (");
  return stack[0];
}

function printSExpr(e: SExpr): string {
  return typeof e === "string" ? e : `(${e.map(printSExpr).join(" ")})`;
}

/**
 * The relaxed-SIMD variant of a module: every `(f32x4.add c (f32x4.mul a b))` becomes
 * `(f32x4.relaxed_madd a b c)`, which the engine may compute with one rounding (a fused
 * multiply-add) instead of two. Results then differ from the plain module in the last bits.
 */
export function toRelaxed(text: string): string {
  let count = 0;
  const walk = (e: SExpr): SExpr => {
    if (typeof e === "string") return e;
    const list = e.map(walk);
    const mul = list[2];
    if (
      list.length === 3 && list[0] === "f32x4.add" && Array.isArray(mul) && mul.length === 3 &&
      mul[0] === "f32x4.mul"
    ) {
      count++;
      return ["f32x4.relaxed_madd", mul[1], mul[2], list[1]];
    }
    return list;
  };
  const out = parseSExprs(text).map(walk).map(printSExpr).join("\n");
  if (count === 0) throw new Error("no multiply-add to relax");
  return out;
}

/** Base64 per line of the generated file, so it stays within the formatter's line width. */
const CHUNK = 88;

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

/** The TypeScript module for one binary, already formatted as `deno fmt` would. */
function render(
  stem: string,
  exportName: string,
  bytes: Uint8Array,
  relaxed: boolean,
  shared = false,
): string {
  const b64 = toBase64(bytes);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += CHUNK) lines.push(b64.slice(i, i + CHUNK));
  const body = lines.map((l, i) => `${i === 0 ? "" : "  "}"${l}"`).join(" +\n");
  return [
    `// Generated by scripts/gen_wasm.ts from src/kernels/wasm/${stem}.wat; do not edit.`,
    "",
    "/**",
    ` * The compiled \`${stem}.wat\` (${bytes.length} bytes): a WebAssembly module using 128-bit SIMD${
      relaxed || shared ? "," : "."
    }`,
    ...(relaxed ? [" * its multiply-adds fused into relaxed SIMD's `f32x4.relaxed_madd`."] : []),
    ...(shared ? [" * importing the process's shared kernel memory instead of owning one."] : []),
    " *",
    " * @module",
    " */",
    "",
    "const BASE64 =",
    `  ${body};`,
    "",
    `/** The WebAssembly binary of \`${stem}.wat\`. */`,
    `export const ${exportName}: Uint8Array<ArrayBuffer> = Uint8Array.from(`,
    "  atob(BASE64),",
    "  (c) => c.charCodeAt(0),",
    ");",
    "",
  ].join("\n");
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  const w = await wabt();
  let stale = 0;
  for (const { stem, out: outStem, exportName, relaxed, shared, constGlobals } of KERNELS) {
    const watUrl = new URL(`${stem}.wat`, WASM_DIR);
    const outUrl = new URL(`${outStem}_wasm.ts`, WASM_DIR);
    const source = await Deno.readTextFile(watUrl);
    let text = shared ? toShared(source) : relaxed ? toRelaxed(source) : source;
    if (constGlobals) text = toConstGlobals(text);
    // threads: the kernels import the process's shared memory (shared_memory.ts).
    const features = { simd: true, relaxed_simd: relaxed, threads: true };
    const mod = w.parseWat(`${stem}.wat`, text, features);
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      mod.resolveNames();
      // The typings omit validate's features argument, which the runtime takes (the
      // validator rejects shared memory without `threads`).
      (mod.validate as (f: typeof features) => void)(features);
      // Copied out of wabt's heap before the module is destroyed.
      bytes = new Uint8Array(
        mod.toBinary({ canonicalize_lebs: true, write_debug_names: false }).buffer,
      );
    } finally {
      mod.destroy();
    }
    // The engine must accept what wabt wrote (this also catches a feature wabt allows by flag).
    if (!WebAssembly.validate(bytes)) throw new Error(`${stem}.wat: the engine rejects the binary`);
    const out = render(stem, exportName, bytes, relaxed, shared);
    let old = "";
    try {
      old = await Deno.readTextFile(outUrl);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (old === out) continue;
    if (check) {
      console.error(`${outUrl.pathname} is stale: run scripts/gen_wasm.ts`);
      stale++;
    } else {
      await Deno.writeTextFile(outUrl, out);
      console.log(`wrote ${outUrl.pathname} (${bytes.length} bytes of wasm)`);
    }
  }
  if (stale > 0) Deno.exit(1);
}
