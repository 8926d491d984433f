import assert from "node:assert/strict";
import { create, type JsonObject, toJson } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import {
  type GetModelMetadataRequest,
  GetModelMetadataRequestSchema,
  GetModelMetadataResponseSchema,
  SignatureDefMapSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import { protoRegistry } from "../../src/proto/mod.ts";
import { Code } from "../../src/errors.ts";
import { getModelMetadata } from "../../src/servables/metadata.ts";
import {
  assertServingError,
  model,
  testdata,
  TF1,
  TF1_2_VERSIONS,
  TF2,
  VERSION,
} from "./fixtures.ts";

function request(fields: string[] = ["signature_def"]): GetModelMetadataRequest {
  return create(GetModelMetadataRequestSchema, {
    modelSpec: { name: "default" },
    metadataField: fields,
  });
}

/** Upstream's SortedObject: objects as sorted entries, lists sorted, recursively. */
function sortedObject(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(sortedObject).sort((a, b) =>
      JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0
    );
  }
  if (v !== null && typeof v === "object") {
    return Object.keys(v).sort().map((k) => [k, sortedObject((v as Record<string, unknown>)[k])]);
  }
  return v;
}

Deno.test("getModelMetadata() answers as upstream's testGetModelMetadata expects", async (t) => {
  for (const rel of [TF1, TF2]) {
    await t.step(rel, async () => {
      const res = getModelMetadata(await model(rel), VERSION, "default", request());
      assert.equal(res.modelSpec?.name, "default");
      assert.equal(res.modelSpec?.versionChoice.case, "version");
      assert.equal(res.modelSpec?.versionChoice.value?.value, 123n);
      assert.equal(res.modelSpec?.signatureName, "");
      assert.deepEqual(Object.keys(res.metadata), ["signature_def"]);
      assert.equal(
        res.metadata.signature_def.typeUrl,
        "type.googleapis.com/tensorflow.serving.SignatureDefMap",
      );
    });
  }
});

Deno.test("getModelMetadata() matches saved_model_half_plus_two_2_versions_metadata.json", async () => {
  const name = "saved_model_half_plus_two_2_versions";
  const res = getModelMetadata(await model(TF1_2_VERSIONS), VERSION, name, request());
  const json = toJson(GetModelMetadataResponseSchema, res, {
    registry: protoRegistry,
    useProtoFieldName: true,
    alwaysEmitImplicit: true,
  }) as JsonObject;
  // The REST API prints the Any's message without its "@type" (http_rest_api_util.cc).
  const metadata = json.metadata as JsonObject;
  const packed = metadata.signature_def as JsonObject;
  assert.equal(packed["@type"], "type.googleapis.com/tensorflow.serving.SignatureDefMap");
  delete packed["@type"];

  const expected = JSON.parse(
    await Deno.readTextFile(testdata("saved_model_half_plus_two_2_versions_metadata.json")),
  );
  assert.deepEqual(sortedObject(json), sortedObject(expected));
  // And field by field, the parts upstream's gRPC test names.
  assert.deepEqual(json.model_spec, expected.model_spec);
  assert.deepEqual(
    Object.keys(packed.signature_def as JsonObject).sort(),
    Object.keys(expected.metadata.signature_def.signature_def).sort(),
  );
  for (const [key, def] of Object.entries(expected.metadata.signature_def.signature_def)) {
    assert.deepEqual((packed.signature_def as JsonObject)[key], def, key);
  }
});

Deno.test("getModelMetadata() includes every SignatureDef, TF2's init op too", async () => {
  const m = await model(TF2);
  const res = getModelMetadata(m, VERSION, "default", request());
  const map = anyUnpack(res.metadata.signature_def, SignatureDefMapSchema)!;
  assert.deepEqual(
    Object.keys(map.signatureDef).sort(),
    [...m.signatures.keys(), "__saved_model_init_op"].sort(),
  );
  // A second call answers the same (the packed map is cached per model).
  const again = getModelMetadata(
    m,
    VERSION,
    "default",
    request(["signature_def", "signature_def"]),
  );
  assert.deepEqual(again.metadata.signature_def.value, res.metadata.signature_def.value);
});

Deno.test("getModelMetadata() rejects requests as upstream's GetModelMetadataImpl does", async () => {
  const m = await model(TF1);
  const noSpec = request();
  noSpec.modelSpec = undefined;
  assertServingError(
    () => getModelMetadata(m, VERSION, "default", noSpec),
    Code.INVALID_ARGUMENT,
    "Missing ModelSpec",
  );
  assertServingError(
    () => getModelMetadata(m, VERSION, "default", request([])),
    Code.INVALID_ARGUMENT,
    "GetModelMetadataRequest must specify at least one metadata_field",
  );
  assertServingError(
    () => getModelMetadata(m, VERSION, "default", request(["signature_def", "model_info"])),
    Code.INVALID_ARGUMENT,
    "Metadata field model_info is not supported",
  );
});
