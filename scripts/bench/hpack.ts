/**
 * HPACK's cost per header block, on blocks captured from real clients (by
 * tests/api/grpc/h2/hpack_interop_test.ts's listener): a grpc-js unary call's second block
 * (dynamic-table indices, Huffman-coded :path, one grpc-timeout inserted each time) decoded
 * over and over on one decoder as a connection would; h2load's second block (indices only); the
 * first grpc-js block on a fresh decoder (every string Huffman-decoded, seven insertions); and
 * the server's response headers and trailers encoded. Prints ns per block, the median of rounds.
 *
 *   deno run scripts/bench/hpack.ts [--rounds=15] [--blocks=200000]
 *
 * @module
 */
import { HpackDecoder, HpackEncoder } from "../../src/api/grpc/h2/hpack.ts";

const arg = (name: string, dflt: number) => {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const ROUNDS = arg("rounds", 15);
const BLOCKS = arg("blocks", 200000);

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

/** ns per call of `fn` (called BLOCKS times per round), median of ROUNDS. */
function measure(label: string, fields: number, fn: (i: number) => number): void {
  let sink = 0;
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < BLOCKS; i++) sink += fn(i);
    rounds.push(((performance.now() - t0) * 1e6) / BLOCKS);
  }
  const ns = median(rounds);
  console.log(
    `${label.padEnd(52)} ${ns.toFixed(0).padStart(6)} ns/block  ${
      (ns / fields).toFixed(0).padStart(4)
    } ns/field  (min ${Math.min(...rounds).toFixed(0)}, sink ${sink % 10})`,
  );
}

const grpcConn = new HpackDecoder();
grpcConn.decode(GRPC_FIRST);
const grpcFields = grpcConn.decode(GRPC_SECOND).fields.length / 2;
measure("decode grpc-js 2nd block (steady connection)", grpcFields, () => {
  return grpcConn.decode(GRPC_SECOND).fields.length;
});

const h2Conn = new HpackDecoder();
h2Conn.decode(H2LOAD_FIRST);
const h2Fields = h2Conn.decode(H2LOAD_SECOND).fields.length / 2;
measure("decode h2load 2nd block (indices only)", h2Fields, () => {
  return h2Conn.decode(H2LOAD_SECOND).fields.length;
});

const firstFields = new HpackDecoder().decode(GRPC_FIRST).fields.length / 2;
measure("decode grpc-js 1st block (fresh decoder, Huffman)", firstFields, () => {
  return new HpackDecoder().decode(GRPC_FIRST).fields.length;
});

const encoder = new HpackEncoder();
const headers = [
  ":status",
  "200",
  "content-type",
  "application/grpc",
  "grpc-accept-encoding",
  "identity",
];
const trailers = ["grpc-status", "0", "grpc-message", ""];
measure("encode response headers + trailers (uncached)", 5, () => {
  return encoder.encode(headers).length + encoder.encode(trailers).length;
});
