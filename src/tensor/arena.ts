/**
 * Reuse of intermediate tensors' storage from one run of a plan to the next.
 *
 * A fresh large typed array is expensive: the allocator maps new pages for it and the kernel
 * then takes a page fault per 4 KiB on first touch, which for a 1 MiB feature map costs about as
 * much as the elementwise op that fills it. A plan (`graph/plan.ts`) knows when each intermediate
 * tensor is read for the last time, so it hands that tensor's storage back here, and the next
 * kernel asking for the same type and length gets it instead of a new array: in the steady state
 * a plan allocates nothing for the intermediates it recycles.
 *
 * How it stays safe:
 * - Only storage allocated while an arena is active (by kernels the plan lets use it) is ever
 *   recycled: constants, variables, feeds and anything made elsewhere are never in it.
 * - The plan counts, per buffer, the live slots that hold a tensor on it (a view such as a
 *   Reshape's output shares its input's buffer), and gives the buffer back only when none does.
 * - A buffer that reaches a kernel which might keep it (a stateful op, a function call, anything
 *   the plan does not list as a pure op), or that is returned to the caller, is forgotten: it is
 *   never handed out again.
 * - Recycled storage is zero-filled by `allocate` (its contract); kernels that overwrite every
 *   element ask for {@link uninitialized} storage and skip that.
 *
 * One arena per plan; runs are synchronous, so one run at a time uses it. What is kept between
 * runs is at most the storage freed during the last run, and at most {@link MAX_KEPT_BYTES}.
 *
 * Float32 storage may live in a {@link FloatStore} instead of the engine's heap: the
 * WebAssembly kernels' shared memory (`kernels/wasm/float_store.ts` registers it), so those
 * kernels read their inputs and write their outputs where they are, with no copy in or out,
 * and other isolates of the kernel team can compute parts of them. Such storage never leaves a
 * run: the plan copies a stored tensor into ordinary storage when it is fetched or reaches a
 * kernel that might keep it ({@link Arena.stored}); whatever stored block is still live when
 * the run ends is therefore garbage and is recycled, and blocks the arena stops keeping (and
 * all of them when the arena is collected) go back to the store.
 *
 * Tiny arrays (a scalar, a batch of one: most outputs of a small model) are the other end: a
 * fresh typed array in Deno costs about half a microsecond whatever its length (each gets its
 * own backing store; V8's on-heap typed arrays are not enabled), a view of existing memory a
 * twentieth of that. So kernels' arrays of at most {@link SMALL_BYTES} are carved, never
 * reused, from a shared {@link SLAB_BYTES} slab, fresh and so zero-filled: a new slab is taken
 * when one is used up, and the old one lives as long as any array carved from it (at most
 * {@link SLAB_BYTES} pinned by a kept tiny array). Such an array does not own its `buffer`:
 * code reading one must use its `byteOffset` and `byteLength` (as the encoders do), and must
 * not transfer its buffer ({@link isSlab}; the REST codec leaves slabs out of its transfers).
 *
 * @module
 */
import type { NumericArray } from "./dtype.ts";

/** A typed-array constructor. */
export type ArrayCtor = {
  new (length: number): NumericArray;
  readonly BYTES_PER_ELEMENT: number;
};

/** Arrays smaller than this many bytes are left to the engine (cheap to allocate). */
const MIN_BYTES = 16384;

/** Arrays of at most this many bytes are carved from a slab (see the module doc). */
export const SMALL_BYTES = 64;

/** The size of a slab tiny arrays are carved from. */
export const SLAB_BYTES = 4096;

/** Every slab made (so that a transfer can leave them out). */
const SLABS = new WeakSet<ArrayBufferLike>();
let slab = newSlab();
let slabAt = 0;

function newSlab(): ArrayBuffer {
  const b = new ArrayBuffer(SLAB_BYTES);
  SLABS.add(b);
  return b;
}

/**
 * Whether `buffer` is a slab tiny arrays are carved from: shared by unrelated arrays, so it must
 * never be transferred to another isolate (that would empty them all).
 */
export function isSlab(buffer: ArrayBufferLike): boolean {
  return SLABS.has(buffer);
}

/** A zero-filled array of at most SMALL_BYTES, a view into the current slab. */
function carve(ctor: ArrayCtor, length: number, bytes: number): NumericArray {
  // A slab whose buffer was transferred (detached: no bytes) is replaced too.
  if (slabAt + bytes > SLAB_BYTES || slab.byteLength === 0) {
    slab = newSlab();
    slabAt = 0;
  }
  const a = new (ctor as unknown as new (b: ArrayBuffer, at: number, n: number) => NumericArray)(
    slab,
    slabAt,
    length,
  );
  // 8-byte steps keep every element type aligned.
  slabAt += (bytes + 7) & ~7;
  return a;
}

/** A new array of `length` zeros: carved from a slab when tiny, else its own. */
function newArray(ctor: ArrayCtor, length: number): NumericArray {
  const bytes = length * ctor.BYTES_PER_ELEMENT;
  return bytes > 0 && bytes <= SMALL_BYTES ? carve(ctor, length, bytes) : new ctor(length);
}

/** Most bytes an arena keeps between runs; beyond it the rest is left to the collector. */
export const MAX_KEPT_BYTES = 256 * 1024 * 1024;

/**
 * Memory outside the engine's heap that float32 intermediates may be carved from (the
 * WebAssembly kernels' shared memory). Views it gives stay valid until freed.
 */
export interface FloatStore {
  /** A view of `length` floats (unspecified contents), or undefined when the store is full. */
  alloc(length: number): Float32Array | undefined;
  /** Gives back a view `alloc` returned. */
  free(a: Float32Array): void;
  /** Whether `a` views the store's memory. */
  holds(a: ArrayBufferView): boolean;
}

let floatStore: FloatStore | undefined;

/** Sets (or removes) the store float32 intermediates are carved from; returns the old one. */
export function setFloatStore(store: FloatStore | undefined): FloatStore | undefined {
  const old = floatStore;
  floatStore = store;
  return old;
}

/** Whether `data` is storage of the registered {@link FloatStore}. */
export function inFloatStore(data: unknown): boolean {
  return floatStore !== undefined && data instanceof Float32Array && floatStore.holds(data);
}

interface Held {
  readonly array: NumericArray;
  refs: number;
}

/** Stored blocks an arena owns, given back to their store when the arena is collected. */
interface StoredBlocks {
  readonly store: FloatStore;
  readonly arrays: Set<Float32Array>;
}

const storedReclaim = new FinalizationRegistry<StoredBlocks>((b) => {
  for (const a of b.arrays) b.store.free(a);
  b.arrays.clear();
});

/** Recycled storage of one plan (see the module doc). */
export class Arena {
  /** Storage handed out during this run and not forgotten, by its buffer. */
  readonly #live = new Map<ArrayBufferLike, Held>();
  /** Stored storage handed out during this run, by its first byte (they share one buffer). */
  readonly #liveStored = new Map<number, Held>();
  /** Every stored block this arena owns (live, free or spare), and its store. */
  #stored: StoredBlocks | undefined;
  /** Storage free for reuse, by constructor and length. */
  #free = new Map<ArrayCtor, Map<number, NumericArray[]>>();
  /** Storage freed during the previous run and not reused yet. */
  #spare = new Map<ArrayCtor, Map<number, NumericArray[]>>();
  #freeBytes = 0;
  /** Arrays of MIN_BYTES or more taken during this run, and whether the last run took any. */
  #bigThisRun = 0;
  #lastRunBig = true;
  #skipped = 0;

  /**
   * Whether the next run should use the arena: yes after a run that allocated large arrays;
   * after one that did not (a small model), only every 16th run, to notice when inputs grow,
   * so the small-model path pays nothing for the bookkeeping.
   */
  wanted(): boolean {
    if (this.#lastRunBig) return true;
    return (++this.#skipped & 15) === 0;
  }

  /**
   * Storage for `length` elements: a recycled array (zero-filled if `zero`, else with
   * unspecified contents) or a new one.
   */
  take(ctor: ArrayCtor, length: number, zero: boolean): NumericArray {
    // Small arrays are cheap to make and never recycled: no bookkeeping for them.
    if (length * ctor.BYTES_PER_ELEMENT < MIN_BYTES) return newArray(ctor, length);
    this.#bigThisRun++;
    let a = pop(this.#free, ctor, length);
    if (a !== undefined) this.#freeBytes -= a.byteLength;
    else a = pop(this.#spare, ctor, length);
    if (a !== undefined) {
      if (zero) {
        if (a instanceof BigInt64Array || a instanceof BigUint64Array) a.fill(0n);
        else a.fill(0);
      }
      this.#track(a);
      return a;
    }
    if ((ctor as unknown) === Float32Array && floatStore !== undefined) {
      const stored = this.#storeAlloc(floatStore, length);
      if (stored !== undefined) {
        if (zero) stored.fill(0);
        this.#liveStored.set(stored.byteOffset, { array: stored, refs: 0 });
        return stored;
      }
    }
    const fresh = new ctor(length);
    this.#live.set(fresh.buffer, { array: fresh, refs: 0 });
    return fresh;
  }

  #track(a: NumericArray): void {
    if (this.#stored?.arrays.has(a as Float32Array)) {
      this.#liveStored.set(a.byteOffset, { array: a, refs: 0 });
    } else this.#live.set(a.buffer, { array: a, refs: 0 });
  }

  #storeAlloc(store: FloatStore, length: number): Float32Array | undefined {
    let blocks = this.#stored;
    if (blocks === undefined || blocks.store !== store) {
      // A store replaced (tests): the old one's blocks are simply no longer taken from.
      blocks = this.#stored = { store, arrays: new Set() };
      storedReclaim.register(this, blocks);
    }
    const a = store.alloc(length);
    if (a !== undefined) blocks.arrays.add(a);
    return a;
  }

  /** The held storage a stored view lies in (a view of part of it, too), or undefined. */
  #findStored(data: Float32Array): Held | undefined {
    const exact = this.#liveStored.get(data.byteOffset);
    if (this.#stored === undefined || !this.#stored.store.holds(data)) return undefined;
    if (exact !== undefined) return exact;
    const at = data.byteOffset;
    for (const h of this.#liveStored.values()) {
      const a = h.array;
      if (at >= a.byteOffset && at < a.byteOffset + a.byteLength) return h;
    }
    return undefined;
  }

  /**
   * Whether `data` is stored storage (see the module): the plan then copies its tensor before it
   * is fetched or reaches a kernel that might keep it, instead of calling {@link hold}.
   */
  stored(data: unknown): boolean {
    return this.#stored !== undefined && data instanceof Float32Array &&
      this.#stored.store.holds(data);
  }

  /** Gives a stored block back to its store (the arena no longer keeps it). */
  #drop(a: NumericArray): void {
    const blocks = this.#stored;
    if (blocks !== undefined && blocks.arrays.delete(a as Float32Array)) {
      blocks.store.free(a as Float32Array);
    }
  }

  /** A slot now holds a tensor on `data`; `keep` forgets its buffer for good. */
  hold(data: unknown, keep: boolean): void {
    const buf = (data as { buffer?: ArrayBufferLike }).buffer;
    if (buf === undefined) return;
    if (this.#liveStored.size > 0 && data instanceof Float32Array) {
      const s = this.#findStored(data);
      if (s !== undefined) {
        // Stored storage is never kept (the plan copies it first); counted as a reader.
        s.refs++;
        return;
      }
    }
    const h = this.#live.get(buf);
    if (h === undefined) return;
    if (keep) this.#live.delete(buf);
    else h.refs++;
  }

  /** A slot holding a tensor on `data` was cleared; the last one frees the buffer. */
  release(data: unknown): void {
    const buf = (data as { buffer?: ArrayBufferLike }).buffer;
    if (buf === undefined) return;
    if (this.#liveStored.size > 0 && data instanceof Float32Array) {
      const s = this.#findStored(data);
      if (s !== undefined) {
        if (--s.refs > 0) return;
        this.#liveStored.delete(s.array.byteOffset);
        this.#recycle(s.array);
        return;
      }
    }
    const h = this.#live.get(buf);
    if (h === undefined || --h.refs > 0) return;
    this.#live.delete(buf);
    this.#recycle(h.array);
  }

  #recycle(a: NumericArray): void {
    if (this.#freeBytes + a.byteLength > MAX_KEPT_BYTES) {
      this.#drop(a);
      return;
    }
    this.#freeBytes += a.byteLength;
    push(this.#free, a);
  }

  /**
   * Ends a run: whatever is still live belongs to the caller now (outputs) or is dropped;
   * storage freed during this run is kept for the next, older spare storage is let go.
   */
  endRun(): void {
    this.#lastRunBig = this.#bigThisRun > 0;
    this.#bigThisRun = 0;
    if (this.#live.size > 0) this.#live.clear();
    // Stored blocks still live are garbage now (fetched ones were copied): reuse them.
    if (this.#liveStored.size > 0) {
      for (const h of this.#liveStored.values()) this.#recycle(h.array);
      this.#liveStored.clear();
    }
    // Swap rather than allocate: a plan of small tensors pays nothing here.
    const old = this.#spare;
    this.#spare = this.#free;
    if (old.size > 0) {
      if (this.#stored !== undefined) {
        for (const byLength of old.values()) {
          for (const list of byLength.values()) for (const a of list) this.#drop(a);
        }
      }
      old.clear();
    }
    this.#free = old;
    this.#freeBytes = 0;
  }
}

function pop(
  pool: Map<ArrayCtor, Map<number, NumericArray[]>>,
  ctor: ArrayCtor,
  length: number,
): NumericArray | undefined {
  return pool.get(ctor)?.get(length)?.pop();
}

function push(pool: Map<ArrayCtor, Map<number, NumericArray[]>>, a: NumericArray): void {
  const ctor = a.constructor as ArrayCtor;
  let byLength = pool.get(ctor);
  if (byLength === undefined) pool.set(ctor, byLength = new Map());
  let list = byLength.get(a.length);
  if (list === undefined) byLength.set(a.length, list = []);
  list.push(a);
}

let active: Arena | undefined;

/**
 * Makes `arena` (or none) the one kernels allocate from, returning the previous one to restore.
 * Called by plans around their runs and kernels.
 */
export function activateArena(arena: Arena | undefined): Arena | undefined {
  const prev = active;
  active = arena;
  return prev;
}

/**
 * Storage for `length` elements whose contents are unspecified: for kernels that write every
 * element. Recycled from the active arena where it can be.
 */
export function uninitialized<C extends ArrayCtor>(ctor: C, length: number): InstanceType<C> {
  return (active === undefined
    ? newArray(ctor, length)
    : active.take(ctor, length, false)) as InstanceType<C>;
}

/**
 * A copy of `src[from, to)` in storage recycled from the active arena where it can be: what
 * `src.slice(from, to)` gives, for kernels that compute in WebAssembly memory.
 */
export function copyOf(src: Float32Array, from: number, to: number): Float32Array {
  const y = uninitialized(Float32Array, to - from);
  y.set(src.subarray(from, to));
  return y;
}

/** Zero-filled storage for `length` elements, recycled from the active arena where it can be. */
export function zeroed<C extends ArrayCtor>(ctor: C, length: number): InstanceType<C> {
  return (active === undefined
    ? newArray(ctor, length)
    : active.take(ctor, length, true)) as InstanceType<C>;
}
