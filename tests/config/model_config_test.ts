import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ServingError } from "../../src/errors.ts";
import {
  loadModelServerConfig,
  modelConfigFromFlags,
  type ModelServerConfig,
  parseModelServerConfig,
  readModelConfigFile,
  TENSORFLOW_PLATFORM,
  toModelServerConfig,
} from "../../src/config/model_config.ts";
import {
  ModelServerConfigSchema,
  ModelType,
} from "../../src/proto/gen/tensorflow_serving/config/model_server_config_pb.ts";
import { fileURLToPath } from "node:url";

/** A path in the shared TF Serving testdata (../shared/testdata/tf-serving beside the repo). */
function testdata(rel: string): string {
  return fileURLToPath(new URL(`../../../shared/testdata/tf-serving/${rel}`, import.meta.url));
}

/** One model's text-format config, inside a model_config_list. */
function one(body: string): string {
  return `model_config_list { config { ${body} } }`;
}

const OK = 'name: "m" base_path: "/models/m" model_platform: "tensorflow"';

/** Asserts that `fn` throws a ServingError with `code` and exactly `message` (or a match). */
function assertServingError(fn: () => unknown, code: Code, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, `expected a ServingError, got ${e}`);
    assert.equal(Code[e.code], Code[code]);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

function parse(text: string): ModelServerConfig {
  return parseModelServerConfig(text);
}

Deno.test("readModelConfigFile() reads upstream's good_model_config.txt", async () => {
  const config = await readModelConfigFile(testdata("good_model_config.txt"));
  assert.deepEqual(config.warnings, []);
  assert.deepEqual(config.models, [
    {
      name: "half_plus_two",
      basePath: "${TEST_HALF_PLUS_TWO_DIR}",
      platform: "tensorflow",
      versionPolicy: { kind: "latest", numVersions: 1 },
      versionLabels: new Map(),
    },
    {
      name: "half_plus_three",
      basePath: "${TEST_HALF_PLUS_THREE_DIR}",
      platform: "tensorflow",
      versionPolicy: { kind: "latest", numVersions: 1 },
      versionLabels: new Map(),
    },
  ]);
});

Deno.test("readModelConfigFile() rejects bad_model_config.txt naming file, line and column", async () => {
  const path = testdata("bad_model_config.txt");
  await assert.rejects(readModelConfigFile(path), (e: unknown) => {
    assert.ok(e instanceof ServingError);
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    // Upstream's test looks for "Error parsing text-format tensorflow.serving.ModelServerConfig".
    assert.equal(
      e.message,
      `Invalid protobuf file: '${path}': Error parsing text-format ` +
        'tensorflow.serving.ModelServerConfig: 1:1: unknown field "improperly" for message ' +
        "tensorflow.serving.ModelServerConfig",
    );
    return true;
  });
});

Deno.test("readModelConfigFile() reports a missing file as NOT_FOUND", async () => {
  const path = testdata("no_such_config.txt");
  await assert.rejects(readModelConfigFile(path), (e: unknown) => {
    assert.ok(e instanceof ServingError);
    assert.equal(e.code, Code.NOT_FOUND);
    assert.equal(e.message, `Cannot read file '${path}': No such file or directory`);
    return true;
  });
});

Deno.test("parseModelServerConfig() locates syntax errors", () => {
  const cases: [string, RegExp][] = [
    [
      'model_config_list {\n  config { name: "a" }\n  config { name "b" }\n}',
      /: 3:12: expected ":" before value of field "name"$/,
    ],
    [
      'model_config_list {\n  config {\n    name: "a"\n    bogus: 1\n  }\n}',
      /: 4:5: unknown field "bogus" for message tensorflow.serving.ModelConfig$/,
    ],
    [
      "model_config_list {\n  config {\n    model_version_policy { latest { num_versions: -1 } }\n" +
      "  }\n}",
      /: 3:51: .*negative value$/,
    ],
    ['model_config_list {\n  config { name: "a"\n', /: 2:21: unexpected end of input/],
    ['# a comment\nmodel_config_list { config { name: "a\n" } }', /: 2:36: .*string/],
  ];
  for (const [text, message] of cases) {
    assertServingError(
      () => parseModelServerConfig(text, "models.config"),
      Code.INVALID_ARGUMENT,
      new RegExp(
        "^Invalid protobuf file: 'models.config': Error parsing text-format " +
          "tensorflow.serving.ModelServerConfig" + message.source,
      ),
    );
  }
});

Deno.test("parseModelServerConfig() accepts both text-format spellings", () => {
  const text = `
    # Comments, commas, angle brackets and single quotes are all text format.
    model_config_list: <
      config: { name: 'a', base_path: "/a", model_platform: "tensorflow"; }
      config { name: "b" base_path: "/b" model_platform: "tensorflow" }
    >`;
  assert.deepEqual(parse(text).models.map((m) => m.name), ["a", "b"]);
});

Deno.test("parseModelServerConfig() takes an empty config as no models", () => {
  assert.deepEqual(parse("").models, []);
  assert.deepEqual(parse("model_config_list {}").models, []);
  // Only the unset config is "empty" (ServerCore takes no action for it); an empty list is a
  // config that serves no models.
  assert.equal(parse("").empty, true);
  assert.equal(parse("model_config_list {}").empty, undefined);
});

Deno.test("parseModelServerConfig() reads the version policies", () => {
  const policy = (p: string) => parse(one(`${OK} model_version_policy { ${p} }`)).models[0];
  assert.deepEqual(parse(one(OK)).models[0].versionPolicy, { kind: "latest", numVersions: 1 });
  assert.deepEqual(policy("").versionPolicy, { kind: "latest", numVersions: 1 });
  assert.deepEqual(policy("latest { num_versions: 3 }").versionPolicy, {
    kind: "latest",
    numVersions: 3,
  });
  // file_system_storage_path_source.cc serves max(num_versions, 1).
  assert.deepEqual(policy("latest { num_versions: 0 }").versionPolicy, {
    kind: "latest",
    numVersions: 1,
  });
  assert.deepEqual(policy("latest {}").versionPolicy, { kind: "latest", numVersions: 1 });
  assert.deepEqual(policy("all {}").versionPolicy, { kind: "all" });
  assert.deepEqual(policy("specific { versions: 3 versions: 1 versions: 3 }").versionPolicy, {
    kind: "specific",
    versions: [1, 3],
  });
  assert.deepEqual(policy("specific { versions: [2, 10] }").versionPolicy, {
    kind: "specific",
    versions: [2, 10],
  });
  assertServingError(
    () => policy("specific {}"),
    Code.INVALID_ARGUMENT,
    "Model m has a specific version policy that lists no versions",
  );
  assertServingError(
    () => policy("specific { versions: 9007199254740993 }"),
    Code.INVALID_ARGUMENT,
    /^Model m version policy names version 9007199254740993, which is beyond/,
  );
  // Two members of the policy oneof is a syntax error.
  assertServingError(
    () => policy("all {} latest {}"),
    Code.INVALID_ARGUMENT,
    /oneof "policy_choice" is already set$/,
  );
});

Deno.test("parseModelServerConfig() reads version labels", () => {
  const m = parse(one(`${OK}
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
    version_labels { key: "stable" value: 3 }`)).models[0];
  // A map key given twice keeps the last value.
  assert.deepEqual(m.versionLabels, new Map([["stable", 3], ["canary", 2]]));
});

Deno.test("parseModelServerConfig() rejects a model listed twice (upstream's message)", () => {
  assertServingError(
    () =>
      parseModelServerConfig(
        `model_config_list { config { ${OK} } config { ${OK} } }`,
        "models.config",
      ),
    Code.INVALID_ARGUMENT,
    "Invalid model config file 'models.config': Illegal to list model m multiple times in " +
      "config list",
  );
});

Deno.test("parseModelServerConfig() rejects empty names and base paths", () => {
  assertServingError(
    () => parse(`model_config_list { config { ${OK} } config { base_path: "/x" } }`),
    Code.INVALID_ARGUMENT,
    "Model config #2 in model_config_list has an empty name",
  );
  assertServingError(
    () => parse(one('name: "m" model_platform: "tensorflow"')),
    Code.INVALID_ARGUMENT,
    "Expected model m to have an absolute path or URI; got base_path()=",
  );
});

Deno.test("parseModelServerConfig() serves local paths only", () => {
  const base = (p: string) =>
    parse(one(`name: "m" base_path: "${p}" model_platform: "tensorflow"`)).models[0].basePath;
  assert.equal(base("/abs/m"), "/abs/m");
  assert.equal(base("relative/m"), "relative/m");
  assert.equal(base("file:///abs/m"), "/abs/m");
  assertServingError(
    () => base("gs://bucket/m"),
    Code.INVALID_ARGUMENT,
    "Cannot serve model m from gs://bucket/m: only local paths (or file:///) are supported",
  );
  assertServingError(() => base("file://host/m"), Code.INVALID_ARGUMENT, /only local paths/);
  assertServingError(() => base("file://"), Code.INVALID_ARGUMENT, /got base_path\(\)=file:\/\/$/);
});

Deno.test("parseModelServerConfig() checks the platform as server_core.cc does", () => {
  assertServingError(
    () => parse(one('name: "m" base_path: "/m"')),
    Code.INVALID_ARGUMENT,
    "Illegal setting neither ModelServerConfig::model_type (deprecated) nor " +
      "ModelServerConfig::model_platform, model name is m",
  );
  assertServingError(
    () => parse(one('name: "m" base_path: "/m" model_platform: "tflite"')),
    Code.INVALID_ARGUMENT,
    "Model m requests unsupported platform tflite",
  );
  assert.equal(
    parse(one('name: "m" base_path: "/m" model_type: TENSORFLOW')).models[0].platform,
    TENSORFLOW_PLATFORM,
  );
  assertServingError(
    () => parse(one('name: "m" base_path: "/m" model_type: OTHER')),
    Code.INVALID_ARGUMENT,
    "ModelServerConfig::model_type choice 2 not supported.",
  );
  assertServingError(
    () => parse(one('name: "m" base_path: "/m" model_type: TENSORFLOW model_platform: "x"')),
    Code.INVALID_ARGUMENT,
    "Illegal setting both ModelServerConfig::model_type (deprecated) and " +
      "ModelServerConfig::model_platform, model name is m",
  );
});

Deno.test("parseModelServerConfig() refuses custom_model_config", () => {
  assertServingError(
    () => parse('custom_model_config { type_url: "type.googleapis.com/x.Y" }'),
    Code.UNIMPLEMENTED,
    "ModelServer does not yet support custom model config.",
  );
});

Deno.test("parseModelServerConfig() notes a logging_config it ignores", () => {
  const config = parse(one(`${OK} logging_config {}`));
  assert.equal(config.models.length, 1);
  assert.deepEqual(config.warnings, [
    "Request logging is not supported; logging_config of model m is ignored",
  ]);
});

Deno.test("toModelServerConfig() validates a message (as from HandleReloadConfigRequest)", () => {
  const proto = create(ModelServerConfigSchema, {
    config: {
      case: "modelConfigList",
      value: {
        config: [
          { name: "a", basePath: "/a", modelType: ModelType.TENSORFLOW },
          {
            name: "b",
            basePath: "/b",
            modelPlatform: "tensorflow",
            modelVersionPolicy: { policyChoice: { case: "specific", value: { versions: [7n] } } },
            versionLabels: { stable: 7n },
          },
        ],
      },
    },
  });
  const config = toModelServerConfig(proto);
  assert.deepEqual(config.models[1].versionPolicy, { kind: "specific", versions: [7] });
  assert.deepEqual(config.models[1].versionLabels, new Map([["stable", 7]]));
  assert.equal(config.models[0].platform, "tensorflow");
});

Deno.test("modelConfigFromFlags() builds upstream's single-model config", () => {
  const config = modelConfigFromFlags({ modelName: "mnist", modelBasePath: "/models/mnist" });
  assert.deepEqual(config, {
    models: [{
      name: "mnist",
      basePath: "/models/mnist",
      platform: "tensorflow",
      versionPolicy: { kind: "latest", numVersions: 1 },
      versionLabels: new Map(),
    }],
    warnings: [],
  });
  assertServingError(
    () => modelConfigFromFlags({ modelName: "default", modelBasePath: "" }),
    Code.INVALID_ARGUMENT,
    "Expected model default to have an absolute path or URI; got base_path()=",
  );
});

Deno.test("loadModelServerConfig() prefers --model_config_file over --model_base_path", async () => {
  const fromFile = await loadModelServerConfig({
    modelConfigFile: testdata("good_model_config.txt"),
    modelName: "ignored",
    modelBasePath: "/ignored",
  });
  assert.deepEqual(fromFile.models.map((m) => m.name), ["half_plus_two", "half_plus_three"]);
  const fromFlags = await loadModelServerConfig({
    modelConfigFile: "",
    modelName: "default",
    modelBasePath: "/m",
  });
  assert.deepEqual(fromFlags.models.map((m) => m.name), ["default"]);
  await assert.rejects(
    loadModelServerConfig({ modelConfigFile: "", modelName: "", modelBasePath: "/m" }),
    ServingError,
  );
});
