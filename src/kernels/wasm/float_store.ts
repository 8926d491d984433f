/**
 * The kernels' shared memory as the arena's {@link FloatStore} (tensor/arena.ts): float32
 * intermediates of a plan's run live in the process's WebAssembly memory, so the WebAssembly
 * kernels (`conv.ts`) read and write them where they are instead of copying each input in and
 * each output out, and the other isolates of the kernel team (`team.ts`) can compute parts of
 * an op over them.
 *
 * - Blocks come from the shared heap (`shared_memory.ts`), made on first use, so a worker
 *   isolate adopts the process's memory before it takes any.
 * - One isolate holds at most {@link MAX_STORED_BYTES} of them at once; past that (or when the
 *   shared memory cannot grow) the arena falls back to ordinary arrays. A view stays valid when
 *   the memory grows (shared memory is never detached). A WebAssembly memory never shrinks, so
 *   the bound is also what a burst of large requests can leave resident per isolate (freed
 *   blocks are reused by later allocations, not returned to the system).
 * - Not reclaimed: the blocks of a worker isolate that stopped (as its scratch areas).
 *
 * @module
 */
import { type FloatStore, setFloatStore } from "../../tensor/arena.ts";
import { type SharedHeap, sharedHeap } from "./shared_memory.ts";

/** Bytes of stored intermediates one isolate may hold (live and kept for reuse). */
export const MAX_STORED_BYTES = 256 * 1024 * 1024;

/** The memory's buffers this isolate has seen (one per size it grew to). */
const buffers = new WeakSet<ArrayBufferLike>();
let heap: SharedHeap | null | undefined;
let storedBytes = 0;
let enabled = true;

function heapOrNull(): SharedHeap | null {
  if (heap === undefined) {
    try {
      heap = sharedHeap();
    } catch {
      heap = null; // no shared memory in this engine
    }
  }
  return heap;
}

const store: FloatStore = {
  alloc(length: number): Float32Array | undefined {
    if (!enabled) return undefined;
    const bytes = length * 4;
    if (!Number.isSafeInteger(bytes) || storedBytes + bytes > MAX_STORED_BYTES) return undefined;
    const h = heapOrNull();
    if (h === null) return undefined;
    const at = h.alloc(bytes);
    if (at < 0) return undefined;
    const buffer = h.f32.buffer;
    buffers.add(buffer);
    storedBytes += bytes;
    return new Float32Array(buffer, at, length);
  },
  free(a: Float32Array): void {
    storedBytes -= a.byteLength;
    heap!.free(a.byteOffset, a.byteLength);
  },
  holds(a: ArrayBufferView): boolean {
    return buffers.has(a.buffer);
  },
};

setFloatStore(store);

/** Whether `a` views the kernels' shared memory (its byte offset is then a kernel pointer). */
export function isKernelView(a: ArrayBufferView): boolean {
  return buffers.has(a.buffer);
}

/**
 * The kernel memory as floats, its buffer known to {@link isKernelView} from now on: for an
 * isolate that views the memory without storing intermediates itself (a kernel team member
 * computing another's part). Without it, a helper's part of a split Add saw its operands as
 * outside the memory and copied them in and out (selfie's 65536-element adds took 3.5-3.7 times
 * as long split as alone).
 */
export function kernelFloats(): Float32Array {
  const f32 = sharedHeap().f32;
  buffers.add(f32.buffer);
  return f32;
}

/**
 * Turns storing intermediates in kernel memory off or on (on by default), for tests and
 * benchmarks; blocks already taken stay valid. Returns the old setting.
 */
export function setFloatStoreEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Bytes of stored intermediates this isolate holds now. */
export function storedFloatBytes(): number {
  return storedBytes;
}
