/**
 * A worker for `split_test.ts`: adopts the test's kernel memory, stores nothing, and reports
 * whether a view of the memory counts as a kernel view before and after `kernelFloats()` (what a
 * team member that only helps sees).
 *
 * @module
 */
import { adoptKernelMemory } from "../../../src/kernels/wasm/shared_memory.ts";
import { isKernelView, kernelFloats } from "../../../src/kernels/wasm/float_store.ts";

const port = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent<WebAssembly.Memory>) => void) | null;
};

port.onmessage = (e) => {
  adoptKernelMemory(e.data);
  const view = new Float32Array(e.data.buffer, 64, 4);
  const before = isKernelView(view);
  const floats = kernelFloats();
  port.postMessage({
    before,
    after: isKernelView(view),
    floats: isKernelView(floats.subarray(16, 20)),
  });
};
