/**
 * A worker for `member_stop_test.ts`: joins the kernel team and registers a test op whose part
 * `p` writes this worker's id at word `p` of a block. As "hang" it marks the part it claims
 * (word −1) and never finishes it, as a crashing member would; with `slowMs` it takes that
 * long over each part; as "caller" it splits a task, its own first part waiting until the other
 * member has claimed one, or ("learn") runs many small tasks a slow member helps with.
 *
 * @module
 */
import { adoptKernelMemory } from "../../../src/kernels/wasm/shared_memory.ts";
import {
  joinKernelTeam,
  registerPartRunner,
  runSplit,
  setSplitJudging,
  teamStats,
  teamTotals,
} from "../../../src/kernels/wasm/team.ts";

const TEST_OP = 1001;

const port = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

let id = 0;
let hang = false;
let slowMs = 0;
let memory: WebAssembly.Memory | undefined;

registerPartRunner(TEST_OP, (args, part) => {
  const words = new Int32Array(memory!.buffer, args[0], args[1]);
  if (hang) {
    Atomics.store(words, part, -1);
    Atomics.notify(words, 0);
    for (;;) { /* a member that never finishes its part */ }
  }
  // A member descheduled in the middle of its part.
  if (slowMs > 0) Atomics.wait(new Int32Array(memory!.buffer, 0, 1), 0, 0x7fffffff, slowMs);
  Atomics.store(words, part, id);
});

port.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "init") {
    id = m.id;
    hang = m.hang;
    slowMs = m.slowMs ?? 0;
    memory = m.memory;
    const adopted = adoptKernelMemory(m.memory);
    if (adopted) joinKernelTeam(m.id);
    setSplitJudging(!!m.judging);
    port.postMessage({ adopted });
  } else if (m.type === "learn") {
    // Tasks whose split waits for a slow helper: the caller should learn to run them itself.
    const words = new Int32Array(memory!.buffer, m.offset, 4);
    const before = teamStats();
    const helpedBefore = teamTotals().helped;
    for (let call = 0; call < m.calls; call++) {
      runSplit(TEST_OP, [m.offset, 4], 4, (part) => Atomics.store(words, part, id), 1000);
    }
    const after = teamStats();
    port.postMessage({
      split: after.split - before.split,
      alone: after.alone - before.alone,
      helped: teamTotals().helped - helpedBefore,
    });
  } else if (m.type === "go") {
    const parts: number = m.parts;
    const words = new Int32Array(memory!.buffer, m.offset, parts);
    const split = runSplit(TEST_OP, [m.offset, parts], parts, (part) => {
      if (part === 0) {
        // Wait (at most 20 s) until the other member claimed a part.
        const end = performance.now() + 20_000;
        while (performance.now() < end && !Array.from(words).includes(-1)) {
          Atomics.wait(words, 0, 0, 5);
        }
      }
      Atomics.store(words, part, id);
    });
    port.postMessage({ split, words: Array.from(words) });
  }
};
