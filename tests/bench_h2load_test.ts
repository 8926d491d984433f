/**
 * The bench's h2load reading: its summary parsed, and a run trusted only when every answer was a
 * 2xx carrying exactly the bytes of the correct answer (a failed gRPC call is an HTTP 200 too).
 */
import assert from "node:assert/strict";
import { parseH2load, runProblem, spread } from "../scripts/bench/h2load.ts";

const SUMMARY = `finished in 102.56ms, 31202.77 req/s, 3.84MB/s
requests: 3200 total, 3200 started, 3200 done, 3200 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 3200 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 403.13KB (412800) total, 240.63KB (246400) headers (space savings 0.00%), 65.63KB (67200) data
`;

Deno.test("parseH2load() reads the rate, the counts and the body bytes", () => {
  assert.deepEqual(parseH2load(SUMMARY), {
    qps: 31202.77,
    done: 3200,
    succeeded: 3200,
    failed: 0,
    errored: 0,
    timeout: 0,
    status2xx: 3200,
    dataBytes: 67200,
  });
  assert.throws(() => parseH2load("starting benchmark..."), /h2load printed no rate/);
});

Deno.test("runProblem() trusts only all-correct answers", () => {
  const ok = parseH2load(SUMMARY);
  assert.equal(runProblem(ok, 21), undefined);
  // An error answer (trailers only) carries no body: fewer bytes than done × answer size.
  assert.match(runProblem({ ...ok, dataBytes: 67200 - 21 }, 21)!, /expected 21 each/);
  assert.match(runProblem({ ...ok, status2xx: 3199 }, 21)!, /1 answers were not 2xx/);
  assert.match(runProblem({ ...ok, errored: 2 }, 21)!, /2 errored/);
  assert.match(runProblem({ ...ok, done: 0 }, 21)!, /no request finished/);
});

Deno.test("spread() gives the best, median and worst rate", () => {
  assert.deepEqual(spread([3, 9, 5]), { best: 9, median: 5, worst: 3 });
});
