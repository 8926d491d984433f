/**
 * Reused shared memory for large request messages, so that a request's tensors are decoded in
 * place into memory an inference worker reads directly: no copy to post them, and no fresh
 * buffer per call (fresh large buffers are external memory to V8, whose pressure started a full
 * mark-compact every ~10 calls of a 768 KiB request; they also cost a page fault per 4 KiB on
 * first touch).
 *
 * A transport takes a {@link RequestBuffer} for a large message ({@link RequestMemory.take}, or
 * {@link RequestMemory.create} when none fits), reads the message into it, and holds it until the
 * call is answered. The memory goes back to its pool only when the last holder lets go **and**
 * someone vouched that no view of it outlives the holds ({@link RequestBuffer.allowReuse}): the
 * executor does, for a version that keeps no state, and holds the buffer itself while a worker
 * may still read it (a call answered at its deadline, or cancelled, can still be running). A
 * buffer nobody vouched for is simply dropped, to the garbage collector, as a fresh one would
 * be: a stateful model may keep a feed (a variable assigned from it) and must never see it
 * rewritten.
 *
 * A worker's large outputs for such a call go the same way ({@link SharedBufferPool}): copied
 * into memory the worker reuses, given back when the call's buffer is reused
 * ({@link RequestBuffer.whenReused}), i.e. once the transport encoded them.
 *
 * Limits: only messages of {@link POOLED_MIN_BYTES} to {@link POOLED_MAX_BYTES} use it; at most
 * {@link MAX_IDLE_BUFFERS} buffers and {@link MAX_IDLE_BYTES} bytes wait idle (the oldest go
 * first); buffers in use are bounded by what holds them (the transport's buffer budget, the
 * executor's queues).
 *
 * @module
 */

/** Messages from this size use pooled memory (smaller ones cost little to allocate). */
export const POOLED_MIN_BYTES = 16 << 10;
/** Messages over this size never use pooled memory (allocated as they arrive, as before). */
export const POOLED_MAX_BYTES = 16 << 20;
/** At most this many idle buffers are kept. */
export const MAX_IDLE_BUFFERS = 8;
/** At most this many idle bytes are kept. */
export const MAX_IDLE_BYTES = 64 << 20;
/** Room kept beyond a message so its largest tensor can be placed 16-byte aligned. */
export const ALIGN_SLACK = 15;

/** Shared memory lent to one request at a time; see the module. */
export class RequestBuffer {
  #holds = 1;
  #reusable = false;

  /**
   * @param buffer the memory
   * @param pool where it goes back, when reusable
   */
  constructor(readonly buffer: SharedArrayBuffer, readonly pool: RequestMemory) {}

  /** Holders now (the taker is the first). */
  get holds(): number {
    return this.#holds;
  }

  /** Whether someone vouched that no view of it outlives the holds. */
  get reusable(): boolean {
    return this.#reusable;
  }

  /** One more holder (it must {@link release} once it no longer reads the memory). */
  hold(): void {
    if (this.#holds <= 0) throw new Error("Cannot hold a released request buffer");
    this.#holds++;
  }

  /** A holder is done; the last one gives the memory back if it is reusable. */
  release(): void {
    if (this.#holds <= 0) throw new Error("Request buffer released more often than held");
    if (--this.#holds > 0 || !this.#reusable) return;
    this.pool.give(this);
    const then = this.#then;
    this.#then = undefined;
    if (then !== undefined) { for (const f of then) f(); }
  }

  #then: (() => void)[] | undefined = undefined;

  /**
   * Runs `f` once the last holder let go, if the memory is reusable (never otherwise): for
   * memory that lives exactly as long, such as a worker's output buffers read to answer the call.
   */
  whenReused(f: () => void): void {
    if (this.#holds <= 0) throw new Error("Cannot wait on a released request buffer");
    (this.#then ??= []).push(f);
  }

  /** No view of the memory outlives the holds: it may be reused once they are released. */
  allowReuse(): void {
    this.#reusable = true;
  }
}

/**
 * Idle shared buffers of exact sizes, at most {@link MAX_IDLE_BUFFERS} and
 * {@link MAX_IDLE_BYTES} (the oldest go first): a worker's reused output memory (shared_model.ts
 * `postedImage`).
 */
export class SharedBufferPool {
  readonly #idle: SharedArrayBuffer[] = [];
  #idleBytes = 0;

  /** Idle buffers now. */
  get idle(): number {
    return this.#idle.length;
  }

  /** An idle buffer of exactly `bytes`, or undefined. */
  take(bytes: number): SharedArrayBuffer | undefined {
    const idle = this.#idle;
    for (let i = idle.length - 1; i >= 0; i--) {
      if (idle[i].byteLength === bytes) {
        this.#idleBytes -= bytes;
        return idle.splice(i, 1)[0];
      }
    }
    return undefined;
  }

  /** Takes back a buffer no one reads any more. */
  give(buffer: SharedArrayBuffer): void {
    const idle = this.#idle;
    if (buffer.byteLength > MAX_IDLE_BYTES || idle.includes(buffer)) return;
    idle.push(buffer);
    this.#idleBytes += buffer.byteLength;
    while (idle.length > MAX_IDLE_BUFFERS || this.#idleBytes > MAX_IDLE_BYTES) {
      this.#idleBytes -= idle.shift()!.byteLength;
    }
  }
}

/** A pool of idle {@link RequestBuffer}s. */
export class RequestMemory {
  readonly #idle: SharedArrayBuffer[] = [];
  #idleBytes = 0;

  /** Idle buffers now. */
  get idle(): number {
    return this.#idle.length;
  }

  /**
   * An idle buffer of at least `bytes` (and at most twice that, so a small request does not
   * hold a large buffer), or undefined.
   */
  take(bytes: number): RequestBuffer | undefined {
    const idle = this.#idle;
    let best = -1;
    for (let i = 0; i < idle.length; i++) {
      const n = idle[i].byteLength;
      if (n >= bytes && n <= 2 * bytes && (best < 0 || n < idle[best].byteLength)) best = i;
    }
    if (best < 0) return undefined;
    const buffer = idle.splice(best, 1)[0];
    this.#idleBytes -= buffer.byteLength;
    return new RequestBuffer(buffer, this);
  }

  /** A new buffer of `bytes` (the caller checked the size against its limits). */
  create(bytes: number): RequestBuffer {
    return new RequestBuffer(new SharedArrayBuffer(bytes), this);
  }

  /** Takes back a buffer no one reads any more ({@link RequestBuffer.release} calls it). */
  give(b: RequestBuffer): void {
    const buffer = b.buffer;
    if (b.holds !== 0 || buffer.byteLength > MAX_IDLE_BYTES) return;
    const idle = this.#idle;
    if (idle.includes(buffer)) throw new Error("Request buffer given back twice");
    idle.push(buffer);
    this.#idleBytes += buffer.byteLength;
    while (idle.length > MAX_IDLE_BUFFERS || this.#idleBytes > MAX_IDLE_BYTES) {
      this.#idleBytes -= idle.shift()!.byteLength;
    }
  }
}
