/**
 * HPACK against real peers: a bare HTTP/2 listener on 127.0.0.1 (its own minimal frame reader)
 * takes two requests each from the project's grpc-js client and from h2load, decodes their header
 * blocks with {@link HpackDecoder} (the second request of each refers to the dynamic table and
 * carries Huffman-coded strings), and answers with blocks from {@link HpackEncoder}, which the
 * clients' own HPACK decoders (nghttp2 in both) must accept.
 */
import assert from "node:assert/strict";
import { HpackDecoder, HpackEncoder } from "../../../../src/api/grpc/h2/hpack.ts";
import { PredictionServiceClient } from "../../../../src/client/grpc_client.ts";
import { Code, ServingError } from "../../../../src/errors.ts";

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA = 0x0;
const HEADERS = 0x1;
const SETTINGS = 0x4;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  out[0] = payload.length >>> 16;
  out[1] = payload.length >>> 8;
  out[2] = payload.length;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, stream);
  out.set(payload, 9);
  return out;
}

/** One request's header block as sent (HEADERS + CONTINUATION payloads joined), and its stream. */
interface CapturedBlock {
  readonly stream: number;
  readonly block: Uint8Array;
}

/**
 * Serves one connection: reads the preface and frames, collects each request's header block and
 * answers it with `response` (a whole header block, END_STREAM) once the request has ended.
 */
async function serveOne(
  listener: Deno.Listener,
  response: Uint8Array,
  wanted: number,
): Promise<CapturedBlock[]> {
  const conn = await listener.accept();
  const blocks: CapturedBlock[] = [];
  let buf = new Uint8Array(0);
  let pending: { stream: number; parts: Uint8Array[]; ended: boolean } | undefined;
  const ended = new Set<number>();
  const answered = new Set<number>();
  const captured = new Map<number, Uint8Array>();
  let prefaceSeen = false;
  await conn.write(frame(SETTINGS, 0, 0, new Uint8Array(0)));
  const chunk = new Uint8Array(65536);
  try {
    while (blocks.length < wanted) {
      const n = await conn.read(chunk);
      if (n === null) break;
      const joined = new Uint8Array(buf.length + n);
      joined.set(buf);
      joined.set(chunk.subarray(0, n), buf.length);
      buf = joined;
      let pos = 0;
      if (!prefaceSeen) {
        if (buf.length < 24) continue;
        assert.equal(new TextDecoder().decode(buf.subarray(0, 24)), PREFACE);
        prefaceSeen = true;
        pos = 24;
      }
      while (buf.length - pos >= 9) {
        const length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2];
        if (buf.length - pos < 9 + length) break;
        const type = buf[pos + 3];
        const flags = buf[pos + 4];
        const stream = new DataView(buf.buffer, buf.byteOffset + pos + 5, 4).getUint32(0) &
          0x7fffffff;
        let payload = buf.subarray(pos + 9, pos + 9 + length);
        pos += 9 + length;
        if (type === SETTINGS && (flags & 1) === 0) {
          await conn.write(frame(SETTINGS, 1, 0, new Uint8Array(0)));
        } else if (type === HEADERS) {
          if (flags & PADDED) payload = payload.subarray(1, payload.length - payload[0]);
          if (flags & PRIORITY) payload = payload.subarray(5);
          pending = { stream, parts: [payload.slice()], ended: (flags & END_STREAM) !== 0 };
          if (flags & END_HEADERS) {
            captured.set(stream, pending.parts[0]);
            if (pending.ended) ended.add(stream);
            pending = undefined;
          }
        } else if (type === CONTINUATION && pending) {
          pending.parts.push(payload.slice());
          if (flags & END_HEADERS) {
            const total = pending.parts.reduce((a, p) => a + p.length, 0);
            const block = new Uint8Array(total);
            let at = 0;
            for (const p of pending.parts) {
              block.set(p, at);
              at += p.length;
            }
            captured.set(stream, block);
            if (pending.ended) ended.add(stream);
            pending = undefined;
          }
        } else if (type === DATA && (flags & END_STREAM)) {
          ended.add(stream);
        }
      }
      buf = buf.slice(pos);
      for (const [stream, block] of captured) {
        if (!answered.has(stream) && ended.has(stream)) {
          answered.add(stream);
          blocks.push({ stream, block });
          await conn.write(frame(HEADERS, END_STREAM | END_HEADERS, stream, response));
        }
      }
    }
  } finally {
    // Let the last answer reach the client before the connection goes.
    await new Promise((r) => setTimeout(r, 50));
    conn.close();
  }
  return blocks;
}

function fieldMap(fields: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < fields.length; i += 2) m.set(fields[i], fields[i + 1]);
  return m;
}

/** The blocks' octets contain `text` as raw octets (not Huffman-coded). */
function containsRaw(block: Uint8Array, text: string): boolean {
  return latin1Of(block).includes(text);
}

function latin1Of(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => String.fromCharCode(b)).join("");
}

/**
 * Decodes both requests' blocks on one decoder; checks that the second one refers to the
 * dynamic table (a fresh decoder refuses it) and is much shorter.
 */
function decodeBoth(blocks: CapturedBlock[]): [Map<string, string>, Map<string, string>] {
  const decoder = new HpackDecoder();
  const first = decoder.decode(blocks[0].block);
  assert.equal(first.oversize, false);
  assert.ok(decoder.dynamicTableEntries().length > 0, "the first request indexed nothing");
  const second = decoder.decode(blocks[1].block);
  assert.equal(second.oversize, false);
  // The second request repeats the first's fields by dynamic index: it is much shorter.
  assert.ok(
    blocks[1].block.length * 2 < blocks[0].block.length,
    `second block ${blocks[1].block.length} octets, first ${blocks[0].block.length}`,
  );
  assert.throws(() => new HpackDecoder().decode(blocks[1].block), /beyond the static/);
  return [fieldMap(first.fields), fieldMap(second.fields)];
}

Deno.test("grpc-js: two unary calls' header blocks decode; it accepts our trailers-only answer", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const answer = new HpackEncoder().encode([
    ":status",
    "200",
    "content-type",
    "application/grpc",
    "grpc-status",
    String(Code.UNIMPLEMENTED),
    "grpc-message",
    "hpack interop: not a real server",
  ]);
  const served = serveOne(listener, answer, 2);
  using client = new PredictionServiceClient(`127.0.0.1:${port}`, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  for (const name of ["first", "second"]) {
    await assert.rejects(
      client.predict({ modelSpec: { name } }, { deadlineMs: 20000 }),
      (e: unknown) => {
        assert.ok(e instanceof ServingError, String(e));
        assert.equal(Code[e.code], "UNIMPLEMENTED", e.message);
        assert.match(e.message, /hpack interop: not a real server/);
        return true;
      },
    );
  }
  const blocks = await served;
  assert.equal(blocks.length, 2);
  const [first, second] = decodeBoth(blocks);
  for (const f of [first, second]) {
    assert.equal(f.get(":method"), "POST");
    assert.equal(f.get(":scheme"), "http");
    assert.equal(f.get(":path"), "/tensorflow.serving.PredictionService/Predict");
    assert.equal(f.get(":authority"), `127.0.0.1:${port}`);
    assert.equal(f.get("content-type"), "application/grpc");
    assert.equal(f.get("te"), "trailers");
    assert.match(f.get("user-agent") ?? "", /^grpc-node-js\//);
  }
  assert.match(first.get("grpc-timeout") ?? "", /^\d+[HMSmun]$/);
  // Its strings are Huffman-coded (shorter than raw for these).
  assert.equal(containsRaw(blocks[0].block, "application/grpc"), false);
  assert.deepEqual([...first.keys()], [...second.keys()]);
});

Deno.test("h2load: two requests' header blocks decode; it counts our :status 200 answers", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const served = serveOne(listener, new HpackEncoder().encode([":status", "200"]), 2);
  const out = await new Deno.Command("h2load", {
    args: [
      "-n2",
      "-c1",
      "-m1",
      `http://127.0.0.1:${port}/x`,
      "-H",
      "content-type: application/grpc",
      "-H",
      "x-custom-header: a value only Huffman-coded",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const blocks = await served;
  assert.match(text, /2 succeeded/, text + new TextDecoder().decode(out.stderr));
  assert.match(text, /status codes: 2 2xx/);
  assert.equal(blocks.length, 2);
  const [first, second] = decodeBoth(blocks);
  for (const f of [first, second]) {
    assert.equal(f.get(":method"), "GET");
    assert.equal(f.get(":scheme"), "http");
    assert.equal(f.get(":path"), "/x");
    assert.equal(f.get(":authority"), `127.0.0.1:${port}`);
    assert.equal(f.get("content-type"), "application/grpc");
    assert.equal(f.get("x-custom-header"), "a value only Huffman-coded");
    assert.match(f.get("user-agent") ?? "", /^h2load/);
  }
  assert.equal(containsRaw(blocks[0].block, "a value only Huffman-coded"), false);
});
