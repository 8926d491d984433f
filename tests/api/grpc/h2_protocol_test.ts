/**
 * The gRPC server's own HTTP/2 transport, frame by frame (RFC 9113 and gRPC's
 * PROTOCOL-HTTP2.md): a raw client sends what a real client would and what none should, and
 * reads exactly what comes back.
 */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type GrpcServer, startGrpcServer } from "../../../src/api/grpc/server.ts";
import {
  GetModelStatusRequestSchema,
  GetModelStatusResponseSchema,
} from "../../../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import {
  PredictRequestSchema,
  PredictResponseSchema,
} from "../../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { ReloadConfigRequestSchema } from "../../../src/proto/gen/tensorflow_serving/apis/model_management_pb.ts";
import { DataType } from "../../../src/proto/gen/tensorflow/core/framework/types_pb.ts";
import { HpackEncoder } from "../../../src/api/grpc/h2/hpack.ts";
import { Setting } from "../../../src/api/grpc/h2/frames.ts";
import { largeReadBuffersInUse } from "../../../src/api/grpc/h2/connection.ts";
import { parseGrpcTimeout, percentEncode } from "../../../src/api/grpc/server.ts";
import { FakeServingApi } from "../fixtures/fake_api.ts";
import type { ServingApi } from "../../../src/model_server/serving_api.ts";
import { encodePredictOutputs } from "../../../src/api/grpc/predict_codec.ts";
import { PredictOutputs } from "../../../src/servables/predict.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import {
  ErrorCode,
  Flag,
  frameBytes,
  FrameType,
  grpcHeaders,
  grpcMessage,
  join,
  RawH2,
  settings,
  statusOf,
  u32,
} from "./h2_client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const STATUS = "/tensorflow.serving.ModelService/GetModelStatus";
const PREDICT = "/tensorflow.serving.PredictionService/Predict";
const RELOAD = "/tensorflow.serving.ModelService/HandleReloadConfigRequest";

async function server(): Promise<GrpcServer> {
  return await startGrpcServer(new FakeServingApi(), {
    host: "127.0.0.1",
    port: 0,
    enableHealthCheck: true,
    decodeLimits: { maxRequestBytes: 1 << 20, maxExpansion: 16, expansionFloorBytes: 1 << 20 },
  });
}

const statusRequest = (name: string) =>
  grpcMessage(
    toBinary(
      GetModelStatusRequestSchema,
      create(GetModelStatusRequestSchema, { modelSpec: { name } } as never),
    ),
  );

const sleepRequest = (ms: number) =>
  grpcMessage(
    toBinary(
      ReloadConfigRequestSchema,
      create(ReloadConfigRequestSchema, { metricNames: [`sleep:${ms}`] } as never),
    ),
  );

/** A Predict request for model "m" feeding `values` as x, a float vector, in float_val. */
function floatPredict(values: number[]): Uint8Array {
  return toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, {
      modelSpec: { name: "m" },
      inputs: {
        x: {
          dtype: DataType.DT_FLOAT,
          tensorShape: { dim: [{ size: BigInt(values.length) }] },
          floatVal: values,
        },
      },
    } as never),
  );
}

Deno.test("a unary call: headers, one length-prefixed message, trailers", opts, async () => {
  await using s = await server();
  using c = await RawH2.connect(s.port);
  await c.headers(1, grpcHeaders(STATUS));
  await c.data(1, statusRequest("m"));
  const a = await c.answer(1);
  assert.equal(a.headers.length, 2);
  assert.equal(a.headers[0].get(":status"), "200");
  assert.equal(a.headers[0].get("content-type"), "application/grpc");
  assert.equal(a.headers[1].get("grpc-status"), "0");
  assert.equal(a.data[0], 0);
  const len = new DataView(a.data.buffer).getUint32(1);
  assert.equal(len, a.data.length - 5);
  fromBinary(GetModelStatusResponseSchema, a.data.subarray(5));
});

Deno.test(
  "HEADERS split over CONTINUATION, padding and a priority block are read",
  opts,
  async () => {
    await using s = await server();
    using c = await RawH2.connect(s.port);
    const block = grpcHeaders(STATUS);
    // HEADERS: PADDED | PRIORITY, the first 10 bytes of the block, 3 bytes of padding.
    const first = new Uint8Array(1 + 5 + 10 + 3);
    first[0] = 3;
    first.set(u32(0), 1);
    first[5] = 15;
    first.set(block.subarray(0, 10), 6);
    await c.send(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, first);
    await c.send(FrameType.CONTINUATION, 0, 1, block.subarray(10, 20));
    await c.send(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(20));
    await c.send(FrameType.PRIORITY, 0, 1, new Uint8Array(5));
    // DATA with 4 bytes of padding.
    const msg = statusRequest("m");
    const padded = new Uint8Array(1 + msg.length + 4);
    padded[0] = 4;
    padded.set(msg, 1);
    await c.send(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, padded);
    assert.equal(statusOf(await c.answer(1)).code, 0);
  },
);

Deno.test("a content-type that is not application/grpc is HTTP 415", opts, async () => {
  await using s = await server();
  using c = await RawH2.connect(s.port);
  const block = new HpackEncoder().encode([
    ":method",
    "POST",
    ":scheme",
    "http",
    ":path",
    STATUS,
    "content-type",
    "application/json",
  ]);
  await c.headers(1, block, true);
  const a = await c.answer(1);
  assert.equal(a.headers[0].get(":status"), "415");
});

Deno.test("an unknown method is UNIMPLEMENTED with no message", opts, async () => {
  await using s = await server();
  using c = await RawH2.connect(s.port);
  await c.headers(1, grpcHeaders("/nope.Service/Nothing"));
  await c.data(1, grpcMessage(new Uint8Array(0)));
  const a = await c.answer(1);
  // Trailers-Only: one block with :status, content-type and the status.
  assert.equal(a.headers.length, 1);
  assert.equal(a.headers[0].get(":status"), "200");
  assert.deepEqual(statusOf(a), { code: 12, message: "", http: "200" });
});

Deno.test("grpc-message is percent-encoded UTF-8", opts, async () => {
  assert.equal(percentEncode("plain text"), "plain text");
  assert.equal(percentEncode("50% ü\n"), "50%25 %C3%BC%0A");
  await using s = await server();
  using c = await RawH2.connect(s.port);
  await c.headers(1, grpcHeaders(STATUS));
  await c.data(1, statusRequest("code:3:bad 50% ü"));
  assert.deepEqual(statusOf(await c.answer(1)), {
    code: 3,
    message: "bad 50%25 %C3%BC",
    http: "200",
  });
});

Deno.test("message framing: limits, compression, missing and extra messages", opts, async () => {
  await using s = await server();
  using c = await RawH2.connect(s.port);
  // Over INT_MAX: grpc core's message_size_filter text.
  await c.headers(1, grpcHeaders(STATUS));
  await c.data(1, new Uint8Array([0, 0xff, 0xff, 0xff, 0xff]), false);
  assert.deepEqual(statusOf(await c.answer(1)), {
    code: 8,
    message: "Received message larger than max (4294967295 vs. 2147483647)",
    http: "200",
  });
  // Over the decode limit of one request (1 MiB here): refused before any byte is read.
  await c.headers(3, grpcHeaders(STATUS));
  await c.data(3, new Uint8Array([0, 0, 0x20, 0, 0]), false);
  const big = statusOf(await c.answer(3));
  assert.equal(big.code, 8);
  assert.match(big.message, /2097152 bytes.*max_request_decoded_bytes=1048576/);
  // A compressed message with an encoding this server does not inflate.
  await c.headers(5, grpcHeaders(STATUS, ["grpc-encoding", "snappy"]));
  await c.data(5, grpcMessage(new Uint8Array([1, 2]), 1));
  assert.deepEqual(statusOf(await c.answer(5)), {
    code: 12,
    message: 'Received message compressed with unsupported encoding "snappy"',
    http: "200",
  });
  // No message, a truncated one, two messages: INTERNAL "" (as an unparsable request).
  await c.headers(7, grpcHeaders(STATUS), true);
  assert.deepEqual(statusOf(await c.answer(7)), { code: 13, message: "", http: "200" });
  await c.headers(9, grpcHeaders(STATUS));
  await c.data(9, new Uint8Array([0, 0, 0, 0, 9, 1, 2]));
  assert.equal(statusOf(await c.answer(9)).code, 13);
  await c.headers(11, grpcHeaders(STATUS));
  const one = statusRequest("m");
  const two = new Uint8Array(one.length * 2);
  two.set(one);
  two.set(one, one.length);
  await c.data(11, two);
  assert.equal(statusOf(await c.answer(11)).code, 13);
  // The connection still serves.
  await c.headers(13, grpcHeaders(STATUS));
  await c.data(13, statusRequest("m"));
  assert.equal(statusOf(await c.answer(13)).code, 0);
});

Deno.test(
  "grpc-timeout sets the deadline: a call still running then is DEADLINE_EXCEEDED",
  opts,
  async () => {
    assert.equal(parseGrpcTimeout("100m"), 100);
    assert.equal(parseGrpcTimeout("2S"), 2000);
    assert.equal(parseGrpcTimeout("1H"), 3_600_000);
    assert.equal(parseGrpcTimeout("5000u"), 5);
    assert.equal(parseGrpcTimeout("123456789S"), undefined);
    assert.equal(parseGrpcTimeout("10x"), undefined);
    assert.equal(parseGrpcTimeout("S"), undefined);
    await using s = await server();
    using c = await RawH2.connect(s.port);
    await c.headers(1, grpcHeaders(RELOAD, ["grpc-timeout", "100m"]));
    await c.data(1, sleepRequest(3000));
    const a = await c.answer(1);
    assert.deepEqual(statusOf(a), { code: 4, message: "Deadline Exceeded", http: "200" });
  },
);

Deno.test("send-side flow control honours the stream window and its changes", opts, async () => {
  await using s = await server();
  // The client grants nothing per stream at first.
  using c = await RawH2.connect(s.port, { settings: settings([Setting.INITIAL_WINDOW_SIZE, 0]) });
  const values = Array.from({ length: 2000 }, (_, i) => i);
  const req = floatPredict(values);
  await c.headers(1, grpcHeaders(PREDICT));
  await c.data(1, grpcMessage(req));
  // Headers come, no DATA (the window is 0).
  const h = await c.until((f) => f.stream === 1);
  assert.equal(h?.type, FrameType.HEADERS);
  // 100 bytes of window: exactly 100 bytes of DATA.
  await c.send(FrameType.WINDOW_UPDATE, 0, 1, u32(100));
  const d = await c.until((f) => f.stream === 1);
  assert.equal(d?.type, FrameType.DATA);
  assert.equal(d?.payload.length, 100);
  // A new INITIAL_WINDOW_SIZE moves the open stream's window by the difference.
  await c.send(FrameType.SETTINGS, 0, 0, settings([Setting.INITIAL_WINDOW_SIZE, 1 << 20]));
  const rest = await c.answer(1);
  assert.equal(statusOf(rest).code, 0);
  const body = new Uint8Array(100 + rest.data.length);
  body.set(d!.payload);
  body.set(rest.data, 100);
  const res = fromBinary(PredictResponseSchema, body.subarray(5));
  assert.deepEqual(res.outputs.x.floatVal, values);
});

/**
 * A server whose Predict answers, from the request's view, two float outputs of `n` values each
 * (0, 1, 2, ... and their negatives) as tensors: the transport encodes them itself, their values
 * sent from the tensors' own storage.
 */
async function tensorServer(n: number): Promise<GrpcServer> {
  const api: ServingApi = new FakeServingApi();
  api.predictView = () => {
    const a = Float32Array.from({ length: n }, (_, i) => i);
    const b = a.map((v) => -v);
    return new PredictOutputs("m", "serving_default", 1, ["a", "b"], [
      new Tensor(1, [n], a),
      new Tensor(1, [n], b),
    ], false);
  };
  return await startGrpcServer(api, {
    host: "127.0.0.1",
    port: 0,
    enableHealthCheck: true,
    decodeLimits: { maxRequestBytes: 1 << 20, maxExpansion: 16, expansionFloorBytes: 1 << 20 },
  });
}

Deno.test(
  "an answer's tensors go out whole in DATA frames, windows open or not",
  opts,
  async () => {
    const n = 20000;
    const want = encodePredictOutputs(
      new PredictOutputs("m", "serving_default", 1, ["a", "b"], [
        new Tensor(1, [n], Float32Array.from({ length: n }, (_, i) => i)),
        new Tensor(1, [n], Float32Array.from({ length: n }, (_, i) => -i)),
      ], false),
    );
    await using s = await tensorServer(n);
    for (const window of [1 << 20, 0, 70001]) {
      // A window of 0 holds everything back (the whole answer waits, copied); 70001 bytes let
      // part of it out at once, across the first tensor's values, and the rest waits.
      using c = await RawH2.connect(s.port, {
        settings: settings([Setting.INITIAL_WINDOW_SIZE, window]),
      });
      await c.send(FrameType.WINDOW_UPDATE, 0, 0, u32(1 << 20));
      await c.headers(1, grpcHeaders(PREDICT));
      await c.data(1, grpcMessage(floatPredict([1, 2])));
      let got: Uint8Array = new Uint8Array(0);
      if (window < 1 << 20) {
        // What the window let out, then the rest once it opens.
        const first = await c.until((f) => f.stream === 1 && f.type === FrameType.HEADERS);
        assert.ok(first);
        for (let sent = 0; sent < window;) {
          const d = await c.until((f) => f.stream === 1);
          assert.equal(d?.type, FrameType.DATA);
          got = concat(got, d!.payload);
          sent += d!.payload.length;
        }
        await c.send(FrameType.WINDOW_UPDATE, 0, 1, u32(1 << 20));
      }
      const rest = await c.answer(1);
      assert.equal(statusOf(rest).code, 0);
      got = concat(got, rest.data);
      assert.deepEqual(got.subarray(5), want, `window ${window}`);
      assert.deepEqual(Array.from(got.subarray(0, 5)), [0, ...u32(want.length)]);
    }
  },
);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("DATA frames respect the peer's SETTINGS_MAX_FRAME_SIZE", opts, async () => {
  await using s = await server();
  using c = await RawH2.connect(s.port, {
    settings: settings([Setting.MAX_FRAME_SIZE, 20000], [Setting.INITIAL_WINDOW_SIZE, 1 << 20]),
  });
  await c.send(FrameType.WINDOW_UPDATE, 0, 0, u32(1 << 20));
  const values = Array.from({ length: 20000 }, (_, i) => i);
  const req = toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, {
      modelSpec: { name: "m" },
      inputs: {
        x: { dtype: DataType.DT_FLOAT, tensorShape: { dim: [{ size: 20000n }] }, floatVal: values },
      },
    } as never),
  );
  await c.headers(1, grpcHeaders(PREDICT));
  // The request itself in DATA frames of at most 16384 (the server's limit).
  const msg = grpcMessage(req);
  for (let o = 0; o < msg.length; o += 16384) {
    await c.data(1, msg.subarray(o, o + 16384), o + 16384 >= msg.length);
  }
  let max = 0;
  let total = 0;
  while (true) {
    const f = await c.until((f) => f.stream === 1);
    assert.ok(f);
    if (f.type === FrameType.DATA) {
      max = Math.max(max, f.payload.length);
      total += f.payload.length;
    }
    if (f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM)) break;
  }
  assert.ok(total > 20000 * 4);
  assert.equal(max, 20000);
});

/** Connects, sends `frames`, and returns the GOAWAY code the server answers with. */
async function goawayFor(port: number, ...frames: [number, number, number, Uint8Array?][]) {
  using c = await RawH2.connect(port);
  for (const [type, flags, stream, payload] of frames) {
    await c.send(type, flags, stream, payload ?? new Uint8Array(0));
  }
  const code = await c.goaway();
  await c.closes();
  return code;
}

Deno.test("connection errors: GOAWAY with the code RFC 9113 names, then close", opts, async (t) => {
  await using s = await server();
  const p = s.port;
  const cases: [string, ErrorCode, [number, number, number, Uint8Array?][]][] = [
    ["SETTINGS_ENABLE_PUSH 2", ErrorCode.PROTOCOL_ERROR, [[4, 0, 0, settings([2, 2])]]],
    ["SETTINGS_INITIAL_WINDOW_SIZE 2^31", ErrorCode.FLOW_CONTROL_ERROR, [[
      4,
      0,
      0,
      settings([4, 2 ** 31]),
    ]]],
    ["SETTINGS_MAX_FRAME_SIZE 100", ErrorCode.PROTOCOL_ERROR, [[4, 0, 0, settings([5, 100])]]],
    ["SETTINGS of 5 bytes", ErrorCode.FRAME_SIZE_ERROR, [[4, 0, 0, new Uint8Array(5)]]],
    ["SETTINGS ACK with a payload", ErrorCode.FRAME_SIZE_ERROR, [[4, 1, 0, new Uint8Array(6)]]],
    ["SETTINGS on a stream", ErrorCode.PROTOCOL_ERROR, [[4, 0, 1, new Uint8Array(0)]]],
    ["PING of 7 bytes", ErrorCode.FRAME_SIZE_ERROR, [[6, 0, 0, new Uint8Array(7)]]],
    ["PING on a stream", ErrorCode.PROTOCOL_ERROR, [[6, 0, 1, new Uint8Array(8)]]],
    ["DATA on stream 0", ErrorCode.PROTOCOL_ERROR, [[0, 0, 0, new Uint8Array(1)]]],
    ["DATA on an idle stream", ErrorCode.PROTOCOL_ERROR, [[0, 0, 5, new Uint8Array(1)]]],
    ["HEADERS on an even stream", ErrorCode.PROTOCOL_ERROR, [[1, 4, 2, grpcHeaders(STATUS)]]],
    ["a frame over 16384 bytes", ErrorCode.FRAME_SIZE_ERROR, [[0, 0, 1, new Uint8Array(16385)]]],
    ["WINDOW_UPDATE 0 on the connection", ErrorCode.PROTOCOL_ERROR, [[8, 0, 0, u32(0)]]],
    ["WINDOW_UPDATE past 2^31-1", ErrorCode.FLOW_CONTROL_ERROR, [[8, 0, 0, u32(0x7fffffff)]]],
    ["WINDOW_UPDATE of 3 bytes", ErrorCode.FRAME_SIZE_ERROR, [[8, 0, 0, new Uint8Array(3)]]],
    ["RST_STREAM on an idle stream", ErrorCode.PROTOCOL_ERROR, [[3, 0, 7, u32(8)]]],
    ["RST_STREAM on stream 0", ErrorCode.PROTOCOL_ERROR, [[3, 0, 0, u32(8)]]],
    ["CONTINUATION without HEADERS", ErrorCode.PROTOCOL_ERROR, [[9, 4, 1, new Uint8Array(0)]]],
    ["a PING inside a header block", ErrorCode.PROTOCOL_ERROR, [
      [1, 0, 1, grpcHeaders(STATUS).subarray(0, 5)],
      [6, 0, 0, new Uint8Array(8)],
    ]],
    ["PUSH_PROMISE from a client", ErrorCode.PROTOCOL_ERROR, [[5, 4, 1, new Uint8Array(4)]]],
    ["HEADERS depending on its own stream", ErrorCode.PROTOCOL_ERROR, [[
      1,
      0x24,
      1,
      new Uint8Array([0, 0, 0, 1, 15, ...grpcHeaders("/x/y")]),
    ]]],
    ["an undecodable header block", ErrorCode.COMPRESSION_ERROR, [[
      1,
      5,
      1,
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    ]]],
    ["HEADERS on a closed stream", ErrorCode.STREAM_CLOSED, [
      [1, 5, 1, grpcHeaders("/x/y")],
      [1, 5, 1, grpcHeaders("/x/y")],
    ]],
  ];
  for (const [name, code, frames] of cases) {
    await t.step(name, async () => {
      assert.equal(await goawayFor(p, ...frames), code);
    });
  }
});

Deno.test("the preface must come first, then SETTINGS", opts, async () => {
  await using s = await server();
  {
    using c = await RawH2.connect(s.port, { preface: false });
    await c.raw(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.equal(await c.goaway(), ErrorCode.PROTOCOL_ERROR);
    await c.closes();
  }
  {
    using c = await RawH2.connect(s.port, { preface: false });
    await c.raw(new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    await c.send(FrameType.PING, 0, 0, new Uint8Array(8));
    assert.equal(await c.goaway(), ErrorCode.PROTOCOL_ERROR);
    await c.closes();
  }
});

Deno.test(
  "server SETTINGS, PING answered, stream errors leave the connection up",
  opts,
  async () => {
    await using s = await server();
    using c = await RawH2.connect(s.port);
    const st = await c.frame();
    assert.equal(st?.type, FrameType.SETTINGS);
    const advertised = new Map<number, number>();
    const v = new DataView(st!.payload.buffer);
    for (let i = 0; i < st!.payload.length; i += 6) {
      advertised.set(
        v.getUint16(i),
        v.getUint32(i + 2),
      );
    }
    assert.equal(advertised.get(Setting.ENABLE_PUSH), 0);
    assert.equal(advertised.get(Setting.MAX_CONCURRENT_STREAMS), 256);
    assert.equal(advertised.get(Setting.MAX_HEADER_LIST_SIZE), 16384);
    // PING: the same 8 bytes come back with ACK.
    const ping = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    await c.send(FrameType.PING, 0, 0, ping);
    const pong = await c.until((f) => f.type === FrameType.PING);
    assert.equal(pong?.flags, Flag.ACK);
    assert.deepEqual(pong?.payload, ping);
    // DATA after END_STREAM (half-closed remote): RST_STREAM STREAM_CLOSED, connection up.
    await c.headers(1, grpcHeaders(RELOAD));
    await c.data(1, sleepRequest(300));
    await c.data(1, new Uint8Array(1));
    assert.equal(await c.rst(1), ErrorCode.STREAM_CLOSED);
    // WINDOW_UPDATE 0 on a stream: RST_STREAM PROTOCOL_ERROR.
    await c.headers(3, grpcHeaders(RELOAD));
    await c.data(3, sleepRequest(300), false);
    await c.send(FrameType.WINDOW_UPDATE, 0, 3, u32(0));
    assert.equal(await c.rst(3), ErrorCode.PROTOCOL_ERROR);
    // A PRIORITY of the wrong size: RST_STREAM FRAME_SIZE_ERROR.
    await c.send(FrameType.PRIORITY, 0, 9, new Uint8Array(4));
    assert.equal(await c.rst(9), ErrorCode.FRAME_SIZE_ERROR);
    // Unknown frame types are ignored; the connection still serves.
    await c.send(0xfa, 0, 0, new Uint8Array(3));
    await c.headers(11, grpcHeaders(STATUS));
    await c.data(11, statusRequest("m"));
    assert.equal(statusOf(await c.answer(11)).code, 0);
  },
);

Deno.test("an early answer ends the stream with RST_STREAM NO_ERROR", opts, async () => {
  await using s = await server();
  using c = await RawH2.connect(s.port);
  await c.headers(1, grpcHeaders("/nope/Nothing"));
  const a = await c.answer(1);
  assert.equal(statusOf(a).code, 12);
  assert.equal(await c.rst(1), ErrorCode.NO_ERROR);
  // The rest of that request is ignored.
  await c.data(1, statusRequest("m"));
  await c.headers(3, grpcHeaders(STATUS));
  await c.data(3, statusRequest("m"));
  assert.equal(statusOf(await c.answer(3)).code, 0);
});

Deno.test("shutdown sends GOAWAY and lets a call in flight finish", opts, async () => {
  const s = await server();
  using c = await RawH2.connect(s.port);
  await c.headers(1, grpcHeaders(RELOAD));
  await c.data(1, sleepRequest(300));
  await c.until((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
  const down = s.shutdown(5000);
  assert.equal(await c.goaway(), ErrorCode.NO_ERROR);
  assert.equal(statusOf(await c.answer(1)).code, 0);
  await c.closes();
  await down;
});

/** Compresses bytes with a CompressionStream format. */
async function compress(bytes: Uint8Array, format: "gzip" | "deflate"): Promise<Uint8Array> {
  const out = new Response(
    new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new CompressionStream(format),
    ),
  );
  return new Uint8Array(await out.arrayBuffer());
}

Deno.test("gzip and deflate requests are inflated, within the decode limit", opts, async () => {
  await using s = await server();
  using c = await RawH2.connect(s.port);
  const plain = toBinary(
    GetModelStatusRequestSchema,
    create(GetModelStatusRequestSchema, { modelSpec: { name: "m" } }),
  );
  let id = 1;
  for (const format of ["gzip", "deflate"] as const) {
    await c.headers(id, grpcHeaders(STATUS, ["grpc-encoding", format]));
    await c.data(id, grpcMessage(await compress(plain, format), 1));
    assert.equal(statusOf(await c.answer(id)).code, 0, format);
    id += 2;
    // Not what it says it is: grpc core's text.
    await c.headers(id, grpcHeaders(STATUS, ["grpc-encoding", format]));
    await c.data(id, grpcMessage(new Uint8Array([1, 2, 3, 4]), 1));
    assert.deepEqual(statusOf(await c.answer(id)), {
      code: 13,
      message: `Unexpected error decompressing data for algorithm ${format}`,
      http: "200",
    });
    id += 2;
  }
  // A bomb: 8 MiB of zeros in a few KiB, over this server's 1 MiB decode limit.
  const bomb = await compress(new Uint8Array(8 << 20), "gzip");
  assert.ok(bomb.length < 16384);
  await c.headers(id, grpcHeaders(STATUS, ["grpc-encoding", "gzip"]));
  await c.data(id, grpcMessage(bomb, 1));
  const st = statusOf(await c.answer(id));
  assert.equal(st.code, 8);
  assert.match(st.message, /more than 1048576 bytes once decompressed/);
});

Deno.test(
  "an answer larger than the window goes out as far as it allows, the rest after",
  opts,
  async () => {
    await using s = await server();
    // Room for part of the answer only: it is written straight from the message up to the window,
    // and the rest (copied) waits for WINDOW_UPDATE.
    using c = await RawH2.connect(s.port, {
      settings: settings([Setting.INITIAL_WINDOW_SIZE, 1000]),
    });
    const values = Array.from({ length: 2000 }, (_, i) => i * 0.5);
    const req = floatPredict(values);
    await c.headers(1, grpcHeaders(PREDICT));
    await c.data(1, grpcMessage(req));
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < 1000) {
      const f = await c.until((f) => f.stream === 1);
      if (f?.type === FrameType.DATA) {
        parts.push(f.payload);
        got += f.payload.length;
      }
    }
    assert.equal(got, 1000);
    await c.send(FrameType.WINDOW_UPDATE, 0, 1, u32(1 << 20));
    const rest = await c.answer(1);
    assert.equal(statusOf(rest).code, 0);
    parts.push(rest.data);
    const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      body.set(p, o);
      o += p.length;
    }
    assert.equal(new DataView(body.buffer).getUint32(1), body.length - 5);
    const res = fromBinary(PredictResponseSchema, body.subarray(5));
    assert.deepEqual(res.outputs.x.floatVal, values);
  },
);

/** `bytes` as DATA frames of 16 KiB (the default SETTINGS_MAX_FRAME_SIZE), in one buffer. */
function dataFrames(stream: number, bytes: Uint8Array, endStream: boolean): Uint8Array {
  const frames: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; o += 16384) {
    const last = o + 16384 >= bytes.length;
    frames.push(
      frameBytes(
        FrameType.DATA,
        last && endStream ? Flag.END_STREAM : 0,
        stream,
        bytes.subarray(o, o + 16384),
      ),
    );
  }
  return join(frames);
}

async function eventually(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), what);
}

Deno.test(
  "large request bodies: read into borrowed 1 MiB buffers, at most four at once, all given back",
  opts,
  async () => {
    await using s = await startGrpcServer(new FakeServingApi(), {
      host: "127.0.0.1",
      port: 0,
      enableHealthCheck: false,
      decodeLimits: { maxRequestBytes: 4 << 20, maxExpansion: 16, expansionFloorBytes: 1 << 20 },
    });
    assert.equal(largeReadBuffersInUse(), 0);
    const values = Array.from({ length: 200_000 }, (_, i) => i * 0.25 - 7);
    const message = grpcMessage(floatPredict(values));
    // Windows for the echoed answers (RFC 9113's 64 KiB defaults would hold them back).
    const connect = async () => {
      const c = await RawH2.connect(s.port, {
        settings: settings([Setting.INITIAL_WINDOW_SIZE, 16 << 20]),
      });
      await c.send(FrameType.WINDOW_UPDATE, 0, 0, u32(16 << 20));
      return c;
    };
    const echoed = (a: Awaited<ReturnType<RawH2["answer"]>>) => {
      assert.equal(statusOf(a).code, 0);
      const res = fromBinary(PredictResponseSchema, a.data.subarray(5));
      assert.deepEqual(res.outputs.x.floatVal, values);
    };
    // Five connections begin a large body (one write: the server's first read fills its own
    // 64 KiB buffer) and stall: four get a borrowed buffer and keep it while the body arrives.
    const half = 512 << 10;
    const stalled: RawH2[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connect();
      await c.headers(1, grpcHeaders(PREDICT));
      await c.raw(dataFrames(1, message.subarray(0, half), false));
      stalled.push(c);
    }
    await eventually("four buffers lent", () => largeReadBuffersInUse() === 4);
    let most = 0;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, largeReadBuffersInUse());
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(most, 4);
    // A large request, the pool empty, is read in 64 KiB pieces: answered the same.
    {
      using c = await connect();
      await c.headers(1, grpcHeaders(PREDICT));
      await c.raw(dataFrames(1, message, true));
      echoed(await c.answer(1));
      assert.equal(largeReadBuffersInUse(), 4);
    }
    // The stalled bodies end: every byte that crossed from one buffer to the other arrived.
    for (const c of stalled) {
      await c.raw(dataFrames(1, message.subarray(half), true));
      echoed(await c.answer(1));
    }
    // Drained, no body arriving: the buffers went back, and closing leaves none lent.
    await eventually("buffers back after the bodies", () => largeReadBuffersInUse() === 0);
    for (const c of stalled) c.close();
    await eventually("none lent after close", () => largeReadBuffersInUse() === 0);
  },
);
