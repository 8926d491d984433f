/**
 * The validated model config (the models to serve) and its validation from a ModelServerConfig
 * message, as upstream's `server_core.cc` (ValidateModelConfigList, GetPlatform,
 * CreateStoragePathRoutes) and `file_system_storage_path_source.cc` do, into typed
 * {@linkcode ModelConfig}s; and the single model of `--model_name`/`--model_base_path`.
 *
 * Start-up (issue 10): this module needs the message's type only, not its schema, so serving
 * the single model of the flags loads neither the generated ModelServerConfig files nor the
 * text-format reader; model_config.ts (imported for `--model_config_file`) has those, and
 * re-exports everything here.
 *
 * Upstream error messages are kept where upstream has one. Deliberate differences: a relative
 * base path is accepted (upstream insists on absolute paths or URIs; here it is resolved against
 * the working directory when read), an empty name and an empty `specific` policy are rejected
 * (upstream would serve a nameless model or wait forever), and only local paths (or `file://`)
 * are served.
 *
 * @module
 */

import { Code, ServingError } from "../errors.ts";
import type {
  ModelConfig as ModelConfigProto,
  ModelServerConfig as ModelServerConfigProto,
  ModelType,
} from "../proto/gen/tensorflow_serving/config/model_server_config_pb.ts";
import type { ServerOptions } from "./flags.ts";

/**
 * The ModelType values the validation tells apart (the enum is in the generated module, which
 * this one does not load; tests/config/model_list_test.ts checks them against it).
 */
export const MODEL_TYPE_UNSPECIFIED = 0 as ModelType.MODEL_TYPE_UNSPECIFIED;
/** ModelType.TENSORFLOW. */
export const MODEL_TYPE_TENSORFLOW = 1 as ModelType.TENSORFLOW;

/** The one platform this server serves (upstream's `kTensorFlowModelPlatform`). */
export const TENSORFLOW_PLATFORM = "tensorflow";

/**
 * Which versions of a model to serve (upstream's ServableVersionPolicy).
 * - `latest`: the `numVersions` highest versions found on disk (the default, with 1);
 * - `all`: every version found on disk;
 * - `specific`: exactly these versions (ascending, no duplicates).
 */
export type VersionPolicy =
  | { readonly kind: "latest"; readonly numVersions: number }
  | { readonly kind: "all" }
  | { readonly kind: "specific"; readonly versions: readonly number[] };

/** One model to serve, validated. */
export interface ModelConfig {
  /** The model name clients put in ModelSpec.name. */
  readonly name: string;
  /** The directory holding the numbered version directories (local path; may be relative). */
  readonly basePath: string;
  /** Always {@linkcode TENSORFLOW_PLATFORM} here. */
  readonly platform: string;
  /** Which versions to serve. */
  readonly versionPolicy: VersionPolicy;
  /** Version labels (e.g. "stable" → 1), for ModelSpec.version_label. */
  readonly versionLabels: ReadonlyMap<string, number>;
}

/** A validated ModelServerConfig: the models to serve, and notes for the log. */
export interface ModelServerConfig {
  /** The models, in config order; empty when the config lists none. */
  readonly models: readonly ModelConfig[];
  /** Parts of the config this server does not act on (e.g. logging_config), for the log. */
  readonly warnings: readonly string[];
  /**
   * True when the message set neither `model_config_list` nor `custom_model_config` (e.g. an
   * empty file): upstream's ServerCore::ReloadConfig takes no action for such a config, so a
   * config file truncated while it is polled does not unload every model.
   */
  readonly empty?: boolean;
}

/**
 * Validates a ModelServerConfig message (from a file or a HandleReloadConfigRequest) and converts
 * it to typed models. Messages follow upstream's wording where it has one.
 *
 * @param proto the message
 * @returns the models to serve
 * @throws {ServingError} INVALID_ARGUMENT for a bad config; UNIMPLEMENTED for custom_model_config
 */
export function toModelServerConfig(proto: ModelServerConfigProto): ModelServerConfig {
  switch (proto.config.case) {
    case undefined:
      // Upstream: "Taking no action for empty config." (ServerCore keeps what it serves).
      return { models: [], warnings: [], empty: true };
    case "customModelConfig":
      throw new ServingError(
        Code.UNIMPLEMENTED,
        "ModelServer does not yet support custom model config.",
      );
    case "modelConfigList":
      return toModelConfigs(proto.config.value.config);
  }
}

/** The fields of a ModelConfig message the validation reads. */
type ModelConfigFields = Pick<
  ModelConfigProto,
  | "name"
  | "basePath"
  | "modelPlatform"
  | "modelType"
  | "loggingConfig"
  | "modelVersionPolicy"
  | "versionLabels"
>;

/** Validates a model_config_list's configs (ValidateModelConfigList, then each model). */
function toModelConfigs(configs: readonly ModelConfigFields[]): ModelServerConfig {
  const warnings: string[] = [];

  // ValidateModelConfigList: unique names, then base paths.
  const names = new Set<string>();
  configs.forEach((c, i) => {
    if (c.name === "") {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Model config #${i + 1} in model_config_list has an empty name`,
      );
    }
    if (names.has(c.name)) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Illegal to list model ${c.name} multiple times in config list`,
      );
    }
    names.add(c.name);
  });
  const basePaths = configs.map((c) => localBasePath(c));

  const models = configs.map((c, i): ModelConfig => {
    const platform = platformOf(c);
    if (platform !== TENSORFLOW_PLATFORM) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Model ${c.name} requests unsupported platform ${platform}`,
      );
    }
    if (c.loggingConfig !== undefined) {
      warnings.push(
        `Request logging is not supported; logging_config of model ${c.name} is ignored`,
      );
    }
    return {
      name: c.name,
      basePath: basePaths[i],
      platform,
      versionPolicy: versionPolicyOf(c),
      versionLabels: versionLabelsOf(c),
    };
  });
  return { models, warnings };
}

/**
 * The single-model config of `--model_name` and `--model_base_path`, as upstream's
 * BuildSingleModelConfig: platform tensorflow, the default version policy (latest 1).
 *
 * @param opts the parsed flags
 * @throws {ServingError} INVALID_ARGUMENT for an empty name or base path
 */
export function modelConfigFromFlags(
  opts: Pick<ServerOptions, "modelName" | "modelBasePath">,
): ModelServerConfig {
  // The fields toModelConfigs reads, as create(ModelServerConfigSchema) sets them (the others
  // at their defaults), built without the message schema (start-up: issue 10).
  return toModelConfigs([{
    name: opts.modelName,
    basePath: opts.modelBasePath,
    modelPlatform: TENSORFLOW_PLATFORM,
    modelType: MODEL_TYPE_UNSPECIFIED,
    loggingConfig: undefined,
    modelVersionPolicy: undefined,
    versionLabels: {},
  }]);
}

/**
 * The config the server starts with, chosen as upstream's Server::BuildAndStart does: the
 * `--model_config_file` when set, otherwise `--model_name`/`--model_base_path`.
 *
 * @param opts the parsed flags
 */
export function loadModelServerConfig(
  opts: Pick<ServerOptions, "modelConfigFile" | "modelName" | "modelBasePath">,
): Promise<ModelServerConfig> {
  if (opts.modelConfigFile !== "") {
    // The text-format reader and the ModelServerConfig schema load only for a config file.
    return import("./model_config.ts").then((m) => m.readModelConfigFile(opts.modelConfigFile));
  }
  return Promise.resolve().then(() => modelConfigFromFlags(opts));
}

/** server_core.cc GetPlatform: model_platform, or the deprecated model_type. */
function platformOf(c: ModelConfigFields): string {
  // Deprecated upstream but still honoured there, so honoured here.
  const modelType = c.modelType;
  let platform = c.modelPlatform;
  if (modelType !== MODEL_TYPE_UNSPECIFIED) {
    if (platform !== "") {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        "Illegal setting both ModelServerConfig::model_type (deprecated) and " +
          `ModelServerConfig::model_platform, model name is ${c.name}`,
      );
    }
    if (modelType !== MODEL_TYPE_TENSORFLOW) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `ModelServerConfig::model_type choice ${modelType} not supported.`,
      );
    }
    platform = TENSORFLOW_PLATFORM;
  }
  if (platform === "") {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      "Illegal setting neither ModelServerConfig::model_type (deprecated) nor " +
        `ModelServerConfig::model_platform, model name is ${c.name}`,
    );
  }
  return platform;
}

/**
 * The base path as a local path. Like TensorFlow's io::ParseURI, "scheme://" needs a scheme of
 * [A-Za-z][0-9A-Za-z.]*; only file:// (the local file system) is served here.
 */
function localBasePath(c: ModelConfigFields): string {
  const uri = c.basePath;
  const scheme = /^([a-zA-Z][0-9a-zA-Z.]*):\/\//.exec(uri);
  let path = uri;
  if (scheme !== null) {
    const rest = uri.slice(scheme[0].length);
    const slash = rest.indexOf("/");
    const host = slash < 0 ? rest : rest.slice(0, slash);
    if (scheme[1] !== "file" || host !== "") {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot serve model ${c.name} from ${uri}: only local paths (or file:///) are supported`,
      );
    }
    path = slash < 0 ? "" : rest.slice(slash);
  }
  if (path === "") {
    // Upstream's wording for an empty (relative) base path.
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Expected model ${c.name} to have an absolute path or URI; got base_path()=${uri}`,
    );
  }
  return path;
}

function versionPolicyOf(c: ModelConfigFields): VersionPolicy {
  const choice = c.modelVersionPolicy?.policyChoice;
  switch (choice?.case) {
    case undefined:
      return { kind: "latest", numVersions: 1 };
    case "latest":
      // file_system_storage_path_source.cc serves max(num_versions, 1): 0 means unset.
      return { kind: "latest", numVersions: Math.max(choice.value.numVersions, 1) };
    case "all":
      return { kind: "all" };
    case "specific": {
      if (choice.value.versions.length === 0) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Model ${c.name} has a specific version policy that lists no versions`,
        );
      }
      const versions = [...new Set(choice.value.versions)].sort((a, b) =>
        a < b ? -1 : a > b ? 1 : 0
      )
        .map((v) => toVersion(c.name, v, "version policy"));
      return { kind: "specific", versions };
    }
  }
}

function versionLabelsOf(c: ModelConfigFields): Map<string, number> {
  const labels = new Map<string, number>();
  for (const [label, version] of Object.entries(c.versionLabels)) {
    labels.set(label, toVersion(c.name, version, `version label "${label}"`));
  }
  return labels;
}

function toVersion(model: string, v: bigint, what: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Model ${model} ${what} names version ${v}, which is beyond the largest supported ` +
        `version ${Number.MAX_SAFE_INTEGER}`,
    );
  }
  return n;
}
