/**
 * grpc-js clients against the own transport beyond the plain calls grpc_test.ts makes:
 * compressed requests, and a UNIX socket.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { startGrpcServer } from "../../../src/api/grpc/server.ts";
import {
  GetModelStatusRequestSchema,
  GetModelStatusResponseSchema,
} from "../../../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import { FakeServingApi } from "../fixtures/fake_api.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const STATUS = "/tensorflow.serving.ModelService/GetModelStatus";

function call(client: grpc.Client, name: string): Promise<{ code: number; name?: string }> {
  const req = Buffer.from(toBinary(
    GetModelStatusRequestSchema,
    create(GetModelStatusRequestSchema, { modelSpec: { name } }),
  ));
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      STATUS,
      (b: Buffer) => b,
      (b: Buffer) => b,
      req,
      (err, res) => {
        if (err) return resolve({ code: err.code });
        fromBinary(GetModelStatusResponseSchema, res!);
        resolve({ code: 0 });
      },
    );
  });
}

Deno.test(
  "a grpc-js client that compresses its requests (gzip, deflate) is served",
  opts,
  async () => {
    await using server = await startGrpcServer(new FakeServingApi(), {
      host: "127.0.0.1",
      port: 0,
      enableHealthCheck: false,
    });
    // grpc's compression algorithm numbers: 1 deflate, 2 gzip.
    for (const algorithm of [1, 2]) {
      const client = new grpc.Client(
        `127.0.0.1:${server.port}`,
        grpc.credentials.createInsecure(),
        { "grpc.default_compression_algorithm": algorithm },
      );
      try {
        assert.deepEqual(await call(client, "m"), { code: 0 });
        assert.deepEqual(await call(client, "code:5:gone"), { code: 5 });
      } finally {
        client.close();
      }
    }
  },
);

Deno.test("the transport serves a UNIX socket", opts, async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/grpc.sock`;
  // A socket file left behind by an earlier run is replaced.
  Deno.listen({ transport: "unix", path }).close();
  try {
    await using _server = await startGrpcServer(new FakeServingApi(), {
      host: "127.0.0.1",
      socketPath: path,
      enableHealthCheck: false,
    });
    const client = new grpc.Client(`unix:${path}`, grpc.credentials.createInsecure());
    try {
      assert.deepEqual(await call(client, "m"), { code: 0 });
    } finally {
      client.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
