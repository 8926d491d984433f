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

const PAGE = 65536;

/**
 * An instance of a kernel module that owns its memory (no imports), or null when the engine
 * lacks what it needs (WebAssembly, SIMD): callers then run their JavaScript loops.
 */
export function instantiateOwn<T>(bytes: Uint8Array<ArrayBuffer>): T | null {
  try {
    if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return null;
    return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as T;
  } catch {
    return null;
  }
}

/**
 * Grows `memory` to hold at least `bytes`; false when that is over {@link MAX_BYTES} or the
 * engine refuses.
 */
export function ensureBytes(memory: WebAssembly.Memory, bytes: number): boolean {
  if (bytes > MAX_BYTES) return false;
  const have = memory.buffer.byteLength;
  if (bytes <= have) return true;
  try {
    memory.grow(Math.ceil((bytes - have) / PAGE));
    return true;
  } catch {
    return false;
  }
}
