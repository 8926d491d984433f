/**
 * A seeded PRNG (mulberry32) and byte mutators for the fuzz tests: the same seed gives the same
 * cases, so a failure names its seed and case and replays.
 *
 * @module
 */

/** A small deterministic generator. */
export class Prng {
  #s: number;

  /** @param seed any 32-bit integer */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** One of the items. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A varint of an interesting value: small, a boundary, or huge. */
  varint(): Uint8Array {
    const v = this.pick([
      0n,
      1n,
      127n,
      128n,
      255n,
      2n ** 31n - 1n,
      2n ** 32n,
      2n ** 53n,
      2n ** 63n - 1n,
      2n ** 64n - 1n,
      BigInt(this.int(1 << 30)),
      500_000_000n,
    ]);
    const out: number[] = [];
    let x = v;
    do {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      out.push(x > 0n ? b | 0x80 : b);
    } while (x > 0n);
    return new Uint8Array(out);
  }

  /**
   * A mutation of `base`: bit flips, a truncation, bytes inserted or deleted, a random tag
   * with a random wire type, an interesting varint spliced in, or a repeated slice (nesting).
   */
  mutate(base: Uint8Array): Uint8Array {
    let b: Uint8Array = base.slice();
    const rounds = this.int(3) === 0 ? 1 + this.int(4) : 1;
    for (let r = 0; r < rounds; r++) {
      const at = this.int(b.length + 1);
      switch (this.int(8)) {
        case 0: // flip bits
          if (b.length > 0) b[this.int(b.length)] ^= 1 << this.int(8);
          break;
        case 1: // truncate
          b = b.subarray(0, at);
          break;
        case 2: // insert random bytes
          b = splice(b, at, 0, this.bytes(1 + this.int(8)));
          break;
        case 3: // delete
          b = splice(b, at, 1 + this.int(4), new Uint8Array(0));
          break;
        case 4: { // a tag with any wire type, then a value-ish varint
          const tag = ((1 + this.int(20)) << 3) | this.int(8);
          b = splice(b, at, 0, new Uint8Array([tag, ...this.varint()]));
          break;
        }
        case 5: // an interesting varint over a byte
          b = splice(b, at, 1, this.varint());
          break;
        case 6: { // a slice repeated: repeated fields, nested prefixes
          const start = this.int(b.length + 1);
          const piece = b.subarray(start, start + 1 + this.int(16));
          const times = 1 + this.int(64);
          const rep = new Uint8Array(piece.length * times);
          for (let i = 0; i < times; i++) rep.set(piece, i * piece.length);
          b = splice(b, at, 0, rep);
          break;
        }
        default: // random bytes overwritten
          if (b.length > 0) b[this.int(b.length)] = this.int(256);
      }
    }
    return b;
  }
}

function splice(b: Uint8Array, at: number, del: number, ins: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length - Math.min(del, b.length - at) + ins.length);
  out.set(b.subarray(0, at));
  out.set(ins, at);
  out.set(b.subarray(at + del), at + ins.length);
  return out;
}
