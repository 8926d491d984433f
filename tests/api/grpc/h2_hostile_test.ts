/**
 * Hostile HTTP/2 clients against the gRPC transport: each documented limit holds, the process
 * survives, and other connections are served meanwhile.
 */
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { type GrpcLimits, type GrpcServer, startGrpcServer } from "../../../src/api/grpc/server.ts";
import { Setting } from "../../../src/api/grpc/h2/frames.ts";
import { GetModelStatusRequestSchema } from "../../../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import { ReloadConfigRequestSchema } from "../../../src/proto/gen/tensorflow_serving/apis/model_management_pb.ts";
import { FakeServingApi } from "../fixtures/fake_api.ts";
import {
  ErrorCode,
  FrameType,
  grpcHeaders,
  grpcMessage,
  RawH2,
  statusOf,
  u32,
} from "./h2_client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const STATUS = "/tensorflow.serving.ModelService/GetModelStatus";
const RELOAD = "/tensorflow.serving.ModelService/HandleReloadConfigRequest";

async function server(limits: GrpcLimits = {}): Promise<GrpcServer> {
  return await startGrpcServer(new FakeServingApi(), {
    host: "127.0.0.1",
    port: 0,
    enableHealthCheck: false,
    limits,
  });
}

const statusRequest = () =>
  grpcMessage(
    toBinary(
      GetModelStatusRequestSchema,
      create(GetModelStatusRequestSchema, { modelSpec: { name: "m" } }),
    ),
  );

const sleepRequest = (ms: number) =>
  grpcMessage(
    toBinary(
      ReloadConfigRequestSchema,
      create(ReloadConfigRequestSchema, { metricNames: [`sleep:${ms}`] }),
    ),
  );

/** One normal call on a fresh connection answers OK. */
async function stillServes(port: number): Promise<void> {
  using c = await RawH2.connect(port);
  await c.headers(1, grpcHeaders(STATUS));
  await c.data(1, statusRequest());
  assert.equal(statusOf(await c.answer(1)).code, 0);
}

Deno.test("a connection that never sends the preface is closed", opts, async () => {
  await using s = await server({ prefaceTimeoutMs: 300 });
  using c = await RawH2.connect(s.port, { preface: false });
  // Half a preface, then nothing.
  await c.raw(new TextEncoder().encode("PRI * HTTP/2.0"));
  assert.equal(await c.closes(3000), true);
  await stillServes(s.port);
});

Deno.test("a CONTINUATION flood is cut off at the header block limit", opts, async () => {
  await using s = await server({ maxHeaderBlockBytes: 4096 });
  using c = await RawH2.connect(s.port);
  await c.send(FrameType.HEADERS, 0, 1, grpcHeaders(STATUS));
  let sent = 0;
  try {
    for (let i = 0; i < 100; i++) {
      await c.send(FrameType.CONTINUATION, 0, 1, new Uint8Array(1000));
      sent++;
    }
  } catch { /* the server closed the connection */ }
  assert.equal(await c.goaway(), ErrorCode.ENHANCE_YOUR_CALM);
  await stillServes(s.port);
});

Deno.test(
  "a header list over SETTINGS_MAX_HEADER_LIST_SIZE is RESOURCE_EXHAUSTED",
  opts,
  async () => {
    await using s = await server({ maxHeaderListSize: 1024 });
    using c = await RawH2.connect(s.port);
    await c.headers(1, grpcHeaders(STATUS, ["x-big", "v".repeat(2000)]));
    await c.data(1, statusRequest());
    const st = statusOf(await c.answer(1));
    assert.equal(st.code, 8);
    // The connection (and its HPACK state) is fine afterwards.
    await c.headers(3, grpcHeaders(STATUS));
    await c.data(3, statusRequest());
    assert.equal(statusOf(await c.answer(3)).code, 0);
  },
);

Deno.test("streams over the advertised maximum are refused", opts, async () => {
  await using s = await server({ maxConcurrentStreams: 2 });
  using c = await RawH2.connect(s.port);
  const st = await c.frame();
  const v = new DataView(st!.payload.buffer);
  let max = -1;
  for (let i = 0; i < st!.payload.length; i += 6) {
    if (v.getUint16(i) === Setting.MAX_CONCURRENT_STREAMS) max = v.getUint32(i + 2);
  }
  assert.equal(max, 2);
  for (const id of [1, 3]) {
    await c.headers(id, grpcHeaders(RELOAD));
    await c.data(id, sleepRequest(300));
  }
  await c.headers(5, grpcHeaders(RELOAD));
  assert.equal(await c.rst(5), ErrorCode.REFUSED_STREAM);
  assert.equal(statusOf(await c.answer(1)).code, 0);
  assert.equal(statusOf(await c.answer(3)).code, 0);
  // Room again.
  await c.headers(7, grpcHeaders(STATUS));
  await c.data(7, statusRequest());
  assert.equal(statusOf(await c.answer(7)).code, 0);
});

Deno.test(
  "rapid reset: many streams reset in a second is GOAWAY ENHANCE_YOUR_CALM",
  opts,
  async () => {
    await using s = await server({ maxResetsPerSecond: 20 });
    using c = await RawH2.connect(s.port);
    try {
      for (let id = 1; id < 200; id += 2) {
        await c.headers(id, grpcHeaders(RELOAD));
        await c.send(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL));
      }
    } catch { /* closed */ }
    assert.equal(await c.goaway(), ErrorCode.ENHANCE_YOUR_CALM);
    await stillServes(s.port);
  },
);

Deno.test("PING and SETTINGS floods are GOAWAY ENHANCE_YOUR_CALM", opts, async () => {
  await using s = await server({ maxControlFramesPerSecond: 50 });
  for (const type of [FrameType.PING, FrameType.SETTINGS]) {
    using c = await RawH2.connect(s.port);
    const payload = type === FrameType.PING ? new Uint8Array(8) : new Uint8Array(0);
    try {
      for (let i = 0; i < 200; i++) await c.send(type, 0, 0, payload);
    } catch { /* closed */ }
    assert.equal(await c.goaway(), ErrorCode.ENHANCE_YOUR_CALM);
  }
  await stillServes(s.port);
});

Deno.test("DATA beyond the stream window granted is FLOW_CONTROL_ERROR", opts, async () => {
  await using s = await server({ streamWindow: 1000, connectionWindow: 65535 });
  {
    // The stream's window: a stream error.
    using c = await RawH2.connect(s.port);
    await c.headers(1, grpcHeaders(STATUS));
    await c.data(1, new Uint8Array(1001), false);
    assert.equal(await c.rst(1), ErrorCode.FLOW_CONTROL_ERROR);
  }
  await stillServes(s.port);
});

Deno.test(
  "a request whose room is taken whole before its bytes arrive is charged for them then",
  opts,
  async () => {
    // Declared 200 000 bytes: at 70 000 received its room (doubling: 64 KiB, then 256 KiB, over
    // the declared length) is the whole message, so the 130 000 still to come are charged now.
    await using s = await server({ maxBufferedRequestBytes: 250_000 });
    using c = await RawH2.connect(s.port);
    const big = 200_000;
    await c.headers(1, grpcHeaders(STATUS));
    await c.data(1, new Uint8Array([0, 0, big >> 16, (big >> 8) & 0xff, big & 0xff]), false);
    for (let i = 0; i < 7; i++) await c.data(1, new Uint8Array(10_000), false);
    // Another call's 60 000 bytes fit what arrived (70 000), not what was charged (200 000).
    const other = 60_000;
    await c.headers(3, grpcHeaders(STATUS));
    await c.data(3, new Uint8Array([0, 0, other >> 16, (other >> 8) & 0xff, other & 0xff]), false);
    for (let i = 0; i < 6; i++) await c.data(3, new Uint8Array(10_000), i === 5);
    const st = statusOf(await c.answer(3));
    assert.equal(st.code, 8);
    assert.match(st.message, /Cannot buffer the request/);
    // The first call's bytes all come (charged already): it is read and answered (its zeros do
    // not parse as a request, which is not a buffering error).
    for (let i = 0; i < 13; i++) await c.data(1, new Uint8Array(10_000), i === 12);
    const first = statusOf(await c.answer(1));
    assert.notEqual(first.code, 8);
    await stillServes(s.port);
  },
);

Deno.test(
  "request bytes buffered over the server's budget are RESOURCE_EXHAUSTED",
  opts,
  async () => {
    await using s = await server({ maxBufferedRequestBytes: 10_000 });
    using c = await RawH2.connect(s.port);
    // Declares 50 000 bytes (under the decode limit), sends them slowly.
    const prefix = new Uint8Array([0, 0, 0, 0xc3, 0x50]);
    await c.headers(1, grpcHeaders(STATUS));
    await c.data(1, prefix, false);
    for (let i = 0; i < 3; i++) await c.data(1, new Uint8Array(4000), false);
    const st = statusOf(await c.answer(1));
    assert.equal(st.code, 8);
    assert.match(st.message, /Cannot buffer the request/);
    // What it held is given back.
    await stillServes(s.port);
  },
);

Deno.test(
  "a client that does not read stops being read; other clients are served meanwhile",
  opts,
  async () => {
    await using s = await server({ maxPendingWriteBytes: 64 << 10 });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./fixtures/no_read_client.ts", import.meta.url).pathname,
        `${s.port}`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let sent = 0;
    const counting = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        const lines = decoder.decode(chunk).trim().split("\n");
        sent = Number(lines[lines.length - 1]);
      }
    })();
    try {
      // While that client is stalled, others are served.
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 300));
        await stillServes(s.port);
      }
      // The server stopped taking requests long before 1000 answers (1 GB) piled up.
      assert.ok(sent > 0 && sent < 100, `the server took ${sent} requests`);
      console.log(`the server took ${sent} requests from the client that does not read`);
    } finally {
      child.kill();
      await child.status;
      await counting;
    }
    await stillServes(s.port);
  },
);

Deno.test("at the connection limit the quietest idle connection makes room", opts, async () => {
  await using s = await server({ maxConnections: 2 });
  using a = await RawH2.connect(s.port);
  await a.until((f) => f.type === FrameType.SETTINGS && (f.flags & 1) !== 0);
  using b = await RawH2.connect(s.port);
  await b.until((f) => f.type === FrameType.SETTINGS && (f.flags & 1) !== 0);
  // A third connection: one of the idle two is sent GOAWAY and closed, the new one is served.
  const served = stillServes(s.port);
  const goaways = await Promise.all([a, b].map(async (c) => {
    try {
      return await c.goaway(1500);
    } catch {
      return "open";
    }
  }));
  await served;
  assert.equal(goaways.filter((g) => g === ErrorCode.NO_ERROR).length, 1, String(goaways));
});

Deno.test(
  "at the connection limit with every connection busy, a new one is closed",
  opts,
  async () => {
    await using s = await server({ maxConnections: 1 });
    using a = await RawH2.connect(s.port);
    await a.headers(1, grpcHeaders(RELOAD));
    await a.data(1, sleepRequest(500));
    await a.until((f) => f.type === FrameType.SETTINGS && (f.flags & 1) !== 0);
    using b = await RawH2.connect(s.port, { preface: false });
    assert.equal(await b.closes(2000), true);
    assert.equal(statusOf(await a.answer(1)).code, 0);
  },
);

Deno.test("a request that never ends is reset after the request timeout", opts, async () => {
  await using s = await server({ requestTimeoutMs: 300, maxConnections: 1 });
  using c = await RawH2.connect(s.port);
  await c.headers(1, grpcHeaders(STATUS));
  await c.data(1, statusRequest().subarray(0, 3), false);
  assert.equal(await c.rst(1), ErrorCode.CANCEL);
  // No longer busy: a new connection may take its slot.
  await stillServes(s.port);
});

Deno.test(
  "a request whose bytes keep coming is not reset by the request timeout",
  opts,
  async () => {
    await using s = await server({ requestTimeoutMs: 300 });
    using c = await RawH2.connect(s.port);
    await c.headers(1, grpcHeaders(STATUS));
    const body = statusRequest();
    // One byte every 100 ms: longer than the timeout in total, never idle as long as it.
    for (let i = 0; i < body.length; i++) {
      await c.data(1, body.subarray(i, i + 1), i === body.length - 1);
      if (i < body.length - 1) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(body.length * 100 > 600, `${body.length} bytes`);
    assert.equal(statusOf(await c.answer(1)).code, 0);
  },
);
