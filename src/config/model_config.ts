/**
 * The model config: `--model_config_file` (a ModelServerConfig in protobuf text format) or the
 * single model of `--model_name`/`--model_base_path`, validated as upstream's
 * `server_core.cc` (ValidateModelConfigList, GetPlatform, CreateStoragePathRoutes) and
 * `file_system_storage_path_source.cc` do, into typed {@linkcode ModelConfig}s.
 *
 * Upstream error messages are kept where upstream has one. Deliberate differences: a relative
 * base path is accepted (upstream insists on absolute paths or URIs; here it is resolved against
 * the working directory when read), an empty name and an empty `specific` policy are rejected
 * (upstream would serve a nameless model or wait forever), and only local paths (or `file://`)
 * are served.
 *
 * @example
 * ```ts
 * const config = await readModelConfigFile("/models/models.config");
 * for (const m of config.models) console.log(m.name, m.basePath, m.versionPolicy.kind);
 * ```
 *
 * @module
 */

import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { fromText } from "@bufbuild/protobuf/txtpb";
import { Code, ServingError } from "../errors.ts";
import {
  type ModelConfig as ModelConfigProto,
  type ModelServerConfig as ModelServerConfigProto,
  ModelServerConfigSchema,
  ModelType,
} from "../proto/gen/tensorflow_serving/config/model_server_config_pb.ts";
import type { ServerOptions } from "./flags.ts";

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
 * Parses protobuf text format into a message, turning a syntax error into an INVALID_ARGUMENT
 * {@linkcode ServingError} that names the source and the line:column, in the shape upstream's
 * ParseProtoTextFile and protobuf's TextFormat report it.
 *
 * @param schema the message schema, e.g. `ModelServerConfigSchema`
 * @param text the text-format contents
 * @param source the file name for the message, if the text came from a file
 * @returns the parsed message
 * @throws {ServingError} INVALID_ARGUMENT with "Error parsing text-format <type>: L:C: ..."
 */
export function parseTextProto<Desc extends DescMessage>(
  schema: Desc,
  text: string,
  source?: string,
): MessageShape<Desc> {
  try {
    return fromText(schema, text);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    const [line, column] = lineColumn(text, errorOffset(schema, text, detail));
    const where = source === undefined ? "" : `Invalid protobuf file: '${source}': `;
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `${where}Error parsing text-format ${schema.typeName}: ${line}:${column}: ${detail}`,
      { cause: e },
    );
  }
}

/**
 * Reads a text-format protobuf file: a missing file is NOT_FOUND, an unreadable one
 * PERMISSION_DENIED, bad contents INVALID_ARGUMENT (see {@linkcode parseTextProto}).
 *
 * @param schema the message schema
 * @param path the file to read
 */
export async function readTextProtoFile<Desc extends DescMessage>(
  schema: Desc,
  path: string,
): Promise<MessageShape<Desc>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const code = e instanceof Deno.errors.NotFound
      ? Code.NOT_FOUND
      : e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
      ? Code.PERMISSION_DENIED
      : Code.INVALID_ARGUMENT;
    // Deno's messages repeat the path; keep TensorFlow's short reasons for the common cases.
    const detail = code === Code.NOT_FOUND
      ? "No such file or directory"
      : code === Code.PERMISSION_DENIED
      ? "Permission denied"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new ServingError(code, `Cannot read file '${path}': ${detail}`, { cause: e });
  }
  return parseTextProto(schema, text, path);
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
      break;
  }
  const configs = proto.config.value.config;
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
 * Parses and validates the text of a ModelServerConfig.
 *
 * @param text the text-format contents
 * @param source the file name, for messages
 * @throws {ServingError} INVALID_ARGUMENT for bad syntax (with line:column) or a bad config
 */
export function parseModelServerConfig(text: string, source?: string): ModelServerConfig {
  const proto = parseTextProto(ModelServerConfigSchema, text, source);
  try {
    return toModelServerConfig(proto);
  } catch (e) {
    if (source === undefined || !(e instanceof ServingError)) throw e;
    throw e.withPrefix(`Invalid model config file '${source}': `);
  }
}

/**
 * Reads and validates `--model_config_file`.
 *
 * @param path the file
 * @throws {ServingError} NOT_FOUND / PERMISSION_DENIED if unreadable, INVALID_ARGUMENT if bad
 */
export async function readModelConfigFile(path: string): Promise<ModelServerConfig> {
  const proto = await readTextProtoFile(ModelServerConfigSchema, path);
  try {
    return toModelServerConfig(proto);
  } catch (e) {
    if (!(e instanceof ServingError)) throw e;
    throw e.withPrefix(`Invalid model config file '${path}': `);
  }
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
  return toModelServerConfig(create(ModelServerConfigSchema, {
    config: {
      case: "modelConfigList",
      value: {
        config: [{
          name: opts.modelName,
          basePath: opts.modelBasePath,
          modelPlatform: TENSORFLOW_PLATFORM,
        }],
      },
    },
  }));
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
  if (opts.modelConfigFile !== "") return readModelConfigFile(opts.modelConfigFile);
  return Promise.resolve().then(() => modelConfigFromFlags(opts));
}

/** server_core.cc GetPlatform: model_platform, or the deprecated model_type. */
function platformOf(c: ModelConfigProto): string {
  // Deprecated upstream but still honoured there, so honoured here.
  const modelType = c.modelType;
  let platform = c.modelPlatform;
  if (modelType !== ModelType.MODEL_TYPE_UNSPECIFIED) {
    if (platform !== "") {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        "Illegal setting both ModelServerConfig::model_type (deprecated) and " +
          `ModelServerConfig::model_platform, model name is ${c.name}`,
      );
    }
    if (modelType !== ModelType.TENSORFLOW) {
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
function localBasePath(c: ModelConfigProto): string {
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

function versionPolicyOf(c: ModelConfigProto): VersionPolicy {
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

function versionLabelsOf(c: ModelConfigProto): Map<string, number> {
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

// ---------------------------------------------------------------------------------------------
// Locating a text-format error. fromText's errors carry no position, so find the shortest prefix
// of the text (cut at a token end) that fails with the same message: the error lies in the last
// token of that prefix. Prefixes longer than the error point all fail the same way; shorter ones
// usually fail differently (or parse), so gallop back from the end, then bisect.

interface Span {
  start: number;
  end: number;
}

const PUNCT = new Set(["{", "}", "<", ">", "[", "]", ":", ",", ";", "-"]);
const SPACE = new Set([" ", "\t", "\n", "\r", "\v", "\f"]);

/** Token spans of protobuf text format, close enough to the real tokenizer to cut between. */
function tokenSpans(text: string): Span[] {
  const spans: Span[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (SPACE.has(c)) {
      i++;
    } else if (c === "#") {
      while (i < n && text[i] !== "\n") i++;
    } else if (PUNCT.has(c)) {
      spans.push({ start: i, end: i + 1 });
      i++;
    } else if (c === '"' || c === "'") {
      const start = i++;
      while (i < n && text[i] !== c && text[i] !== "\n") i += text[i] === "\\" ? 2 : 1;
      i = Math.min(i + 1, n);
      spans.push({ start, end: i });
    } else {
      const start = i;
      while (
        i < n && !SPACE.has(text[i]) && !PUNCT.has(text[i]) && text[i] !== "#" &&
        text[i] !== '"' && text[i] !== "'"
      ) i++;
      spans.push({ start, end: i });
    }
  }
  return spans;
}

function errorOffset(schema: DescMessage, text: string, message: string): number {
  const spans = tokenSpans(text);
  // The input ran out: point just past the last token.
  if (message.startsWith("unexpected end of input")) return spans.at(-1)?.end ?? 0;
  const failsAt = (i: number): boolean => {
    try {
      fromText(schema, text.slice(0, spans[i].end));
      return false;
    } catch (e) {
      return e instanceof Error && e.message === message;
    }
  };
  let hi = spans.length - 1;
  if (hi < 0 || !failsAt(hi)) return text.length;
  let step = 1;
  let lo = hi - step;
  while (lo >= 0 && failsAt(lo)) {
    hi = lo;
    step *= 2;
    lo = hi - step;
  }
  lo = Math.max(lo, -1);
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (failsAt(mid)) hi = mid;
    else lo = mid;
  }
  return spans[hi].start;
}

/** 1-based line and column of a UTF-16 offset. */
function lineColumn(text: string, offset: number): [number, number] {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return [line, offset - lineStart + 1];
}
