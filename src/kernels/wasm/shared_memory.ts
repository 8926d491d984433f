/**
 * The one linear memory of the WebAssembly kernels (`dense.ts`, `conv.ts`) in a process: a
 * shared `WebAssembly.Memory` that every isolate's kernel instances import, so a weight matrix
 * packed for the kernels exists once however many worker isolates run the model.
 *
 * - The isolate that first needs it (the main one) creates the memory; a worker isolate is
 *   handed it before it runs anything ({@link adoptKernelMemory}). An isolate that was never
 *   handed one creates its own (tests, tools), which is correct, only not shared.
 * - {@link SharedHeap}: the allocator. Its state (bump pointer, free list) lives in a header at
 *   the start of the memory, changed only under a spin lock (`Atomics`), so any isolate can
 *   allocate and free. Critical sections are a list walk: the lock is never held while packing
 *   or computing.
 * - Each isolate's kernels keep their own scratch areas (inputs, outputs, im2col buffers of the
 *   call they run); they are blocks of this heap that nobody else touches.
 * - {@link WeightCache}: packed weights. A weight whose storage is a registered shared buffer
 *   ({@link shareBufferId}: the model's constants and variables, see exec/shared_model.ts) is
 *   found in a table in the header by (buffer id, byte offset, length, packing kind and sizes):
 *   the first isolate to need it packs it while the others wait for it (`Atomics.wait`), and
 *   every isolate then reads the same bytes. The table entry counts the isolates holding it;
 *   each releases it when its array is collected (a FinalizationRegistry), the last frees it.
 *   A weight in an unregistered buffer (a small constant, a value a stateful model assigned in
 *   a worker) is packed privately, as before, and freed the same way.
 *
 * Not reclaimed: the scratch areas and table references of a worker isolate that stopped (its
 * finalizers never run). Workers live as long as the server, so this is only a crash's leak.
 *
 * @module
 */

/** Bytes of a WebAssembly page. */
const PAGE = 65536;

/** Pages the memory may grow to: 2 GiB, so every byte offset fits an i32 the kernels take. */
export const MAX_PAGES = 32768;

/** Bytes the heap may hand out, up to which blocks end; past it callers fall back to JavaScript. */
export const MAX_SHARED_BYTES = MAX_PAGES * PAGE - PAGE;

/** `bytes` rounded up to a multiple of 16. */
const align16 = (bytes: number): number => (bytes + 15) & ~15;

// The header, in 32-bit words from byte 0.
const LOCK = 0;
const TOP = 1;
const FREE_COUNT = 2;
const NEXT_BUFFER_ID = 3;
/** Weights packed into the table since the memory was made (a statistic, for tests). */
const PACKS = 4;
/** Entries of the table ever used (its high-water mark; entries past it are empty). */
const TABLE_USED = 5;
/** Bytes of packed weights the table holds now. */
const PACKED_BYTES = 6;
const FREE_AT = 16;
/** Free blocks the list holds; a block freed when it is full is lost (never seen in practice). */
const FREE_CAP = 1024;
const TABLE_AT = FREE_AT + 2 * FREE_CAP;
/** Packed weights the table holds; past it, weights are packed privately. */
const TABLE_CAP = 4096;
// An entry: state, buffer id, byte offset, length, kind, three sizes, block offset and bytes,
// references.
const ENTRY = 12;
const E_STATE = 0, E_BUF = 1, E_BYTE = 2, E_LEN = 3, E_KIND = 4, E_D0 = 5, E_D1 = 6, E_D2 = 7;
const E_OFFSET = 8, E_BYTES = 9, E_REFS = 10;
const EMPTY = 0, PACKING = 1, READY = 2;
/** Words of the split-kernel team's control block (`team.ts`), after the table. */
export const TEAM_WORDS = 2048;
const TEAM_AT = TABLE_AT + TABLE_CAP * ENTRY;
const HEADER_BYTES = (TEAM_AT + TEAM_WORDS) * 4;
const INITIAL_PAGES = Math.ceil(HEADER_BYTES / PAGE) + 1;

/** How long an isolate waits for another to finish packing a weight before packing its own. */
const PACK_WAIT_MS = 10_000;

let memory: WebAssembly.Memory | undefined;
let heap: SharedHeap | undefined;

/**
 * The kernels' memory of this isolate: the one it adopted, else one made now (the main isolate
 * makes the process's memory this way). Throws when the engine has no shared memory.
 */
export function kernelMemory(): WebAssembly.Memory {
  if (memory === undefined) {
    const m = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAX_PAGES, shared: true });
    const h = new Int32Array(m.buffer, 0, FREE_AT);
    h[TOP] = HEADER_BYTES;
    h[NEXT_BUFFER_ID] = 1;
    memory = m;
  }
  return memory;
}

/**
 * Makes this isolate use `m` (made by another isolate with {@link kernelMemory}) for its
 * kernels. Call it before any kernel runs here; returns false (and changes nothing) when this
 * isolate already has a different memory.
 */
export function adoptKernelMemory(m: WebAssembly.Memory): boolean {
  if (memory !== undefined) return memory === m;
  if (!(m.buffer instanceof SharedArrayBuffer)) return false;
  memory = m;
  return true;
}

/**
 * The control block of the team of isolates that split large kernels (`team.ts`): TEAM_WORDS
 * words of the header, zero when the memory is made.
 */
export function teamControl(): Int32Array<SharedArrayBuffer> {
  return new Int32Array(kernelMemory().buffer as SharedArrayBuffer, TEAM_AT * 4, TEAM_WORDS);
}

/** This isolate's allocator over {@link kernelMemory}. */
export function sharedHeap(): SharedHeap {
  return heap ??= new SharedHeap(kernelMemory());
}

/** What the kernels' memory holds, for tests and the benchmarks. */
export interface KernelMemoryStats {
  /** Bytes of the memory (all isolates' blocks and the free space between them). */
  readonly memoryBytes: number;
  /** Weights packed into the shared table since the memory was made. */
  readonly packs: number;
  /** Bytes of shared packed weights held now. */
  readonly packedBytes: number;
  /** References to them: one per isolate using each (a weight used by 3 isolates counts 3). */
  readonly references: number;
}

/** Counts of the kernels' memory (made if this isolate had none). */
export function kernelMemoryStats(): KernelMemoryStats {
  const m = kernelMemory();
  const h = new Int32Array(m.buffer, 0, HEADER_BYTES >> 2);
  let references = 0;
  for (let s = 0, used = Atomics.load(h, TABLE_USED); s < used; s++) {
    const e = TABLE_AT + s * ENTRY;
    if (Atomics.load(h, e + E_STATE) === READY) references += Atomics.load(h, e + E_REFS);
  }
  return {
    memoryBytes: m.buffer.byteLength,
    packs: Atomics.load(h, PACKS),
    packedBytes: Atomics.load(h, PACKED_BYTES),
    references,
  };
}

const bufferIds = new WeakMap<SharedArrayBuffer, number>();

/**
 * The id under which packed copies of weights stored in `buffer` are shared between isolates.
 * Without `id`, gives the buffer a new process-wide id (once; the isolate that made the buffer
 * does this); with `id`, records the id another isolate gave it (a worker receiving a model).
 */
export function shareBufferId(buffer: SharedArrayBuffer, id?: number): number {
  const known = bufferIds.get(buffer);
  if (known !== undefined) return known;
  const h = new Int32Array(kernelMemory().buffer, 0, FREE_AT);
  const given = id ?? Atomics.add(h, NEXT_BUFFER_ID, 1);
  bufferIds.set(buffer, given);
  return given;
}

/** The id {@link shareBufferId} gave `buffer`, or undefined. */
export function sharedBufferIdOf(buffer: ArrayBufferLike): number | undefined {
  return buffer instanceof SharedArrayBuffer ? bufferIds.get(buffer) : undefined;
}

/** A table entry being packed by the caller, or found ready. */
interface Acquired {
  readonly slot: number;
  readonly offset: number;
  /** True: the caller must pack it, then call `publish(slot)`. */
  readonly fresh: boolean;
}

/** The allocator of the shared memory (state in the header; see the module). */
export class SharedHeap {
  readonly #h: Int32Array<SharedArrayBuffer>;
  #f32: Float32Array;

  constructor(readonly memory: WebAssembly.Memory) {
    this.#h = new Int32Array(memory.buffer as SharedArrayBuffer, 0, HEADER_BYTES >> 2);
    this.#f32 = new Float32Array(memory.buffer);
  }

  /**
   * A view of the whole memory as this isolate sees it now (another isolate may have grown it;
   * views made before that still work, over the old size).
   */
  get f32(): Float32Array {
    const buffer = this.memory.buffer;
    if (buffer.byteLength !== this.#f32.byteLength) this.#f32 = new Float32Array(buffer);
    return this.#f32;
  }

  #lock(): void {
    const h = this.#h;
    while (Atomics.compareExchange(h, LOCK, 0, 1) !== 0) Atomics.wait(h, LOCK, 1, 1);
  }

  #unlock(): void {
    Atomics.store(this.#h, LOCK, 0);
    Atomics.notify(this.#h, LOCK, 1);
  }

  /** Allocates `bytes` (16-byte aligned), or returns -1 when the memory may not grow that far. */
  alloc(bytes: number): number {
    this.#lock();
    try {
      return this.#alloc(align16(bytes));
    } finally {
      this.#unlock();
    }
  }

  #alloc(bytes: number): number {
    const h = this.#h;
    const count = h[FREE_COUNT];
    for (let i = 0; i < count; i++) {
      const at = FREE_AT + 2 * i;
      const size = h[at + 1];
      if (size < bytes) continue;
      const offset = h[at];
      if (size === bytes) {
        h.copyWithin(at, at + 2, FREE_AT + 2 * count);
        h[FREE_COUNT] = count - 1;
      } else {
        h[at] = offset + bytes;
        h[at + 1] = size - bytes;
      }
      this.#see(offset + bytes);
      return offset;
    }
    const offset = h[TOP];
    const end = offset + bytes;
    if (end > MAX_SHARED_BYTES) return -1;
    const have = this.#see(end);
    if (end > have) {
      // Grow geometrically so a run of growing requests does not grow page by page (pages
      // never touched cost no resident memory); if the engine refuses that much, ask for
      // just what is needed.
      const want = Math.min(MAX_PAGES * PAGE, Math.max(end, have * 2));
      if (!this.#grow(want - have) && !this.#grow(end - have)) return -1;
    }
    h[TOP] = end;
    return offset;
  }

  /**
   * This isolate's idea of the memory's size, made current when `end` is past it: another
   * isolate may have grown the memory, and V8 updates the others' `memory.buffer` only at
   * their next interrupt, so a block it handed out (or freed) up there would be outside this
   * isolate's views (a typed-array view there throws, a fill stops short). `grow(0)` refreshes
   * the buffer at once.
   */
  #see(end: number): number {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return have;
    this.memory.grow(0);
    return this.memory.buffer.byteLength;
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
    this.#lock();
    try {
      this.#free(offset, align16(bytes));
    } finally {
      this.#unlock();
    }
  }

  #free(offset: number, bytes: number): void {
    const h = this.#h;
    let count = h[FREE_COUNT];
    let i = 0;
    while (i < count && h[FREE_AT + 2 * i] < offset) i++;
    const prev = i > 0 ? FREE_AT + 2 * (i - 1) : -1;
    const next = i < count ? FREE_AT + 2 * i : -1;
    const joinsPrev = prev >= 0 && h[prev] + h[prev + 1] === offset;
    const joinsNext = next >= 0 && offset + bytes === h[next];
    if (joinsPrev && joinsNext) {
      h[prev + 1] += bytes + h[next + 1];
      h.copyWithin(next, next + 2, FREE_AT + 2 * count);
      count--;
    } else if (joinsPrev) h[prev + 1] += bytes;
    else if (joinsNext) {
      h[next] = offset;
      h[next + 1] += bytes;
    } else {
      if (count === FREE_CAP) return; // lost: see FREE_CAP
      const at = FREE_AT + 2 * i;
      h.copyWithin(at + 2, at, FREE_AT + 2 * count);
      h[at] = offset;
      h[at + 1] = bytes;
      count++;
    }
    // A free block at the top goes back to the bump pointer.
    const last = FREE_AT + 2 * (count - 1);
    if (count > 0 && h[last] + h[last + 1] === h[TOP]) {
      h[TOP] = h[last];
      count--;
    }
    h[FREE_COUNT] = count;
  }

  /**
   * The table entry of a shared weight (one more reference to it), allocating and claiming it
   * when absent; waits while another isolate packs it. Null when the table is full or the
   * other isolate took too long (pack privately); -1 offset when out of memory.
   */
  acquirePacked(
    buffer: number,
    byteOffset: number,
    length: number,
    kind: number,
    d0: number,
    d1: number,
    d2: number,
    bytes: number,
  ): Acquired | null {
    const h = this.#h;
    const deadline = performance.now() + PACK_WAIT_MS;
    for (;;) {
      let waitOn = -1;
      this.#lock();
      try {
        const used = h[TABLE_USED];
        let empty = -1;
        for (let s = 0; s < used; s++) {
          const e = TABLE_AT + s * ENTRY;
          const state = h[e + E_STATE];
          if (state === EMPTY) {
            if (empty < 0) empty = s;
            continue;
          }
          if (
            h[e + E_BUF] !== buffer || h[e + E_BYTE] !== byteOffset || h[e + E_LEN] !== length ||
            h[e + E_KIND] !== kind || h[e + E_D0] !== d0 || h[e + E_D1] !== d1 ||
            h[e + E_D2] !== d2
          ) continue;
          if (state === READY) {
            h[e + E_REFS]++;
            this.#see(h[e + E_OFFSET] + h[e + E_BYTES]);
            return { slot: s, offset: h[e + E_OFFSET], fresh: false };
          }
          waitOn = e + E_STATE;
          break;
        }
        if (waitOn < 0) {
          if (empty < 0) {
            if (used === TABLE_CAP) return null;
            empty = used;
            h[TABLE_USED] = used + 1;
          }
          const offset = this.#alloc(align16(bytes));
          if (offset < 0) return { slot: -1, offset: -1, fresh: false };
          const e = TABLE_AT + empty * ENTRY;
          h[e + E_BUF] = buffer;
          h[e + E_BYTE] = byteOffset;
          h[e + E_LEN] = length;
          h[e + E_KIND] = kind;
          h[e + E_D0] = d0;
          h[e + E_D1] = d1;
          h[e + E_D2] = d2;
          h[e + E_OFFSET] = offset;
          h[e + E_BYTES] = align16(bytes);
          h[e + E_REFS] = 1;
          Atomics.store(h, e + E_STATE, PACKING);
          return { slot: empty, offset, fresh: true };
        }
      } finally {
        this.#unlock();
      }
      // Another isolate is packing this weight: wait for it (a worker packs a large matrix in
      // well under a second), then look again.
      const left = deadline - performance.now();
      if (left <= 0) return null;
      Atomics.wait(h, waitOn, PACKING, Math.min(left, 50));
    }
  }

  /** Marks a claimed entry packed and wakes the isolates waiting for it. */
  publish(slot: number): void {
    const h = this.#h;
    const e = TABLE_AT + slot * ENTRY;
    Atomics.add(h, PACKS, 1);
    Atomics.add(h, PACKED_BYTES, h[e + E_BYTES]);
    Atomics.store(h, e + E_STATE, READY);
    Atomics.notify(h, e + E_STATE);
  }

  /** Drops one reference to a table entry; the last frees its block. */
  releasePacked(slot: number): void {
    const h = this.#h;
    const e = TABLE_AT + slot * ENTRY;
    this.#lock();
    try {
      if (--h[e + E_REFS] > 0) return;
      const wasReady = h[e + E_STATE] === READY;
      this.#free(h[e + E_OFFSET], h[e + E_BYTES]);
      if (wasReady) Atomics.sub(h, PACKED_BYTES, h[e + E_BYTES]);
      Atomics.store(h, e + E_STATE, EMPTY);
      // Anyone who waited on a claim that failed looks again.
      Atomics.notify(h, e + E_STATE);
    } finally {
      this.#unlock();
    }
  }
}

/** A packed copy as one isolate knows it. */
interface Held {
  readonly key: string;
  readonly offset: number;
  /** Its table entry, or -1 for a private copy. */
  readonly slot: number;
  readonly bytes: number;
}

/** What a finalizer must give back. */
interface Release {
  readonly slot: number;
  readonly offset: number;
  readonly bytes: number;
}

/** The packing layouts, part of a table entry's key (`dense.wat`, `conv.wat`). */
export enum PackKind {
  /** dense.wat: panels of 4 outputs, chunks of 4 inputs; sizes k, m, transB. */
  Dense4 = 1,
  /** conv.wat $gemm: panels of 8 columns; sizes k, n, transB. */
  Gemm8 = 2,
  /** conv.wat $depthwise: [taps][ceil4(c)]; sizes taps, c. */
  Depthwise = 3,
}

/**
 * Packed weights of one kernel family in this isolate: a weak map from the weight's array to
 * its packed copy, shared through the table when the array lies in a registered shared buffer.
 */
export class WeightCache {
  readonly #heap: SharedHeap;
  readonly #held = new WeakMap<Float32Array, Held>();
  readonly #reclaim: FinalizationRegistry<Release>;

  constructor(heap: SharedHeap) {
    this.#heap = heap;
    this.#reclaim = new FinalizationRegistry((r) => this.#release(r));
  }

  #release(r: Release): void {
    if (r.slot >= 0) this.#heap.releasePacked(r.slot);
    else this.#heap.free(r.offset, r.bytes);
  }

  /**
   * The byte offset of `w` packed by `fill` (into zeroed floats at float index `base`) as
   * `kind` with sizes `d0..d2`, `floats` long; packs it on first use. -1 when out of memory.
   */
  offset(
    w: Float32Array,
    kind: PackKind,
    d0: number,
    d1: number,
    d2: number,
    floats: number,
    fill: (f32: Float32Array, base: number) => void,
  ): number {
    const key = `${kind} ${d0} ${d1} ${d2}`;
    const old = this.#held.get(w);
    if (old !== undefined) {
      if (old.key === key) return old.offset;
      // The same storage under another shape: the old packing is of no use any more here.
      this.#reclaim.unregister(old);
      this.#held.delete(w);
      this.#release(old);
    }
    const bytes = floats * 4;
    const heap = this.#heap;
    const id = sharedBufferIdOf(w.buffer);
    let got: Acquired | null = null;
    if (id !== undefined) {
      got = heap.acquirePacked(id, w.byteOffset, w.length, kind, d0, d1, d2, bytes);
      if (got !== null && got.offset < 0) return -1;
    }
    if (got === null) {
      const offset = heap.alloc(bytes);
      if (offset < 0) return -1;
      got = { slot: -1, offset, fresh: true };
    }
    if (got.fresh) {
      try {
        const f32 = heap.f32;
        const base = got.offset >>> 2;
        // Zeros first: padding must be zero (a freed block holds old data).
        f32.fill(0, base, base + floats);
        fill(f32, base);
      } catch (e) {
        this.#release({ slot: got.slot, offset: got.offset, bytes });
        throw e;
      }
      if (got.slot >= 0) heap.publish(got.slot);
    }
    const held: Held = { key, offset: got.offset, slot: got.slot, bytes };
    this.#held.set(w, held);
    this.#reclaim.register(w, { slot: got.slot, offset: got.offset, bytes }, held);
    return got.offset;
  }
}
