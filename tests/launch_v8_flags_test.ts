/**
 * `deno task serve` / `start` run the launcher under the server's V8 flags (issue 10, start-up):
 * V8 refuses a code cache made under other flags, and the launcher shares modules with the
 * server (flags, permissions, errors, log), so with different flags each start would recompile
 * those modules twice and rewrite their cache.
 */
import assert from "node:assert/strict";
import { v8FlagsArg } from "../src/config/permissions.ts";

Deno.test("deno task serve and start run launch.ts with the server's V8 flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const task of ["serve", "start"]) {
    const words = (config.tasks[task] as string).split(/\s+/);
    assert.ok(words.includes(v8FlagsArg()), `${task}: ${config.tasks[task]}`);
    assert.ok(words.indexOf(v8FlagsArg()) < words.indexOf("launch.ts"), task);
  }
});
