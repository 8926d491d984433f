/**
 * HPACK's cost per header block, on blocks captured from real clients (by
 * tests/api/grpc/h2/hpack_interop_test.ts's listener): a grpc-js unary call's second block
 * (dynamic-table indices, Huffman-coded :path, one grpc-timeout inserted each time) decoded
 * over and over on one decoder as a connection would, and the same with three methods in turn
 * (the decoder remembers two unindexed values per name, so the :path is decoded every time); h2load's second block (indices only); the
 * first grpc-js block on a fresh decoder (every string Huffman-decoded, seven insertions); and
 * the server's response headers and trailers encoded. Prints ns per block, the median of rounds,
 * and its ratio to a baseline measured in the same run: the native TextDecoder turning the same
 * grpc-js block's octets into one string (about the least any decoder of it could cost in JS).
 *
 *   deno run scripts/bench/hpack.ts [--rounds=15] [--blocks=100000]
 *
 * @module
 */
import { HpackDecoder, HpackEncoder } from "../../src/api/grpc/h2/hpack.ts";
import { huffmanEncodedLength, huffmanEncodeInto } from "../../src/api/grpc/h2/huffman.ts";

const arg = (name: string, dflt: number) => {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const ROUNDS = arg("rounds", 15);
const BLOCKS = arg("blocks", 100000);

function hex(s: string): Uint8Array {
  return Uint8Array.from(
    { length: s.length / 2 },
    (_, i) => parseInt(s.slice(2 * i, 2 * i + 2), 16),
  );
}

// grpc-js 1.14 (Predict, deadline set), first and second call on one connection.
const GRPC_FIRST = hex(
  "418b089d5c0b8170dc680203bf8304a06125a907b25a0fe17416cee6aa65f5d8590c4498f56e2d9dcc42b1aec2c8622786" +
    "408e9acac8b0c842d6958b510f21aa9b903485a9264fafa90b2d03497ea6f66aff50863485a9264faf40899acac8b24d49" +
    "4f6a7f850befbc1a7f7a8e9acac8b54790ab7443015c2d2eef5f8b1d75d0620d263d4c4d656440027465864d833505b11f",
);
const GRPC_SECOND = hex(
  "c48304a06125a907b25a0fe17416cee6aa65f5d8590c4498f56e2d9dcc42b1aec2c8622786c3c27f028410000053c1c0bf",
);
/** GRPC_SECOND with another :path (same octets around it), for calls that alternate methods. */
function withPath(path: string): Uint8Array {
  const length = huffmanEncodedLength(path);
  if (length > 126) throw new Error("path too long for this sketch");
  const head = GRPC_SECOND.subarray(0, 3); // c4 83 04: indexed, indexed, :path unindexed
  const tail = GRPC_SECOND.subarray(3 + 1 + 32); // after a0 and the 32 octets of the path
  const out = new Uint8Array(3 + 1 + length + tail.length);
  out.set(head);
  out[3] = 0x80 | length;
  huffmanEncodeInto(path, out, 4);
  out.set(tail, 4 + length);
  return out;
}
const GRPC_OTHER_METHODS = [
  withPath("/tensorflow.serving.PredictionService/Predict"),
  withPath("/tensorflow.serving.PredictionService/Classify"),
  withPath("/tensorflow.serving.PredictionService/Regress"),
];

// h2load (nghttp2), GET /x with content-type and a custom header, second request.
const H2LOAD_FIRST = hex(
  "04022f7886418b089d5c0b8170dc65903ecf827a8f9c541c722954d3a5358980aed897075f8b1d75d0620d263d4c4d656" +
    "4408bf2b12d424f4ad3947216cf931a9dc745a550f551e94c76cb2d23a9621e42c9",
);
const H2LOAD_SECOND = hex("04022f7886c182c0bfbe");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** One measured case: what it runs and how many fields a call handles. */
interface Case {
  readonly label: string;
  readonly fields: number;
  readonly run: () => number;
}

const utf8 = new TextDecoder();
const grpcConn = new HpackDecoder();
grpcConn.decode(GRPC_FIRST);
const h2Conn = new HpackDecoder();
h2Conn.decode(H2LOAD_FIRST);
const encoder = new HpackEncoder();
const headers = [":status", "200", "content-type", "application/grpc"];
const trailers = ["grpc-status", "0", "grpc-message", "model not found"];

let rotate = 0;
const CASES: Case[] = [
  {
    label: "baseline: TextDecoder on the grpc-js 2nd block",
    fields: grpcConn.decode(GRPC_SECOND).fields.length / 2,
    run: () => utf8.decode(GRPC_SECOND).length,
  },
  {
    label: "decode grpc-js 2nd block (steady connection)",
    fields: grpcConn.decode(GRPC_SECOND).fields.length / 2,
    run: () => grpcConn.decode(GRPC_SECOND).fields.length,
  },
  {
    label: "decode grpc-js 2nd blocks, 3 methods in turn",
    fields: grpcConn.decode(GRPC_SECOND).fields.length / 2,
    run: () => grpcConn.decode(GRPC_OTHER_METHODS[rotate = (rotate + 1) % 3]).fields.length,
  },
  {
    label: "decode h2load 2nd block (indices only)",
    fields: h2Conn.decode(H2LOAD_SECOND).fields.length / 2,
    run: () => h2Conn.decode(H2LOAD_SECOND).fields.length,
  },
  {
    label: "decode grpc-js 1st block (fresh decoder, Huffman)",
    fields: new HpackDecoder().decode(GRPC_FIRST).fields.length / 2,
    run: () => new HpackDecoder().decode(GRPC_FIRST).fields.length,
  },
  {
    label: "encode response headers + trailers (uncached)",
    fields: 4,
    run: () => encoder.encode(headers).length + encoder.encode(trailers).length,
  },
];

// Rounds interleave the cases, so a change in the machine's load touches them alike.
const rounds: number[][] = CASES.map(() => []);
let sink = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const [c, { run }] of CASES.entries()) {
    const t0 = performance.now();
    for (let i = 0; i < BLOCKS; i++) sink += run();
    rounds[c].push(((performance.now() - t0) * 1e6) / BLOCKS);
  }
}
const baselineNs = median(rounds[0]);
for (const [c, { label, fields }] of CASES.entries()) {
  const ns = median(rounds[c]);
  const ratio = c === 0 ? "baseline" : `${(ns / baselineNs).toFixed(2)}× baseline`;
  console.log(
    `${label.padEnd(50)} ${ns.toFixed(0).padStart(5)} ns/block ${
      (ns / fields).toFixed(0).padStart(4)
    } ns/field  ${ratio.padEnd(15)} (min ${Math.min(...rounds[c]).toFixed(0)})`,
  );
}
if (sink === 0.5) console.log(sink); // keeps the results alive
