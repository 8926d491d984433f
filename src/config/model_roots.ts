/**
 * Model roots: the directories the server may read models from (`--allowed_model_roots`, or the
 * base paths named at start; see `launch.ts`). Deno's `--allow-read` enforces them per path, but
 * Deno checks the path as written, not where a symlink leads, and a path under `/proc/self` can
 * lead anywhere (`/proc/self/root` is `/`). So the server checks too, before it reads:
 *
 * - {@linkcode checkConfigWithinRoots}: every base path of a config (at start, on a reload by
 *   RPC or by file) lies under a root and not under `/proc`, `/sys` or `/dev`; otherwise the
 *   whole config is refused with PERMISSION_DENIED and the models already served keep serving.
 * - {@linkcode checkVersionDirConfined}: before a version directory is loaded, every symlink in
 *   it must resolve under a root; otherwise the load fails with PERMISSION_DENIED (reported by
 *   GetModelStatus) and the server keeps serving the rest.
 *
 * The check runs on resolved paths on both sides (a root that is itself a symlink is compared by
 * its target). It cannot close the race of a symlink swapped in between the check and the read;
 * Deno's permissions still bound what such a race can reach to the granted paths.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";

/** Pseudo file systems no model may come from: they hold live views of this process and host. */
export const FORBIDDEN_PREFIXES: readonly string[] = ["/proc", "/sys", "/dev"];

/** Whether `path` is `prefix` or lies below it (both absolute and normalized). */
export function isUnder(path: string, prefix: string): boolean {
  if (prefix === "/") return path.startsWith("/");
  return path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`);
}

/**
 * Makes a path absolute (against `cwd`) and normalized: no `.`/`..` segments, no repeated or
 * trailing slashes. Symlinks are not followed.
 */
export function absolutePath(path: string, cwd: string): string {
  const full = path.startsWith("/") ? path : `${cwd}/${path}`;
  const out: string[] = [];
  for (const seg of full.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

/** The forbidden prefix `path` lies under, if any. */
function forbiddenPrefix(path: string): string | undefined {
  return FORBIDDEN_PREFIXES.find((p) => isUnder(path, p));
}

/**
 * Refuses a path under `/proc`, `/sys` or `/dev`, as written and as resolved.
 *
 * @param what the role of the path, for the message ("model foo's base path")
 * @throws {ServingError} PERMISSION_DENIED
 */
export function refuseForbidden(path: string, what: string, cwd = "/"): void {
  const p = forbiddenPrefix(absolutePath(path, cwd));
  if (p !== undefined) {
    throw new ServingError(
      Code.PERMISSION_DENIED,
      `Refusing ${what} ${path}: nothing is served from ${p} (it exposes this process and host)`,
    );
  }
}

/** `Deno.realPath`, or the path itself when it does not exist (yet) or cannot be resolved. */
async function resolved(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

/**
 * Resolves roots once: absolute, normalized, and with symlinks followed where they exist.
 *
 * @param roots the roots as given
 * @param cwd what relative roots are resolved against
 * @throws {ServingError} PERMISSION_DENIED for a root under `/proc`, `/sys` or `/dev`
 */
export async function resolveRoots(roots: readonly string[], cwd: string): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    refuseForbidden(r, "model root", cwd);
    const abs = absolutePath(r, cwd);
    const real = await resolved(abs);
    refuseForbidden(real, "model root", cwd);
    for (const p of new Set([abs, real])) if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** A model that lists its base path (what {@linkcode checkConfigWithinRoots} needs). */
export interface ModelPath {
  /** The model name. */
  readonly name: string;
  /** Its base path, possibly relative. */
  readonly basePath: string;
}

/**
 * Checks that every base path lies under one of `roots` (as written, and, where it exists, as
 * resolved) and none under `/proc`, `/sys` or `/dev`.
 *
 * @param models the config's models
 * @param roots resolved roots (from {@linkcode resolveRoots}); undefined = no roots configured
 * @param cwd what relative base paths are resolved against
 * @throws {ServingError} PERMISSION_DENIED naming the model, its path and the roots
 */
export async function checkConfigWithinRoots(
  models: readonly ModelPath[],
  roots: readonly string[] | undefined,
  cwd: string,
): Promise<void> {
  for (const m of models) {
    const what = `model ${m.name}'s base path`;
    refuseForbidden(m.basePath, what, cwd);
    const abs = absolutePath(m.basePath, cwd);
    const real = await resolved(abs);
    refuseForbidden(real, what, cwd);
    if (roots === undefined) continue;
    if (!roots.some((r) => isUnder(abs, r)) || !roots.some((r) => isUnder(real, r))) {
      const shown = real === abs ? abs : `${abs} (${real})`;
      throw new ServingError(
        Code.PERMISSION_DENIED,
        `Model ${m.name}'s base path ${shown} is outside the allowed model roots ` +
          `(${roots.join(", ")}); start the server with --allowed_model_roots naming it`,
      );
    }
  }
}

/** At most this many entries are walked in one version directory (a bound on a hostile tree). */
export const MAX_VERSION_DIR_ENTRIES = 100_000;

/**
 * Checks that nothing in a version directory leads outside the roots: every symlink in the tree
 * (to files or directories; a linked directory is walked too, once) must resolve under a root,
 * and the directory itself must too.
 *
 * @param dir the version directory
 * @param roots resolved roots (from {@linkcode resolveRoots})
 * @throws {ServingError} PERMISSION_DENIED naming the link and its target
 */
export async function checkVersionDirConfined(
  dir: string,
  roots: readonly string[],
): Promise<void> {
  const outside = (p: string) =>
    forbiddenPrefix(p) !== undefined || !roots.some((r) => isUnder(p, r));
  const deny = (link: string, target: string) =>
    new ServingError(
      Code.PERMISSION_DENIED,
      `Permission denied: ${link} leads to ${target}, outside the allowed model roots ` +
        `(${roots.join(", ")})`,
    );
  const top = await resolved(dir);
  if (outside(top)) throw deny(dir, top);
  let seen = 0;
  // Real paths of the directories walked: a link to a directory inside the roots is walked too
  // (what it holds is read through it), once, so link cycles end.
  const visited = new Set<string>([top]);
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      if (++seen > MAX_VERSION_DIR_ENTRIES) {
        throw new ServingError(
          Code.RESOURCE_EXHAUSTED,
          `Version directory ${dir} holds more than ${MAX_VERSION_DIR_ENTRIES} entries`,
        );
      }
      const p = `${d}/${e.name}`;
      if (e.isSymlink) {
        let target: string;
        try {
          target = await Deno.realPath(p);
        } catch {
          // A dangling link reads as missing; the loader reports it if it needs the file.
          continue;
        }
        if (outside(target)) throw deny(p, target);
        if (!visited.has(target) && (await Deno.stat(p)).isDirectory) {
          visited.add(target);
          await walk(p);
        }
      } else if (e.isDirectory) {
        await walk(p);
      }
    }
  };
  await walk(dir);
}
