/**
 * The HTTP/1.1 server of the REST port, in process, over raw TCP: message framing (Content-Length,
 * chunked with extensions and trailers, pipelining, HTTP/1.0), refusals (400, 413, 417, 431, 501,
 * 503) and `Expect: 100-continue`.
 */
import assert from "node:assert/strict";
import { type Http1Limits, type Http1Request, serveHttp1 } from "../../../src/api/rest/http1.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A server that echoes method, target and body; `hold` delays answers until resolved. */
function echoServer(limits: Http1Limits = {}, hold?: Promise<void>) {
  const seen: Http1Request[] = [];
  const server = serveHttp1({
    hostname: "127.0.0.1",
    port: 0,
    ...limits,
    onError: (e) => new Response(String(e), { status: 500 }),
  }, async (req) => {
    seen.push(req);
    if (hold) await hold;
    return new Response(`${req.method} ${req.target} ${dec.decode(req.body)}`);
  });
  return { server, seen, port: server.addr.port };
}

/** Sends `text` and returns everything received until the server closes. */
async function exchange(port: number, text: string | Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = typeof text === "string" ? enc.encode(text) : text;
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
  const buf = new Uint8Array(65536);
  let out = "";
  // A server that never closes fails the test instead of hanging it.
  let stuck = false;
  const guard = setTimeout(() => {
    stuck = true;
    conn.close();
  }, 30_000);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    out += dec.decode(buf.subarray(0, n));
  }
  clearTimeout(guard);
  if (!stuck) conn.close();
  return stuck ? `${out}<never closed>` : out;
}

function bodies(text: string): string[] {
  return text.split(/HTTP\/1\.1 \d+ [^\r]*\r\n[\s\S]*?\r\n\r\n/).slice(1);
}

Deno.test("http1: Content-Length and chunked bodies (extensions, trailers), pipelined, in order", async () => {
  const { server, port } = echoServer();
  const text = await exchange(
    port,
    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
      "POST /b?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n" +
      "\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assert.deepEqual(bodies(text), ["POST /a hello", "POST /b?q=1 abcde", "GET /c "]);
  assert.match(text, /content-length: 13\r\n/);
  await server.shutdown(1000);
});

Deno.test("http1: HTTP/1.0 closes after the answer unless keep-alive; HEAD has no body", async () => {
  const { server, port } = echoServer();
  assert.deepEqual(bodies(await exchange(port, "GET /x HTTP/1.0\r\n\r\n")), ["GET /x "]);
  const head = await exchange(port, "HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n");
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: 8\r\n[\s\S]*\r\n\r\n$/);
  await server.shutdown(1000);
});

Deno.test("http1: malformed requests are refused with 400, 417, 431 or 501 and closed", async () => {
  const { server, port, seen } = echoServer({ maxHeaderBytes: 1024 });
  const status = async (text: string) => /^HTTP\/1\.1 (\d+)/.exec(await exchange(port, text))?.[1];
  assert.equal(await status("NOT A REQUEST\r\n\r\n"), "400");
  assert.equal(await status("GET / HTTP/1.1\r\nBad Header\r\n\r\n"), "400");
  assert.equal(await status("GET / HTTP/1.1\r\n folded: x\r\n\r\n"), "400");
  assert.equal(await status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), "400");
  assert.equal(
    await status("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "400",
  );
  assert.equal(await status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), "501");
  assert.equal(await status("POST / HTTP/1.1\r\nExpect: teapot\r\n\r\n"), "417");
  assert.equal(await status(`GET / HTTP/1.1\r\nX: ${"a".repeat(2000)}\r\n\r\n`), "431");
  assert.equal(
    await status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    "400",
  );
  assert.equal(seen.length, 0);
  await server.shutdown(1000);
});

Deno.test("http1: Expect: 100-continue gets 100 before the body is read", async () => {
  const { server, port } = echoServer();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(enc.encode(
    "POST /e HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
  ));
  const buf = new Uint8Array(1024);
  const n = await conn.read(buf);
  assert.equal(dec.decode(buf.subarray(0, n!)), "HTTP/1.1 100 Continue\r\n\r\n");
  await conn.write(enc.encode("ok"));
  let rest = "";
  for (;;) {
    const k = await conn.read(buf).catch(() => null);
    if (k === null) break;
    rest += dec.decode(buf.subarray(0, k));
  }
  conn.close();
  assert.deepEqual(bodies(rest), ["POST /e ok"]);
  await server.shutdown(1000);
});

Deno.test("http1: body bytes held at once are bounded over all connections (503)", async () => {
  let release!: () => void;
  const hold = new Promise<void>((r) => (release = r));
  const { server, port } = echoServer({ maxBufferedBodyBytes: 1500 }, hold);
  const req = (n: number) =>
    `POST /b HTTP/1.1\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n${"x".repeat(n)}`;
  // The first body (1000 bytes) is held while its answer waits; a second one does not fit.
  const first = exchange(port, req(1000));
  await new Promise((r) => setTimeout(r, 100));
  const second = await exchange(port, req(1000));
  assert.match(second, /^HTTP\/1\.1 503 /);
  // Small enough to fit beside it.
  const third = exchange(port, req(400));
  release();
  assert.deepEqual(bodies(await first), [`POST /b ${"x".repeat(1000)}`]);
  assert.deepEqual(bodies(await third), [`POST /b ${"x".repeat(400)}`]);
  assert.equal(server.refused.get(503), 1);
  await server.shutdown(1000);
});

Deno.test("http1: shutdown closes idle connections and lets a request under way finish", async () => {
  let release!: () => void;
  const hold = new Promise<void>((r) => (release = r));
  const { server, port } = echoServer({}, hold);
  const idle = await Deno.connect({ hostname: "127.0.0.1", port });
  const busy = exchange(port, "GET /slow HTTP/1.1\r\n\r\n");
  await new Promise((r) => setTimeout(r, 100));
  const done = server.shutdown(5000);
  release();
  assert.deepEqual(bodies(await busy), ["GET /slow "]);
  assert.match(await busy, /connection: close\r\n/);
  await done;
  assert.equal(await idle.read(new Uint8Array(10)).catch(() => null), null);
  idle.close();
  assert.equal(server.connections, 0);
});

Deno.test("http1: hold() takes from the same budget and gives back after the answer", async () => {
  const results: boolean[] = [];
  const server = serveHttp1({
    hostname: "127.0.0.1",
    port: 0,
    maxBufferedBodyBytes: 1500,
    onError: (e) => new Response(String(e), { status: 500 }),
  }, (req) => {
    results.push(req.hold(400), req.hold(200));
    return new Response("ok");
  });
  const port = server.addr.port;
  const req = `POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n${"x".repeat(1000)}`;
  // 1000 (body) + 400 fit, 200 more do not; all of it is given back after each answer.
  await exchange(port, req + req.replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n"));
  assert.deepEqual(results, [true, false, true, false]);
  await server.shutdown(1000);
});

Deno.test("http1: a large head (under the limit) and a body larger than the read buffer", async () => {
  const { server, port, seen } = echoServer();
  const body = "b".repeat(300_000);
  const text = await exchange(
    port,
    `POST /big HTTP/1.1\r\nX-Big: ${"h".repeat(30_000)}\r\nContent-Length: ${body.length}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
  assert.deepEqual(bodies(text), [`POST /big ${body}`]);
  assert.equal(seen[0].headers.get("x-big")?.length, 30_000);
  await server.shutdown(1000);
});

Deno.test("http1: nothing is answered after a Connection: close request; its answer arrives whole", async () => {
  const { server, port, seen } = echoServer();
  const text = await exchange(
    port,
    "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n" +
      `POST /never HTTP/1.1\r\nContent-Length: 100000\r\n\r\n${"z".repeat(100_000)}`,
  );
  assert.deepEqual(bodies(text), ["GET /last "]);
  assert.deepEqual(seen.map((r) => r.target), ["/last"]);
  await server.shutdown(1000);
});

Deno.test("http1: header() and headers agree; repeated fields joined; a NUL in a value is 400", async () => {
  const { server, port, seen } = echoServer();
  await exchange(
    port,
    "GET /h HTTP/1.1\r\nOrigin: http://a\r\nX-Y:  1 \r\nx-y: 2\r\nCONTENT-ENCODING: identity\r\n" +
      "Connection: close\r\n\r\n",
  );
  const req = seen[0];
  assert.equal(req.header("origin"), "http://a");
  assert.equal(req.header("content-encoding"), "identity");
  assert.equal(req.header("x-y"), "1, 2");
  assert.equal(req.header("absent"), null);
  assert.equal(req.headers.get("x-y"), "1, 2");
  assert.equal(req.headers.get("origin"), "http://a");
  const bad = await exchange(port, "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n");
  assert.match(bad, /^HTTP\/1\.1 400 /);
  await server.shutdown(1000);
});
