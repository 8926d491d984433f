/**
 * Sizes shared by the WebAssembly kernel modules. The allocator of the shared kernel memory
 * (`dense.ts`, `conv.ts`) is `SharedHeap` in shared_memory.ts; the small per-isolate modules
 * (`activation.ts`, `image.ts`) grow their own memories.
 *
 * @module
 */

/** Bytes of WebAssembly memory we are willing to use; past it callers fall back to JavaScript. */
export const MAX_BYTES = 1 << 30;

/** `bytes` rounded up to a multiple of 16. */
export const align16 = (bytes: number): number => (bytes + 15) & ~15;
