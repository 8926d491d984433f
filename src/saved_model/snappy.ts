/**
 * Snappy block decompression, as TensorFlow's table reader needs it for compressed blocks of a
 * variables index (`table/format.cc` ReadBlock with `kSnappyCompression`). The format is
 * google/snappy's `format_description.txt`: a varint of the uncompressed length, then literal
 * and copy elements. Written here rather than taken from an npm package so that reading a
 * SavedModel loads no CommonJS module (Node compatibility costs start-up time) and so that every
 * size is checked before anything is allocated: the declared length against `maxLength`, each
 * element against the bytes left on both sides.
 *
 * @module
 */

/** A compressed block that does not decode; the message says where and why. */
export class SnappyError extends Error {
  /** @param message what is wrong, with the offset in the compressed block */
  constructor(message: string) {
    super(message);
    this.name = "SnappyError";
  }
}

/**
 * Decompresses one snappy block.
 *
 * @param src the compressed bytes
 * @param maxLength the largest uncompressed length accepted (checked before allocating)
 * @returns a new array holding exactly the declared number of bytes
 * @throws SnappyError when the block is malformed or declares more than `maxLength` bytes
 */
export function uncompress(src: Uint8Array, maxLength: number): Uint8Array {
  // Preamble: the uncompressed length, a varint of at most 32 bits.
  let length = 0;
  let pos = 0;
  for (let shift = 0;; shift += 7) {
    if (pos >= src.length) throw new SnappyError("truncated length preamble");
    if (shift > 28) throw new SnappyError("length preamble longer than 5 bytes");
    const b = src[pos++];
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (length > 0xffffffff) throw new SnappyError("length preamble over 32 bits");
  if (length > maxLength) {
    throw new SnappyError(`uncompressed length ${length} exceeds the limit of ${maxLength} bytes`);
  }
  const out = new Uint8Array(length);
  let o = 0;
  while (pos < src.length) {
    const at = pos;
    const tag = src[pos++];
    const kind = tag & 3;
    if (kind === 0) {
      // Literal: length - 1 in the tag's upper six bits, or in the 1-4 bytes that follow.
      let n = tag >>> 2;
      if (n >= 60) {
        const extra = n - 59;
        if (pos + extra > src.length) throw new SnappyError(`truncated literal length at ${at}`);
        n = 0;
        for (let i = 0; i < extra; i++) n += src[pos + i] * 2 ** (8 * i);
        pos += extra;
      }
      n += 1;
      if (n > src.length - pos) throw new SnappyError(`literal past the end of input at ${at}`);
      if (n > length - o) throw new SnappyError(`literal past the declared length at ${at}`);
      out.set(src.subarray(pos, pos + n), o);
      pos += n;
      o += n;
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      if (pos + 1 > src.length) throw new SnappyError(`truncated copy at ${at}`);
      n = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | src[pos];
      pos += 1;
    } else if (kind === 2) {
      if (pos + 2 > src.length) throw new SnappyError(`truncated copy at ${at}`);
      n = 1 + (tag >>> 2);
      offset = src[pos] | (src[pos + 1] << 8);
      pos += 2;
    } else {
      if (pos + 4 > src.length) throw new SnappyError(`truncated copy at ${at}`);
      n = 1 + (tag >>> 2);
      offset = (src[pos] | (src[pos + 1] << 8) | (src[pos + 2] << 16)) + src[pos + 3] * 2 ** 24;
      pos += 4;
    }
    if (offset === 0 || offset > o) throw new SnappyError(`copy offset ${offset} invalid at ${at}`);
    if (n > length - o) throw new SnappyError(`copy past the declared length at ${at}`);
    if (offset >= n) {
      out.copyWithin(o, o - offset, o - offset + n);
      o += n;
    } else {
      // Overlapping copy: a run repeating the last `offset` bytes, byte by byte.
      for (let i = 0; i < n; i++, o++) out[o] = out[o - offset];
    }
  }
  if (o !== length) {
    throw new SnappyError(`decoded ${o} bytes where the preamble declares ${length}`);
  }
  return out;
}
