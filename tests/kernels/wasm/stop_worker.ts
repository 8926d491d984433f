/**
 * A worker for `member_stop_test.ts`: joins the kernel team and registers a test op whose part
 * `p` writes this worker's id at word `p` of a block. As "hang" it marks the part it claims
 * (word −1) and never finishes it, as a crashing member would; as "caller" it splits a task,
 * its own first part waiting until the other member has claimed one.
 *
 * @module
 */
import { adoptKernelMemory } from "../../../src/kernels/wasm/shared_memory.ts";
import {
  joinKernelTeam,
  registerPartRunner,
  runSplit,
  setSplitJudging,
} from "../../../src/kernels/wasm/team.ts";

const TEST_OP = 1001;

const port = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

let id = 0;
let hang = false;
let memory: WebAssembly.Memory | undefined;

registerPartRunner(TEST_OP, (args, part) => {
  const words = new Int32Array(memory!.buffer, args[0], args[1]);
  if (hang) {
    Atomics.store(words, part, -1);
    Atomics.notify(words, 0);
    for (;;) { /* a member that never finishes its part */ }
  }
  Atomics.store(words, part, id);
});

port.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "init") {
    id = m.id;
    hang = m.hang;
    memory = m.memory;
    const adopted = adoptKernelMemory(m.memory);
    if (adopted) joinKernelTeam(m.id);
    setSplitJudging(false);
    port.postMessage({ adopted });
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
