import assert from "node:assert/strict";
import { toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "../../src/proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { decodeBinary } from "../../src/proto/binary.ts";
import { NotSimpleError, WireScanner } from "../../src/proto/wire_scan.ts";
import { allocate, DataType } from "../../src/tensor/dtype.ts";
import { DecodeBudget } from "../../src/tensor/limits.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorFromProto, tensorToProto } from "../../src/tensor/tensor_proto.ts";
import {
  CostMeter,
  directlyEncodable,
  readTensorProto,
  tensorProtoSize,
  writeTensorProto,
} from "../../src/tensor/tensor_wire.ts";
import { Prng } from "../fuzz/prng.ts";

/** The direct encoding of a tensor. */
function direct(t: Tensor, useContent: boolean): Uint8Array {
  const out = new Uint8Array(tensorProtoSize(t, useContent));
  const end = writeTensorProto(t, useContent, out, 0);
  assert.equal(end, out.length);
  return out;
}

/** A random tensor of a dtype, with edge values mixed in. */
function randomTensor(rng: Prng, dtype: DataType): Tensor {
  const rank = rng.int(4);
  const shape = Array.from({ length: rank }, () => rng.pick([0, 1, 2, 3, 5, 200]));
  if (rank > 0 && rng.int(4) === 0) shape[0] = rng.pick([1, 2]);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n > 2000) return randomTensor(rng, dtype);
  const pick = <T>(edges: T[], gen: () => T) => rng.int(4) === 0 ? rng.pick(edges) : gen();
  switch (dtype) {
    case DataType.DT_FLOAT:
    case DataType.DT_COMPLEX64: {
      const lanes = dtype === DataType.DT_COMPLEX64 ? 2 : 1;
      const d = new Float32Array(n * lanes);
      for (let i = 0; i < d.length; i++) {
        d[i] = pick([0, -0, NaN, Infinity, -Infinity, 3.4e38, 1e-45], () => rng.next() * 2e3 - 1e3);
      }
      // Quiet NaNs with payloads, and negative ones. Not first: the message path writes a NaN
      // that comes first as the canonical NaN (V8's Array.from starts a double array that way).
      // (Signalling NaNs: the test below.)
      const bits = new Uint32Array(d.buffer);
      for (let i = 1; i < bits.length; i++) {
        if (rng.int(8) === 0) bits[i] = rng.pick([0xffc00000, 0x7fc12345, 0xffc12345]);
      }
      return new Tensor(dtype, shape, d);
    }
    case DataType.DT_DOUBLE:
    case DataType.DT_COMPLEX128: {
      const lanes = dtype === DataType.DT_COMPLEX128 ? 2 : 1;
      const d = new Float64Array(n * lanes);
      for (let i = 0; i < d.length; i++) {
        d[i] = pick([0, -0, NaN, Infinity, -Infinity, 1e308, 5e-324], () => rng.next() * 1e9 - 5e8);
      }
      const bits = new BigUint64Array(d.buffer);
      for (let i = 1; i < bits.length; i++) {
        if (rng.int(8) === 0) bits[i] = rng.pick([0xfff8000000000000n, 0x7ff8000012345678n]);
      }
      return new Tensor(dtype, shape, d);
    }
    case DataType.DT_INT64:
    case DataType.DT_UINT64: {
      const d = dtype === DataType.DT_INT64 ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const v = pick(
          [0n, 1n, -1n, 127n, 128n, 2n ** 31n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 35n],
          () => BigInt(rng.int(1 << 30)) * BigInt(rng.pick([1, -1, 1 << 20])),
        );
        d[i] = dtype === DataType.DT_INT64 ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
      }
      return new Tensor(dtype, shape, d);
    }
    case DataType.DT_STRING: {
      const d: Uint8Array[] = [];
      for (let i = 0; i < n; i++) d.push(rng.bytes(rng.pick([0, 1, 5, 130])));
      return new Tensor(dtype, shape, d);
    }
    default: {
      const d = allocate(dtype, n) as Int32Array;
      for (let i = 0; i < d.length; i++) {
        d[i] = pick(
          [0, 1, -1, 127, 128, 255, 65535, -(2 ** 31), 2 ** 31 - 1, 2 ** 32 - 1],
          () => rng.int(1 << 20) - (1 << 19),
        );
      }
      return new Tensor(dtype, shape, d);
    }
  }
}

const ENCODED_TYPES = [
  DataType.DT_FLOAT,
  DataType.DT_DOUBLE,
  DataType.DT_INT32,
  DataType.DT_UINT8,
  DataType.DT_INT16,
  DataType.DT_INT8,
  DataType.DT_STRING,
  DataType.DT_COMPLEX64,
  DataType.DT_INT64,
  DataType.DT_BOOL,
  DataType.DT_QINT8,
  DataType.DT_QUINT8,
  DataType.DT_QINT32,
  DataType.DT_BFLOAT16,
  DataType.DT_QINT16,
  DataType.DT_QUINT16,
  DataType.DT_UINT16,
  DataType.DT_COMPLEX128,
  DataType.DT_HALF,
  DataType.DT_UINT32,
  DataType.DT_UINT64,
];

Deno.test("writeTensorProto() writes the bytes toBinary(tensorToProto()) does, every type", () => {
  const rng = new Prng(20261205);
  for (let i = 0; i < 3000; i++) {
    const dtype = ENCODED_TYPES[i % ENCODED_TYPES.length];
    const t = randomTensor(rng, dtype);
    assert.ok(directlyEncodable(t), `${DataType[dtype]} is encodable`);
    for (const useContent of [false, true]) {
      const want = toBinary(TensorProtoSchema, tensorToProto(t, useContent));
      assert.deepEqual(
        direct(t, useContent),
        want,
        `case ${i}: ${DataType[dtype]} ${JSON.stringify(t.shape)} content=${useContent}`,
      );
    }
  }
});

Deno.test("writeTensorProto() copies float values bit for bit, signalling NaNs too, as TensorFlow's AsProtoField does", () => {
  const f32 = new Uint32Array([0x7f800001, 0xff812345, 0x7fc00000, 0x3f800000, 0x7fbfffff]);
  const f64 = new BigUint64Array([0x7ff0000000000001n, 0xfff4000000000000n, 0x3ff0000000000000n]);
  const cases: [DataType, ArrayBufferView][] = [
    [DataType.DT_FLOAT, new Float32Array(f32.buffer)],
    [DataType.DT_COMPLEX64, new Float32Array(f32.buffer, 0, 4)],
    [DataType.DT_DOUBLE, new Float64Array(f64.buffer)],
  ];
  for (const [dtype, data] of cases) {
    const values = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const lanes = dtype === DataType.DT_COMPLEX64 ? 2 : 1;
    const t = new Tensor(dtype, [(data as Float32Array).length / lanes], data as Float32Array);
    for (const useContent of [false, true]) {
      const bytes = direct(t, useContent);
      // The values are the message's last field, packed: its last bytes.
      assert.deepEqual(bytes.subarray(bytes.length - values.length), values, DataType[dtype]);
    }
  }
});

Deno.test("directlyEncodable() leaves resources and odd storage to the message path", () => {
  assert.equal(
    directlyEncodable(new Tensor(DataType.DT_RESOURCE, [], [{ key: "a" }])),
    false,
  );
  assert.equal(directlyEncodable(new Tensor(DataType.DT_FLOAT, [1], new Float64Array(1))), false);
  assert.equal(directlyEncodable(new Tensor(DataType.DT_FLOAT, [1], new Float32Array(1))), true);
});

/** The values tensorFromProto reads, as plain arrays, for comparing a view with a message. */
function tensorOf(bytes: Uint8Array, how: "view" | "message"): Tensor | string {
  try {
    if (how === "message") {
      return tensorFromProto(decodeBinary(TensorProtoSchema, bytes), "t", new DecodeBudget());
    }
    const s = new WireScanner(bytes);
    const values = readTensorProto(s, bytes.length, new CostMeter(1 << 30));
    return tensorFromProto(values, "t", new DecodeBudget());
  } catch (e) {
    if (e instanceof NotSimpleError) return "not simple";
    return `error: ${(e as Error).message}`;
  }
}

Deno.test("readTensorProto() gives tensorFromProto() the values the general decoder does", () => {
  const rng = new Prng(77);
  let plain = 0;
  for (let i = 0; i < 4000; i++) {
    const dtype = ENCODED_TYPES[rng.int(ENCODED_TYPES.length)];
    const t = randomTensor(rng, dtype);
    const proto = tensorToProto(t, rng.int(3) === 0);
    // Fewer values than the shape needs (TensorFlow repeats the last one), or none.
    if (rng.int(3) === 0) {
      for (const f of ["floatVal", "doubleVal", "intVal", "int64Val", "stringVal"] as const) {
        (proto[f] as unknown[]) = (proto[f] as unknown[]).slice(0, rng.int(3));
      }
    }
    let bytes: Uint8Array = toBinary(TensorProtoSchema, proto);
    if (i % 2 === 1) bytes = rng.mutate(bytes);
    const fast = tensorOf(bytes, "view");
    const slow = tensorOf(bytes, "message");
    if (fast === "not simple") continue;
    plain++;
    if (typeof slow === "string" || typeof fast === "string") {
      assert.equal(fast, slow, `case ${i}`);
      continue;
    }
    assert.equal(fast.dtype, slow.dtype, `case ${i}`);
    assert.deepEqual(fast.shape, slow.shape, `case ${i}`);
    assert.deepEqual(
      Array.from(fast.data as ArrayLike<unknown>),
      Array.from(slow.data as ArrayLike<unknown>),
      `case ${i}`,
    );
  }
  // Every unmutated case is plain, and so are many mutated ones.
  assert.ok(plain > 2000, `${plain} plain cases`);
});

Deno.test("readTensorProto() views aligned values in place and copies unaligned ones", () => {
  const bytes = toBinary(
    TensorProtoSchema,
    tensorToProto(Tensor.float32([1, 2, 3, 4], [4])),
  );
  for (const offset of [0, 1, 2, 3, 4]) {
    const buf = new Uint8Array(bytes.length + 8);
    buf.set(bytes, offset);
    const s = new WireScanner(buf.subarray(offset, offset + bytes.length));
    const v = readTensorProto(s, bytes.length, new CostMeter(1 << 20));
    assert.deepEqual(Array.from(v.floatVal), [1, 2, 3, 4]);
    const t = tensorFromProto(v, "t");
    assert.deepEqual(Array.from(t.data as Float32Array), [1, 2, 3, 4]);
  }
});
