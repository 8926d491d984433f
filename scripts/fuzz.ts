/**
 * `deno task fuzz [--cases=N] [--seed=S] [target ...]`: the decoder fuzz targets of
 * tests/fuzz/cases.ts with many more cases than `deno task test` runs (default 50000 each,
 * seeds from S on). Stops at the first case that does not end in a result or a clean error and
 * prints its target, seed and case number, which replay it.
 *
 * @module
 */
import { TARGETS } from "../tests/fuzz/cases.ts";

function main(): void {
  let cases = 50_000;
  let seed = 1000;
  const names: string[] = [];
  for (const a of Deno.args) {
    const m = /^--(cases|seed)=(\d+)$/.exec(a);
    if (m) {
      if (m[1] === "cases") cases = Number(m[2]);
      else seed = Number(m[2]);
    } else if (a in TARGETS) names.push(a);
    else throw new Error(`Unknown argument ${a}; targets: ${Object.keys(TARGETS).join(", ")}`);
  }
  for (const name of names.length > 0 ? names : Object.keys(TARGETS)) {
    const start = performance.now();
    // Batches of 1000 per seed, so that a failure's seed and case replay quickly.
    let ok = 0;
    let errors = 0;
    for (let done = 0, s = seed; done < cases; done += 1000, s++) {
      const stats = TARGETS[name](s, Math.min(1000, cases - done));
      ok += stats.ok;
      errors += stats.errors;
    }
    const rss = Math.round(Deno.memoryUsage().rss / (1 << 20));
    console.log(
      `${name}: ${ok + errors} cases (${ok} results, ${errors} clean errors) in ${
        Math.round(performance.now() - start)
      } ms; RSS ${rss} MB`,
    );
  }
}

if (import.meta.main) main();
