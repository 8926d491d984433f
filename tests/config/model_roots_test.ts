import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import {
  absolutePath,
  checkConfigWithinRoots,
  checkVersionDirConfined,
  isUnder,
  refuseForbidden,
  resolveRoots,
} from "../../src/config/model_roots.ts";

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    assert.ok(e instanceof ServingError, String(e));
    return Code[e.code];
  }
  return "OK";
}

Deno.test("absolutePath() and isUnder() work on segments, not prefixes", () => {
  assert.equal(absolutePath("a/./b/../c//", "/w"), "/w/a/c");
  assert.equal(absolutePath("/x/../../y", "/w"), "/y");
  assert.ok(isUnder("/models/a", "/models"));
  assert.ok(isUnder("/models", "/models"));
  assert.ok(!isUnder("/models2/a", "/models"));
  assert.ok(isUnder("/anything", "/"));
});

Deno.test("/proc, /sys and /dev are refused, as written", async () => {
  for (const p of ["/proc/self/root", "/proc", "/sys/kernel", "/dev/shm/m", "/x/../proc/self"]) {
    assert.equal(await code(() => refuseForbidden(p, "path")), "PERMISSION_DENIED", p);
  }
  assert.equal(await code(() => refuseForbidden("/processes/m", "path")), "OK");
  assert.equal(await code(resolveRoots(["/proc/self/root"], "/")), "PERMISSION_DENIED");
});

Deno.test("checkConfigWithinRoots() follows symlinks on both sides", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tfs_roots_" }));
  await Deno.mkdir(`${dir}/root/a`, { recursive: true });
  await Deno.mkdir(`${dir}/outside`);
  await Deno.symlink(`${dir}/outside`, `${dir}/root/escape`);
  await Deno.symlink(`${dir}/root`, `${dir}/alias`);
  const roots = await resolveRoots([`${dir}/alias`], "/");
  assert.deepEqual(roots, [`${dir}/alias`, `${dir}/root`]);
  const check = (basePath: string) =>
    code(checkConfigWithinRoots([{ name: "m", basePath }], roots, dir));
  assert.equal(await check(`${dir}/root/a`), "OK");
  assert.equal(await check("root/a"), "OK"); // relative to cwd
  assert.equal(await check(`${dir}/root/not_yet_there`), "OK");
  assert.equal(await check(`${dir}/outside`), "PERMISSION_DENIED");
  assert.equal(await check(`${dir}/root/escape`), "PERMISSION_DENIED");
  assert.equal(await check(`${dir}/root/../outside`), "PERMISSION_DENIED");
  assert.equal(await check("/proc/self/cwd"), "PERMISSION_DENIED");
  // Without roots only the pseudo file systems are refused.
  assert.equal(
    await code(checkConfigWithinRoots([{ name: "m", basePath: `${dir}/outside` }], undefined, "/")),
    "OK",
  );
});

Deno.test("checkVersionDirConfined() refuses any link leading out, at any depth", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tfs_confined_" }));
  const v = `${dir}/root/m/1`;
  await Deno.mkdir(`${v}/variables`, { recursive: true });
  await Deno.mkdir(`${dir}/root/shared`);
  await Deno.writeTextFile(`${dir}/root/shared/vocab.txt`, "a\n");
  await Deno.writeTextFile(`${dir}/secret`, "s");
  const roots = await resolveRoots([`${dir}/root`], "/");
  await Deno.symlink(`${dir}/root/shared/vocab.txt`, `${v}/vocab.txt`); // inside: fine
  await Deno.symlink(`${dir}/missing`, `${v}/dangling`); // dangling: left to the loader
  assert.equal(await code(checkVersionDirConfined(v, roots)), "OK");

  await Deno.symlink(`${dir}/secret`, `${v}/variables/variables.data-00000-of-00001`);
  const e = await checkVersionDirConfined(v, roots).catch((e) => e);
  assert.equal(Code[e.code], "PERMISSION_DENIED");
  assert.match(e.message, /variables\.data-00000-of-00001 leads to .*\/secret, outside/);
  await Deno.remove(`${v}/variables/variables.data-00000-of-00001`);

  // A linked directory inside the roots is walked too: what it holds is read through it.
  await Deno.symlink(`${dir}/secret`, `${dir}/root/shared/evil`);
  await Deno.symlink(`${dir}/root/shared`, `${v}/assets`);
  assert.equal(await code(checkVersionDirConfined(v, roots)), "PERMISSION_DENIED");
  await Deno.remove(`${dir}/root/shared/evil`);
  // A cycle ends.
  await Deno.symlink(`${dir}/root/m`, `${dir}/root/shared/up`);
  assert.equal(await code(checkVersionDirConfined(v, roots)), "OK");
  // The version dir itself leading out.
  await Deno.symlink(`${dir}`, `${dir}/root/m/2`);
  assert.equal(await code(checkVersionDirConfined(`${dir}/root/m/2`, roots)), "PERMISSION_DENIED");
});
