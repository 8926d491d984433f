/**
 * The bundled server (issue 10, start-up): `scripts/bundle_server.ts` (`deno task bundle`) writes
 * `server_main.ts` and everything it imports as a few JavaScript files under `dist/server/`,
 * which Deno loads in about three quarters of the CPU time of the ~100 source modules (one file
 * and a few chunks instead of a module graph to resolve, read and look up in the caches). Beside
 * them, a manifest records the Deno version and the size and modification time of every source
 * file the bundle was made from; `launch.ts` runs the bundle only while all of them still match,
 * else the sources, so an edit never runs stale code.
 *
 * @module
 */

/** Where the bundle is written, relative to the project root. */
export const BUNDLE_DIR = "dist/server/";
/** The bundle's entry point, in {@linkcode BUNDLE_DIR}. */
export const BUNDLE_ENTRY = "server_main.js";
/** The manifest's name, in {@linkcode BUNDLE_DIR}. */
export const BUNDLE_MANIFEST = "manifest.json";

/** What the bundle was made from. */
export interface BundleManifest {
  /** `Deno.version.deno` of the bundler. */
  readonly deno: string;
  /** Each source file (relative to the project root): its size and mtime in ms. */
  readonly files: Readonly<Record<string, { readonly size: number; readonly mtime: number }>>;
}

/** The size and mtime of a file, as the manifest records them. */
export function fileStamp(path: string): { size: number; mtime: number } {
  const s = Deno.statSync(path);
  return { size: s.size, mtime: s.mtime?.getTime() ?? 0 };
}

/**
 * The bundle's entry point if `root`'s bundle is up to date with its sources, else undefined
 * (no bundle, another Deno, or a source file changed, added to the manifest's list or gone).
 *
 * @param root the project root, ending in `/`
 */
export function freshBundle(root: string): string | undefined {
  const dir = `${root}${BUNDLE_DIR}`;
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(Deno.readTextFileSync(`${dir}${BUNDLE_MANIFEST}`));
    Deno.statSync(`${dir}${BUNDLE_ENTRY}`);
  } catch {
    return undefined;
  }
  if (manifest.deno !== Deno.version.deno || typeof manifest.files !== "object") return undefined;
  const files = Object.entries(manifest.files);
  if (files.length === 0) return undefined;
  for (const [rel, want] of files) {
    let have;
    try {
      have = fileStamp(`${root}${rel}`);
    } catch {
      return undefined;
    }
    if (have.size !== want.size || have.mtime !== want.mtime) return undefined;
  }
  return `${dir}${BUNDLE_ENTRY}`;
}
