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
 * The validation itself (and the single model of the flags) is in model_list.ts, which needs no
 * generated schema; this module adds the text-format files and re-exports it.
 *
 * @module
 */

import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { fromText } from "@bufbuild/protobuf/txtpb";
import { Code, ServingError } from "../errors.ts";
import {
  type ModelServerConfig as ModelServerConfigProto,
  ModelServerConfigSchema,
} from "../proto/gen/tensorflow_serving/config/model_server_config_pb.ts";
import { type ModelServerConfig, toModelServerConfig } from "./model_list.ts";

export {
  loadModelServerConfig,
  type ModelConfig,
  modelConfigFromFlags,
  type ModelServerConfig,
  TENSORFLOW_PLATFORM,
  toModelServerConfig,
  type VersionPolicy,
} from "./model_list.ts";

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
 * Reads a ModelServerConfig text-format file into its message, unvalidated (the polled
 * `--model_config_file`, validated by its caller); errors as {@linkcode readTextProtoFile}.
 *
 * @param path the file to read
 */
export function readModelServerConfigProto(path: string): Promise<ModelServerConfigProto> {
  return readTextProtoFile(ModelServerConfigSchema, path);
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
