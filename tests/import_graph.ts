/**
 * The static module graph of an entry point (`deno info --json`, following static imports only:
 * a module reached only through a dynamic `import()` loads when that code runs), for the tests
 * that check what start-up loads.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface InfoModule {
  readonly specifier: string;
  readonly dependencies?: readonly {
    readonly code?: { readonly specifier: string };
    readonly isDynamic?: boolean;
  }[];
}

/**
 * The specifiers `entry` loads before any of its code runs (its static import closure).
 *
 * @param entry a path relative to the repository root
 */
export async function staticClosure(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", `${ROOT}deno.json`, `${ROOT}${entry}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  const modules = new Map<string, InfoModule>(
    (info.modules as InfoModule[]).map((m) => [m.specifier, m]),
  );
  const seen = new Set<string>();
  const visit = (s: string) => {
    if (seen.has(s)) return;
    seen.add(s);
    for (const d of modules.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code) visit(d.code.specifier);
    }
  };
  visit(info.roots[0]);
  return [...seen];
}

/** Whether a specifier of `closure` contains `tail`. */
export const has = (closure: readonly string[], tail: string): boolean =>
  closure.some((s) => s.includes(tail));
