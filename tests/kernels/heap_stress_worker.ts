/**
 * A worker for `wasm_shared_memory_test.ts`: adopts the test's kernel memory, then allocates
 * and frees blocks of the shared heap at random while the other isolates do the same, filling
 * each block with a mark of its own and checking the mark before freeing it: two isolates
 * handed overlapping blocks would overwrite each other's marks.
 *
 * @module
 */
import { adoptKernelMemory, sharedHeap } from "../../src/kernels/wasm/shared_memory.ts";

const port = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

port.onmessage = (e: MessageEvent) => {
  const { memory, id, rounds } = e.data;
  adoptKernelMemory(memory);
  const heap = sharedHeap();
  let seed = id * 7919;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff;
  const live: { offset: number; bytes: number; mark: number }[] = [];
  let bad = 0;
  const check = (b: { offset: number; bytes: number; mark: number }) => {
    const f32 = heap.f32;
    for (let i = b.offset >>> 2, end = (b.offset + b.bytes) >>> 2; i < end; i++) {
      if (f32[i] !== b.mark) bad++;
    }
  };
  for (let r = 0; r < rounds; r++) {
    if (live.length < 8 && (live.length === 0 || rand() < 0.6)) {
      const bytes = 16 * (1 + Math.floor(rand() * 4096));
      const offset = heap.alloc(bytes);
      if (offset < 0) continue;
      const mark = id * 1e6 + r;
      // The block must be inside this isolate's view of the memory, even when another isolate
      // grew the memory a moment ago (the heap refreshes the view; a fill would stop short).
      if (offset + bytes > heap.f32.byteLength) bad++;
      heap.f32.fill(mark, offset >>> 2, (offset + bytes) >>> 2);
      live.push({ offset, bytes, mark });
    } else {
      const b = live.splice(Math.floor(rand() * live.length), 1)[0];
      check(b);
      heap.free(b.offset, b.bytes);
    }
  }
  for (const b of live) {
    check(b);
    heap.free(b.offset, b.bytes);
  }
  port.postMessage({ bad });
};
