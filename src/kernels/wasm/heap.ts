/**
 * The allocator of a WebAssembly kernel module's linear memory (`dense.ts`, `conv.ts`): packed
 * weights that live as long as their arrays, and scratch areas reused from call to call.
 *
 * @module
 */

/** Bytes of WebAssembly memory we are willing to use; past it callers fall back to JavaScript. */
export const MAX_BYTES = 1 << 30;

const PAGE = 65536;

/** `bytes` rounded up to a multiple of 16. */
export const align16 = (bytes: number): number => (bytes + 15) & ~15;

/** A free block of linear memory. */
export interface Block {
  offset: number;
  bytes: number;
}

/**
 * The linear memory: a first-fit free list over a bump pointer, growing the memory when needed.
 * Blocks are few (one per cached weight matrix plus the scratch area), so lists are fine.
 */
export class Heap {
  /** A view of the whole memory, renewed whenever the memory grows (growing detaches it). */
  f32: Float32Array;
  #top = 64;
  #free: Block[] = [];

  constructor(readonly memory: WebAssembly.Memory) {
    this.f32 = new Float32Array(memory.buffer);
  }

  /** Allocates `bytes` (16-byte aligned), or returns -1 when the memory may not grow that far. */
  alloc(bytes: number): number {
    bytes = align16(bytes);
    for (let i = 0; i < this.#free.length; i++) {
      const b = this.#free[i];
      if (b.bytes < bytes) continue;
      const offset = b.offset;
      if (b.bytes === bytes) this.#free.splice(i, 1);
      else {
        b.offset += bytes;
        b.bytes -= bytes;
      }
      return offset;
    }
    const offset = this.#top;
    const end = offset + bytes;
    if (end > MAX_BYTES) return -1;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow geometrically so a run of growing requests does not grow page by page; if the
      // engine refuses that much, ask for just what is needed.
      const want = Math.min(MAX_BYTES, Math.max(end, have * 2));
      if (!this.#grow(want - have) && !this.#grow(end - have)) return -1;
      this.f32 = new Float32Array(this.memory.buffer);
    }
    this.#top = end;
    return offset;
  }

  #grow(bytes: number): boolean {
    try {
      this.memory.grow(Math.ceil(bytes / PAGE));
      return true;
    } catch {
      return false;
    }
  }

  /** Returns a block from `alloc`, merging it with free neighbours. */
  free(offset: number, bytes: number): void {
    bytes = align16(bytes);
    const list = this.#free;
    let i = 0;
    while (i < list.length && list[i].offset < offset) i++;
    list.splice(i, 0, { offset, bytes });
    // Merge with the next block, then the previous one.
    if (i + 1 < list.length && offset + bytes === list[i + 1].offset) {
      list[i].bytes += list[i + 1].bytes;
      list.splice(i + 1, 1);
    }
    if (i > 0 && list[i - 1].offset + list[i - 1].bytes === offset) {
      list[i - 1].bytes += list[i].bytes;
      list.splice(i, 1);
      i--;
    }
    // A free block at the top goes back to the bump pointer.
    const last = list[list.length - 1];
    if (last.offset + last.bytes === this.#top) {
      this.#top = last.offset;
      list.pop();
    }
  }
}
