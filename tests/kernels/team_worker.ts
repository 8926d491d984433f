/**
 * A worker for `wasm_team_test.ts`: adopts the test's kernel memory, joins the team and
 * registers a test op (part p writes this worker's id at word p of a block); on "go" it splits
 * a task of that op, its own part 0 waiting (if asked) until another member has run a part, or
 * its part `throwOn` throwing (the error is reported).
 * Its id is also its worker index (its pending-call flag).
 *
 * @module
 */
import { adoptKernelMemory } from "../../src/kernels/wasm/shared_memory.ts";
import {
  beginTeamCall,
  endTeamCall,
  joinKernelTeam,
  registerPartRunner,
  runSplit,
  teamStats,
} from "../../src/kernels/wasm/team.ts";

/** The op code of the test task. */
export const TEST_OP = 1000;

const port = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

let id = 0;
let memory: WebAssembly.Memory | undefined;

registerPartRunner(TEST_OP, (args, part) => {
  const words = new Int32Array(memory!.buffer, args[0], args[1]);
  Atomics.store(words, part, id);
  Atomics.notify(words, part);
});

port.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "init") {
    id = m.id;
    memory = m.memory;
    const adopted = adoptKernelMemory(m.memory);
    if (adopted) joinKernelTeam(m.id);
    port.postMessage({ adopted });
  } else if (m.type === "begin" || m.type === "end") {
    if (m.type === "begin") beginTeamCall();
    else endTeamCall();
    port.postMessage({ done: m.type });
  } else if (m.type === "go") {
    const parts: number = m.parts;
    const words = new Int32Array(memory!.buffer, m.offset, parts);
    const before = teamStats();
    let split = false, error = "";
    try {
      split = runSplit(TEST_OP, [m.offset, parts], parts, (part) => {
        if (part === m.throwOn) throw new Error(`part ${part} failed`);
        if (part === 0 && m.waitForHelp) {
          // Wait (at most 20 s) until another member ran a part: the test's proof of help.
          const end = performance.now() + 20_000;
          while (performance.now() < end) {
            let helped = false;
            for (let p = 1; p < parts; p++) {
              const v = Atomics.load(words, p);
              if (v !== 0 && v !== id) helped = true;
            }
            if (helped) break;
            Atomics.wait(words, 0, 0, 5);
          }
        }
        // Holding part 0 leaves the other parts to any member willing to help meanwhile.
        if (part === 0 && m.holdMs) Atomics.wait(words, 0, 0, m.holdMs);
        Atomics.store(words, part, id);
      }, m.work ?? 0);
    } catch (e) {
      error = (e as Error).message;
    }
    const after = teamStats();
    port.postMessage({
      split,
      error,
      words: Array.from(words),
      posted: after.split - before.split,
      alone: after.alone - before.alone,
    });
  }
};
