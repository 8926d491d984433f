/**
 * TFRecord files (`tensorflow/core/lib/io/record_reader.cc` / `record_writer.cc`): each record is
 * a little-endian uint64 length, the masked CRC32C of those 8 bytes, the data, and the masked
 * CRC32C of the data. TF Serving's warmup file (`assets.extra/tf_serving_warmup_requests`) is
 * one, holding serialized PredictionLog records.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { crc32c, maskCrc } from "./crc32c.ts";

const HEADER = 12;
const FOOTER = 4;

/**
 * Reads every record of a TFRecord file, checking both CRCs of each.
 *
 * @param bytes the file
 * @param path the file's path, for messages
 * @param maxRecords fail once more than this many records are present
 * @throws ServingError DATA_LOSS for a corrupted or truncated record, naming the offset
 */
export function readTFRecords(
  bytes: Uint8Array,
  path: string,
  maxRecords = Infinity,
): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < HEADER) {
      throw new ServingError(Code.DATA_LOSS, `truncated record at ${off} in ${path}`);
    }
    const len = view.getBigUint64(off, true);
    if (view.getUint32(off + 8, true) !== maskCrc(crc32c(bytes.subarray(off, off + 8)))) {
      throw new ServingError(Code.DATA_LOSS, `corrupted record at ${off} in ${path}`);
    }
    const n = Number(len);
    const start = off + HEADER;
    if (!Number.isSafeInteger(n) || bytes.length - start < n + FOOTER) {
      throw new ServingError(Code.DATA_LOSS, `truncated record at ${off} in ${path}`);
    }
    const data = bytes.subarray(start, start + n);
    if (view.getUint32(start + n, true) !== maskCrc(crc32c(data))) {
      throw new ServingError(Code.DATA_LOSS, `corrupted record at ${off} in ${path}`);
    }
    records.push(data);
    if (records.length > maxRecords) break;
    off = start + n + FOOTER;
  }
  return records;
}

/** Writes records as a TFRecord file. */
export function writeTFRecords(records: readonly Uint8Array[]): Uint8Array {
  const size = records.reduce((s, r) => s + HEADER + r.length + FOOTER, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let off = 0;
  for (const r of records) {
    view.setBigUint64(off, BigInt(r.length), true);
    view.setUint32(off + 8, maskCrc(crc32c(out.subarray(off, off + 8))), true);
    out.set(r, off + HEADER);
    view.setUint32(off + HEADER + r.length, maskCrc(crc32c(r)), true);
    off += HEADER + r.length + FOOTER;
  }
  return out;
}
