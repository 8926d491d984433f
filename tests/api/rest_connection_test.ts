/**
 * Issue 8, the REST connection rows, against the real server (main.ts in a child process) over
 * raw TCP, each ending with a valid Predict:
 * - headers or a declared body sent slowly, a chunked body never ended: 408, connection closed
 *   after the header/body timeout; at `--rest_api_max_connections`, the longest-waiting
 *   connection is closed to let a new one in;
 * - 100 (and 1000) pipelined requests on one connection: all answered, in order;
 * - bodies over `--rest_api_max_body_bytes`: 413 before reading (Content-Length), at the limit
 *   (chunked) or after inflating (gzip); a 60 MB body is read with bounded memory while other
 *   connections are answered.
 */
import assert from "node:assert/strict";
import { freePort, ServerProcess } from "../server_process.ts";
import { testdata } from "../testdata.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();
const dec = new TextDecoder();
const PREDICT = "/v1/models/half_plus_two:predict";

async function startServer(flags: string[] = []) {
  const restPort = freePort();
  const server = await ServerProcess.start([
    `--rest_api_port=${restPort}`,
    "--model_name=half_plus_two",
    `--model_base_path=${testdata("saved_model_half_plus_two_cpu")}`,
    ...flags,
  ]);
  await server.waitFor(/Exporting HTTP\/REST API/);
  return { server, restPort };
}

/** A valid Predict over a fresh connection: y = x / 2 + 2. */
async function assertPredicts(restPort: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${restPort}${PREDICT}`, {
    method: "POST",
    body: JSON.stringify({ instances: [1, 2] }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { predictions: [2.5, 3] });
}

function request(body: string, extra = ""): string {
  return `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n${extra}\r\n` +
    body;
}

/** Everything the server sends until it closes the connection. */
async function readUntilClosed(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  // A server that never closes fails the test (the text ends with a marker) instead of hanging.
  let stuck = false;
  const guard = setTimeout(() => {
    stuck = true;
    conn.close();
  }, 60_000);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  clearTimeout(guard);
  return stuck ? `${text}<never closed>` : text;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed by the guard already.
  }
}

/**
 * The RSS of a process, in bytes. From `ps` (it reads /proc): Deno asks for --allow-all to read
 * /proc directly, and `deno task test` runs with finer permissions.
 */
async function rss(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(out.stdout).trim()) * 1024;
}

Deno.test(
  "slow headers, a slow declared body and an endless chunked body are cut off by the timeouts",
  opts,
  async () => {
    const { server, restPort } = await startServer([
      "--rest_api_header_timeout_ms=1000",
      "--rest_api_body_timeout_ms=1000",
    ]);
    await using _ = server;
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port: restPort });

    // Headers that never end.
    const slowHeaders = await connect();
    await slowHeaders.write(enc.encode(`POST ${PREDICT} HTTP/1.1\r\nHost: x\r\n`));
    // A declared body that never comes in full.
    const slowBody = await connect();
    await slowBody.write(enc.encode(
      `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"instances"`,
    ));
    // A chunked body that never ends.
    const endless = await connect();
    await endless.write(enc.encode(
      `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n`,
    ));

    const [a, b, c] = await Promise.all([slowHeaders, slowBody, endless].map(readUntilClosed));
    assert.match(a, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(a, /Request headers not received in time/);
    assert.match(b, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(b, /Request body not received in time/);
    assert.match(c, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    for (const conn of [slowHeaders, slowBody, endless]) conn.close();
    await assertPredicts(restPort);
  },
);

Deno.test(
  "at --rest_api_max_connections the longest-waiting connection makes room; held ones time out",
  opts,
  async () => {
    const { server, restPort } = await startServer([
      "--rest_api_max_connections=20",
      "--rest_api_header_timeout_ms=3000",
    ]);
    await using _ = server;
    // 60 connections each holding a request whose headers never end.
    const conns: Deno.Conn[] = [];
    for (let i = 0; i < 60; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: restPort });
      await conn.write(enc.encode(`GET /v1/models/half_plus_two HTTP/1.1\r\n`)).catch(() => 0);
      conns.push(conn);
    }
    // 20 connections are held, yet a new client is served: the oldest held one made room.
    await assertPredicts(restPort);
    const answers = await Promise.all(conns.map(readUntilClosed));
    // At most 20 were held to the end (each ended by the header timeout); the others were closed
    // to make room, with nothing sent.
    const timedOut = answers.filter((a) => a.startsWith("HTTP/1.1 408 ")).length;
    const refused = answers.filter((a) => a === "").length;
    assert.ok(timedOut <= 20, `${timedOut} connections were served`);
    assert.ok(timedOut >= 1);
    assert.equal(timedOut + refused, 60, answers.join("|"));
    for (const conn of conns) closeQuietly(conn);
    await assertPredicts(restPort);
  },
);

Deno.test("pipelined requests are all answered, in order", opts, async () => {
  const { server, restPort } = await startServer();
  await using _ = server;
  // Small bodies, and bodies over the ~1 KB after which Deno.serve drops keep-alive.
  for (const [n, pad] of [[100, 0], [1000, 0], [100, 2048]]) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: restPort });
    let all = "";
    for (let i = 0; i < n; i++) {
      all += request(JSON.stringify({ instances: [i] }) + " ".repeat(pad));
    }
    // The last request closes the connection, so the answers end with it.
    all += request(JSON.stringify({ instances: [-4] }), "Connection: close\r\n");
    const writing = conn.write(enc.encode(all)).then(async (k) => {
      let off = k;
      const bytes = enc.encode(all);
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    });
    const text = await readUntilClosed(conn);
    await writing;
    conn.close();
    const bodies = text.split(/HTTP\/1\.1 200 OK\r\n[\s\S]*?\r\n\r\n/).slice(1);
    assert.equal(bodies.length, n + 1, text.slice(-500));
    bodies.forEach((b, i) => {
      const x = i < n ? i : -4;
      assert.deepEqual(JSON.parse(b), { predictions: [x / 2 + 2] }, `answer ${i}`);
    });
  }
  await assertPredicts(restPort);
});

Deno.test(
  "bodies over the limit are refused with 413 before reading, at the limit, or once inflated",
  opts,
  async () => {
    const { server, restPort } = await startServer(["--rest_api_max_body_bytes=65536"]);
    await using _ = server;
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port: restPort });
    const json413 = (text: string) => {
      assert.match(text, /^HTTP\/1\.1 413 Content Too Large\r\n/);
      assert.deepEqual(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)), {
        error: "Request body is larger than the limit of 65536 bytes",
      });
    };

    // Declared too large: refused from the headers alone, no body sent at all.
    const declared = await connect();
    await declared.write(enc.encode(
      `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 70000000\r\n\r\n`,
    ));
    json413(await readUntilClosed(declared));
    declared.close();

    // Chunked: refused once the chunks pass the limit, the rest never read.
    const chunked = await connect();
    await chunked.write(enc.encode(
      `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
    ));
    const chunk = `8000\r\n${" ".repeat(0x8000)}\r\n`;
    for (let i = 0; i < 3; i++) await chunked.write(enc.encode(chunk)).catch(() => 0);
    json413(await readUntilClosed(chunked));
    chunked.close();

    // gzip: small on the wire, over the limit once inflated.
    const bomb = await new Response(
      new Blob([" ".repeat(1 << 20)]).stream().pipeThrough(new CompressionStream("gzip")),
    ).bytes();
    const gz = await fetch(`http://127.0.0.1:${restPort}${PREDICT}`, {
      method: "POST",
      headers: { "Content-Encoding": "gzip" },
      body: bomb,
    });
    assert.equal(gz.status, 413);
    await gz.body?.cancel();
    await assertPredicts(restPort);
  },
);

Deno.test(
  "a 60 MB body is read with bounded memory while other connections are answered",
  opts,
  async () => {
    const { server, restPort } = await startServer();
    await using _ = server;
    await assertPredicts(restPort);
    const before = await rss(server.pid);
    assert.ok(before > 0);
    // 60 MB of JSON whitespace, then a one-number request, sent in pieces; calls on other
    // connections are answered while it is being received.
    const size = 60 * 1024 * 1024;
    const tail = JSON.stringify({ instances: [6] });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: restPort });
    await conn.write(enc.encode(
      `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
    ));
    const piece = enc.encode(" ".repeat(1024 * 1024));
    let sent = 0;
    let answeredMeanwhile = 0;
    while (sent < size - tail.length - piece.length) {
      let off = 0;
      while (off < piece.length) off += await conn.write(piece.subarray(off));
      sent += piece.length;
      if (sent % (10 * piece.length) === 0) {
        await assertPredicts(restPort);
        answeredMeanwhile++;
      }
    }
    const rest = enc.encode(" ".repeat(size - tail.length - sent) + tail);
    let off = 0;
    while (off < rest.length) off += await conn.write(rest.subarray(off));
    const text = await readUntilClosed(conn);
    conn.close();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/, text.slice(0, 300));
    assert.deepEqual(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)), { predictions: [5] });
    assert.ok(answeredMeanwhile >= 5);
    // Generous: the body (60 MB) and its decoding may be held at once, not gigabytes.
    const after = await rss(server.pid);
    assert.ok(after - before < 600 * 1024 * 1024, `RSS grew from ${before} to ${after} bytes`);
    await assertPredicts(restPort);
  },
);
