/**
 * Paths to the shared TF Serving testdata (`../shared/testdata/tf-serving/` beside the repo)
 * and helpers to make corrupted copies of it in a temp dir.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The testdata folder, as a path. */
export const TESTDATA: string = fileURLToPath(
  new URL("../../shared/testdata/tf-serving/", import.meta.url),
).replace(/\/$/, "");

/** A path inside the testdata folder. */
export function testdata(rel: string): string {
  return `${TESTDATA}/${rel}`;
}

/** Copies a directory tree (files made writable). */
export async function copyDir(src: string, dst: string): Promise<void> {
  await Deno.mkdir(dst, { recursive: true });
  for await (const e of Deno.readDir(src)) {
    const from = `${src}/${e.name}`;
    const to = `${dst}/${e.name}`;
    if (e.isDirectory) await copyDir(from, to);
    else {
      await Deno.writeFile(to, await Deno.readFile(from));
      await Deno.chmod(to, 0o644);
    }
  }
}

/** Copies a testdata model version into a fresh temp dir and returns the copy's path. */
export async function copyModel(rel: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tfs_model_" });
  await copyDir(testdata(rel), dir);
  return dir;
}
