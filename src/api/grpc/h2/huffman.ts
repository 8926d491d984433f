/**
 * The HPACK Huffman code (RFC 7541 §5.2, Appendix B): a table-driven decoder and an encoder, both
 * built from the code lengths alone. The code is canonical (codes of one length
 * are consecutive, in symbol order, and each length starts where the shorter ones ended, shifted),
 * so the 257 lengths determine every code; the test checks the derived codes against Appendix B.
 *
 * The decoder walks the code tree eight bits at a time: a state is an internal node of the tree,
 * and one lookup per octet gives the next state, the symbols emitted on the way (at most two, as
 * no code is shorter than five bits), whether EOS was reached (an error, §5.2) and whether
 * stopping there is allowed (the bits since the last symbol are at most seven 1s: a prefix of
 * EOS used as padding). The table's entries are filled from the tree as they are first used.
 *
 * @module
 */

/** The EOS symbol's number: one past the last octet. */
export const HUFFMAN_EOS = 256;

/**
 * Code length in bits of each symbol, octets 0–255 then EOS (RFC 7541 Appendix B, "len").
 */
// deno-fmt-ignore
export const HUFFMAN_CODE_LENGTHS: Readonly<Uint8Array> = Uint8Array.of(
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0–15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16–31
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6, // 32–47
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10, // 48–63
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, // 64–79
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6, // 80–95
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5, // 96–111
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28, // 112–127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128–143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144–159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160–175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176–191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192–207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208–223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224–239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240–255
  30, // EOS
);

/** Each symbol's code (right-aligned in `HUFFMAN_CODE_LENGTHS[sym]` bits), derived canonically. */
export const HUFFMAN_CODES: Readonly<Uint32Array> = canonicalCodes(HUFFMAN_CODE_LENGTHS);

/**
 * Canonical codes from lengths (as DEFLATE assigns them, RFC 1951 §3.2.2): count the codes of
 * each length, give each length its first code, then hand out codes in symbol order.
 */
function canonicalCodes(lengths: Readonly<Uint8Array>): Uint32Array {
  const MAX = 32;
  const count = new Uint32Array(MAX);
  for (const len of lengths) count[len]++;
  const next = new Uint32Array(MAX);
  for (let len = 1, code = 0; len < MAX; len++) {
    code = (code + count[len - 1]) * 2; // count[0] = 0: no symbol has length 0
    next[len] = code;
  }
  const codes = new Uint32Array(lengths.length);
  for (let sym = 0; sym < lengths.length; sym++) codes[sym] = next[lengths[sym]]++;
  return codes;
}

/** In the decoder's tree, a child that is a leaf: LEAF | symbol (else an internal node's number). */
const LEAF = 1 << 12;

/** The code tree: `tree[2 * node + bit]`, 256 internal nodes, the root is 0; built on first use. */
let tree: Int32Array | undefined;
/** The internal nodes where a string may end: the root, and the all-ones path to depth 7 (EOS's prefix as padding). */
const acceptingNodes = new Uint8Array(256);

function buildTree(): Int32Array {
  const child = new Int32Array(2 * 256).fill(-1);
  let nodes = 1;
  for (let sym = 0; sym <= HUFFMAN_EOS; sym++) {
    const code = HUFFMAN_CODES[sym];
    let node = 0;
    for (let i = HUFFMAN_CODE_LENGTHS[sym] - 1; i > 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (child[slot] < 0) child[slot] = nodes++;
      node = child[slot];
    }
    child[2 * node + (code & 1)] = LEAF | sym;
  }
  if (nodes !== 256) throw new Error(`Huffman tree has ${nodes} internal nodes, not 256`);
  acceptingNodes[0] = 1;
  for (let node = 0, depth = 0; depth < 7; depth++) {
    node = child[2 * node + 1];
    acceptingNodes[node] = 1;
  }
  return child;
}

// Transition entry: bits 0–7 the next state, 8–15 the first symbol, 16–23 the second, then the
// flags. From any state, 8 bits end at most two codes (the shortest is 5 bits). No filled entry
// is 0 (a step back to the root emits a symbol; the root accepts), so 0 means "not filled yet".
const EMIT_ONE = 1 << 24;
const EMIT_TWO = 1 << 25;
const ACCEPT = 1 << 26;
const FAIL = 1 << 27;

/**
 * 256 states × 256 octets (256 KiB, zeroed), each entry filled from the tree on its first use:
 * building all of it up front costs a few ms of cold code that start-up (spawn to first answer)
 * would pay, and a client's strings only ever meet a small part of it.
 */
let transitions: Uint32Array | undefined;

/** Walks the tree from state `index >> 8` along the octet `index & 0xff`; stores and returns the entry. */
function fill(table: Uint32Array, index: number): number {
  const child = tree ??= buildTree();
  let node = index >> 8;
  let entry = 0;
  for (let bit = 7; bit >= 0; bit--) {
    const next = child[2 * node + (((index & 0xff) >> bit) & 1)];
    if ((next & LEAF) === 0) {
      node = next;
      continue;
    }
    const sym = next & 0x1ff;
    if (sym === HUFFMAN_EOS) return table[index] = FAIL;
    entry |= entry & EMIT_ONE ? EMIT_TWO | (sym << 16) : EMIT_ONE | (sym << 8);
    node = 0;
  }
  return table[index] = entry | node | (acceptingNodes[node] ? ACCEPT : 0);
}

/**
 * Decodes the Huffman-coded octets `src[start..end)` into `out` from index 0.
 *
 * @param out must hold at least `huffmanDecodedCapacity(end - start)` octets
 * @returns the number of octets written, or -1 when the input is not a valid HPACK Huffman
 *   string: it contains EOS, or its padding is longer than 7 bits or not a prefix of EOS (1s)
 */
export function huffmanDecode(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
): number {
  const t = transitions ??= new Uint32Array(256 * 256);
  let entry = ACCEPT;
  let n = 0;
  for (let i = start; i < end; i++) {
    const index = ((entry & 0xff) << 8) | src[i];
    entry = t[index];
    if (entry === 0) entry = fill(t, index);
    if (entry & (EMIT_ONE | FAIL)) {
      if (entry & FAIL) return -1;
      out[n++] = entry >> 8;
      if (entry & EMIT_TWO) out[n++] = entry >> 16;
    }
  }
  return entry & ACCEPT ? n : -1;
}

/**
 * The most octets `length` Huffman-coded octets can decode to: every code is at least 5 bits,
 * so 8/5 of the input, rounded down.
 */
export function huffmanDecodedCapacity(length: number): number {
  return Math.floor((length * 8) / 5);
}

/**
 * The length in octets of `s` Huffman-coded (padding included).
 *
 * @param s octets as a latin1 string (every char code ≤ 0xff)
 * @throws RangeError on a char code above 0xff
 */
export function huffmanEncodedLength(s: string): number {
  const lengths = HUFFMAN_CODE_LENGTHS;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`char code ${c} at ${i} is not an octet`);
    bits += lengths[c];
  }
  return (bits + 7) >> 3;
}

/**
 * Writes `s` Huffman-coded into `out` at `pos`, padded with 1s (the EOS prefix) to an octet.
 *
 * @param s octets as a latin1 string (checked by {@link huffmanEncodedLength})
 * @param out must hold `huffmanEncodedLength(s)` octets from `pos`
 * @returns the position after the last octet written
 */
export function huffmanEncodeInto(s: string, out: Uint8Array, pos: number): number {
  const lengths = HUFFMAN_CODE_LENGTHS;
  const codes = HUFFMAN_CODES;
  let acc = 0; // pending bits, fewer than 8 between symbols
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    let len = lengths[c];
    const code = codes[c];
    if (len > 24) {
      // 7 pending + up to 30 bits would not fit 32: put the high part through first.
      const high = len - 16;
      acc = (acc << high) | (code >>> 16);
      bits += high;
      while (bits >= 8) {
        bits -= 8;
        out[pos++] = acc >>> bits;
      }
      acc &= (1 << bits) - 1;
      len = 16;
    }
    acc = (acc << len) | (code & ((1 << len) - 1));
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      out[pos++] = acc >>> bits;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out[pos++] = (acc << (8 - bits)) | (0xff >> bits);
  return pos;
}
