/**
 * model_list.ts validates without the generated schema: its ModelType values and the single
 * model of the flags must be what the schema gives.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  MODEL_TYPE_TENSORFLOW,
  MODEL_TYPE_UNSPECIFIED,
  modelConfigFromFlags,
  toModelServerConfig,
} from "../../src/config/model_list.ts";
import {
  ModelServerConfigSchema,
  ModelType,
} from "../../src/proto/gen/tensorflow_serving/config/model_server_config_pb.ts";

Deno.test("model_list.ts's ModelType values are the enum's", () => {
  assert.equal(MODEL_TYPE_UNSPECIFIED, ModelType.MODEL_TYPE_UNSPECIFIED);
  assert.equal(MODEL_TYPE_TENSORFLOW, ModelType.TENSORFLOW);
});

/** The flags' config as a ModelServerConfig message built with the schema, validated. */
function viaSchema(modelName: string, modelBasePath: string) {
  return toModelServerConfig(create(ModelServerConfigSchema, {
    config: {
      case: "modelConfigList",
      value: {
        config: [{ name: modelName, basePath: modelBasePath, modelPlatform: "tensorflow" }],
      },
    },
  }));
}

Deno.test("the flags' single model is validated as the same message built with the schema", () => {
  const cases: [string, string][] = [
    ["m", "/models/m"],
    ["m", "relative/m"],
    ["m", "file:///models/m"],
    ["m", "file://host/models/m"],
    ["m", "gs://bucket/m"],
    ["m", ""],
    ["", "/models/m"],
  ];
  for (const [name, base] of cases) {
    let expected: unknown, actual: unknown;
    try {
      expected = viaSchema(name, base);
    } catch (e) {
      expected = e;
    }
    try {
      actual = modelConfigFromFlags({ modelName: name, modelBasePath: base });
    } catch (e) {
      actual = e;
    }
    assert.deepEqual(actual, expected, `${name} ${base}`);
  }
});
