import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  DataType,
  type PredictRequest,
  PredictRequestSchema,
  SavedModelSchema,
  TensorProtoSchema,
} from "../../src/proto/mod.ts";

const testdata = new URL("../../../shared/testdata/tf-serving/", import.meta.url);

Deno.test("SavedModel: decodes half_plus_two saved_model.pb", async () => {
  const bytes = await Deno.readFile(
    new URL("saved_model_half_plus_two_cpu/00000123/saved_model.pb", testdata),
  );
  const model = fromBinary(SavedModelSchema, bytes);
  assert.ok(model.metaGraphs.length >= 1);

  const mg = model.metaGraphs[0];
  assert.ok(mg.metaInfoDef?.tags.includes("serve"));

  const sig = mg.signatureDef["serving_default"];
  assert.ok(sig, "serving_default signature present");

  const x = sig.inputs["x"];
  assert.equal(x?.encoding.case, "name");
  assert.equal(x?.encoding.value, "x:0");
  assert.equal(x?.dtype, DataType.DT_FLOAT);

  const y = sig.outputs["y"];
  assert.equal(y?.encoding.case, "name");
  assert.equal(y?.encoding.value, "y:0");

  assert.ok((mg.graphDef?.node.length ?? 0) > 0, "graph has nodes");
});

Deno.test("TensorProto: tensor_content round-trips", () => {
  const values = new Float32Array([1.5, -2, 3.25, 0]);
  const content = new Uint8Array(values.buffer.slice(0));
  const tensor = create(TensorProtoSchema, {
    dtype: DataType.DT_FLOAT,
    tensorShape: { dim: [{ size: 2n }, { size: 2n }] },
    tensorContent: content,
  });
  const decoded = fromBinary(TensorProtoSchema, toBinary(TensorProtoSchema, tensor));
  assert.equal(decoded.dtype, DataType.DT_FLOAT);
  assert.deepEqual(decoded.tensorShape?.dim.map((d) => d.size), [2n, 2n]);
  assert.deepEqual(decoded.tensorContent, content);
  const copy = decoded.tensorContent.slice();
  assert.deepEqual(Array.from(new Float32Array(copy.buffer)), Array.from(values));
});

Deno.test("PredictRequest: map of tensors round-trips", () => {
  const req: PredictRequest = create(PredictRequestSchema, {
    modelSpec: { name: "half_plus_two", signatureName: "serving_default" },
    inputs: {
      x: create(TensorProtoSchema, {
        dtype: DataType.DT_FLOAT,
        tensorShape: { dim: [{ size: 3n }] },
        floatVal: [1, 2, 5],
      }),
    },
  });
  const back = fromBinary(PredictRequestSchema, toBinary(PredictRequestSchema, req));
  assert.equal(back.modelSpec?.name, "half_plus_two");
  assert.deepEqual(back.inputs["x"]?.floatVal, [1, 2, 5]);
});

// Records protobuf-es behaviour that tensor decoding code may rely on:
// `bytes` fields decoded by fromBinary are subarray views of the input buffer
// (no copy). Mutating the input therefore mutates the decoded field.
Deno.test("TensorProto: fromBinary tensor_content is a view of the input", () => {
  const content = new Uint8Array(64).map((_, i) => i);
  const wire = toBinary(
    TensorProtoSchema,
    create(TensorProtoSchema, { dtype: DataType.DT_UINT8, tensorContent: content }),
  );
  const decoded = fromBinary(TensorProtoSchema, wire);
  assert.equal(decoded.tensorContent.buffer, wire.buffer, "shares the input ArrayBuffer");
  assert.equal(decoded.tensorContent.byteLength, 64);
  const offset = decoded.tensorContent.byteOffset - wire.byteOffset;
  assert.ok(offset > 0 && offset + 64 <= wire.byteLength);
  wire[offset] = 200;
  assert.equal(decoded.tensorContent[0], 200, "aliases the input bytes");
});
