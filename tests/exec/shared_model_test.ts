/**
 * How tensors are posted between isolates (`exec/shared_model.ts`, postedImage): large numeric
 * storage travels in a SharedArrayBuffer, a small view of a larger buffer as an exact copy, and
 * the values arrive unchanged through a real worker's message port.
 *
 * @module
 */
import assert from "node:assert/strict";
import { postedImage, SHARE_POSTED_BYTES, tensorFromImage } from "../../src/exec/shared_model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

Deno.test("postedImage shares large storage, copies small views exactly, keeps the values", async () => {
  const big = Float32Array.from({ length: SHARE_POSTED_BYTES / 4 + 3 }, (_, i) => i * 0.5 - 7);
  // A view into a larger (request) buffer, as tensor_content is.
  const request = new Uint8Array(64 + big.byteLength);
  const inRequest = new Float32Array(request.buffer, 16, big.length);
  inRequest.set(big);
  const small = new Int32Array(new ArrayBuffer(4096), 8, 5);
  small.set([1, -2, 3, 2147483647, -2147483648]);
  const int64 = BigInt64Array.from({ length: 5000 }, (_, i) => BigInt(i) * 3_000_000_000n);
  const shared = new Float32Array(new SharedArrayBuffer(SHARE_POSTED_BYTES * 2));
  const strings = [new TextEncoder().encode("a"), new Uint8Array(0)];
  const tensors = [
    new Tensor(DataType.DT_FLOAT, [big.length], inRequest),
    new Tensor(DataType.DT_INT32, [5], small),
    new Tensor(DataType.DT_INT64, [5000], int64),
    new Tensor(DataType.DT_FLOAT, [shared.length], shared),
    new Tensor(DataType.DT_STRING, [2], strings),
  ];
  const images = tensors.map(postedImage);
  const data = images.map((i) => i.data);
  assert.ok((data[0] as Float32Array).buffer instanceof SharedArrayBuffer, "large: shared");
  assert.equal((data[0] as Float32Array).byteLength, big.byteLength);
  assert.ok(!((data[1] as Int32Array).buffer instanceof SharedArrayBuffer));
  assert.equal((data[1] as Int32Array).buffer.byteLength, 20, "a small view: copied exactly");
  assert.ok((data[2] as BigInt64Array).buffer instanceof SharedArrayBuffer);
  assert.equal(data[3], shared, "already shared: as it is");
  assert.equal(data[4], strings);
  // Through a worker and back.
  const echo = new Worker(
    URL.createObjectURL(
      new Blob(["self.onmessage = (e) => self.postMessage(e.data);"], { type: "text/javascript" }),
    ),
    { type: "module" },
  );
  try {
    const back = await new Promise<typeof images>((resolve) => {
      echo.onmessage = (e) => resolve(e.data);
      echo.postMessage(images);
    });
    const got = back.map(tensorFromImage);
    assert.deepEqual([...(got[0].data as Float32Array)], [...big]);
    assert.deepEqual([...(got[1].data as Int32Array)], [...small]);
    assert.deepEqual([...(got[2].data as BigInt64Array)], [...int64]);
    assert.equal((got[3].data as Float32Array).length, shared.length);
    assert.deepEqual(got[4].data, strings);
    for (let i = 0; i < got.length; i++) assert.deepEqual(got[i].shape, tensors[i].shape);
  } finally {
    echo.terminate();
  }
});
