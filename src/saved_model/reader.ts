/**
 * Reads one SavedModel version directory: `saved_model.pb` (or `saved_model.pbtxt`), the
 * MetaGraphDef chosen by its tag set, its signatures, the restore and init ops, and the asset
 * files, as TensorFlow's C++ loader (`cc/saved_model/loader.cc`) finds them.
 *
 * @module
 */
import { decodeBinary } from "../proto/binary.ts";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { fromText } from "@bufbuild/protobuf/txtpb";
import {
  type SavedModel,
  SavedModelSchema,
} from "../proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import {
  type AssetFileDef,
  AssetFileDefSchema,
  type MetaGraphDef,
  type SignatureDef,
} from "../proto/gen/tensorflow/core/protobuf/meta_graph_pb.ts";
import { Code, ServingError } from "../errors.ts";

/** The file names TensorFlow uses inside a version directory. */
export const SAVED_MODEL_PB = "saved_model.pb";
export const SAVED_MODEL_PBTXT = "saved_model.pbtxt";
/** The variables checkpoint prefix, relative to the export dir. */
export const VARIABLES_PREFIX = "variables/variables";
/** The signature key of the TF2 init op, and the collections TF1 uses for it. */
export const INIT_OP_SIGNATURE_KEY = "__saved_model_init_op";
/** The collection naming the op run after restoring (`constants.MAIN_OP_KEY`). */
export const MAIN_OP_COLLECTION = "saved_model_main_op";
const LEGACY_INIT_OP_COLLECTION = "legacy_init_op";
const ASSETS_COLLECTION = "saved_model_assets";

/** Joins path parts with `/`. */
export function joinPath(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/");
}

/** One asset: the graph tensor fed with its path, and the path. */
export interface Asset {
  /** The tensor name (`asset_path_initializer:0`). */
  readonly tensor: string;
  /** The file's path under `assets/`. */
  readonly path: string;
}

/** What the loader needs of one MetaGraphDef. */
export interface SavedModelBundle {
  /** The version directory. */
  readonly exportDir: string;
  /** The chosen MetaGraphDef. */
  readonly metaGraph: MetaGraphDef;
  /** Serving signatures by key (the init-op pseudo-signature left out). */
  readonly signatures: ReadonlyMap<string, SignatureDef>;
  /** The restore op and the tensor it takes the checkpoint prefix in, if variables exist. */
  readonly restore?: {
    readonly op: string;
    readonly filenameTensor: string;
    readonly prefix: string;
  };
  /** The init op (main_op, legacy_init_op or the TF2 init signature), if any. */
  readonly initOp?: string;
  /** Asset tensors to feed when the init op runs. */
  readonly assets: readonly Asset[];
  /**
   * Files under `assets.extra/` (paths), which TensorFlow leaves to the serving system: TF
   * Serving reads its warmup requests there.
   */
  readonly assetsExtra: readonly string[];
}

/** Lists the files under a directory, recursively; none if it does not exist. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const path = joinPath(dir, e.name);
      if (e.isDirectory) out.push(...await listFiles(path));
      else out.push(path);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new ServingError(Code.UNAVAILABLE, `Cannot read ${path}: ${(e as Error).message}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads and parses `saved_model.pb`, or `saved_model.pbtxt` if there is no binary file.
 *
 * @throws ServingError NOT_FOUND if neither exists; DATA_LOSS if the file does not parse
 */
export async function readSavedModelProto(exportDir: string): Promise<SavedModel> {
  const pbPath = joinPath(exportDir, SAVED_MODEL_PB);
  const pb = await readIfExists(pbPath);
  if (pb !== undefined) {
    try {
      // As TensorFlow's C++ parse: wrong wire types skipped, unknown fields dropped, depth 100.
      return decodeBinary(SavedModelSchema, pb);
    } catch (e) {
      throw new ServingError(
        Code.DATA_LOSS,
        `Cannot parse ${pbPath}: ${
          (e as Error).message
        } (${pb.byteLength} bytes; truncated or corrupt?)`,
      );
    }
  }
  const txtPath = joinPath(exportDir, SAVED_MODEL_PBTXT);
  const txt = await readIfExists(txtPath);
  if (txt !== undefined) {
    try {
      return fromText(SavedModelSchema, new TextDecoder().decode(txt));
    } catch (e) {
      throw new ServingError(Code.DATA_LOSS, `Cannot parse ${txtPath}: ${(e as Error).message}`);
    }
  }
  throw new ServingError(
    Code.NOT_FOUND,
    // TensorFlow's reader.cc wording.
    `Could not find SavedModel .pb or .pbtxt at supplied export directory path: ${exportDir}. ` +
      "Check that the directory exists and that you have the right permissions for accessing it.",
  );
}

function tagString(tags: readonly string[]): string {
  return `{ ${tags.join(" ")} }`;
}

/**
 * Picks the MetaGraphDef whose tag set equals `tags` (order and duplicates aside), as
 * TensorFlow's `FindMetaGraphDef` does.
 *
 * @throws ServingError NOT_FOUND naming the requested and the available tag sets
 */
export function selectMetaGraph(
  sm: SavedModel,
  tags: readonly string[],
  where: string,
): MetaGraphDef {
  const want = new Set(tags);
  for (const mg of sm.metaGraphs) {
    const have = new Set(mg.metaInfoDef?.tags ?? []);
    if (have.size === want.size && [...want].every((t) => have.has(t))) return mg;
  }
  const available = sm.metaGraphs.map((mg) => tagString(mg.metaInfoDef?.tags ?? [])).join(", ");
  throw new ServingError(
    Code.NOT_FOUND,
    `Could not find meta graph def matching supplied tags: ${tagString(tags)} in ${where}. ` +
      `Available tag sets: ${available || "none"}`,
  );
}

function collectionNode(mg: MetaGraphDef, key: string): string | undefined {
  const c = mg.collectionDef[key]?.kind;
  if (c?.case !== "nodeList") return undefined;
  if (c.value.value.length !== 1) {
    throw new ServingError(
      Code.FAILED_PRECONDITION,
      `Expected exactly one ${key} node, found ${c.value.value.length}`,
    );
  }
  return c.value.value[0];
}

/** Strips a `:0` output suffix: a target names a node. */
function nodeName(tensor: string): string {
  return tensor.replace(/^\^/, "").replace(/:\d+$/, "");
}

function findInitOp(mg: MetaGraphDef): string | undefined {
  const sig = mg.signatureDef[INIT_OP_SIGNATURE_KEY];
  const out = sig?.outputs[INIT_OP_SIGNATURE_KEY];
  if (out?.encoding.case === "name") return nodeName(out.encoding.value);
  const main = collectionNode(mg, MAIN_OP_COLLECTION) ??
    collectionNode(mg, LEGACY_INIT_OP_COLLECTION);
  return main === undefined ? undefined : nodeName(main);
}

function findAssets(mg: MetaGraphDef, exportDir: string): Asset[] {
  let defs: AssetFileDef[] = mg.assetFileDef;
  if (defs.length === 0) {
    const c = mg.collectionDef[ASSETS_COLLECTION]?.kind;
    if (c?.case === "anyList") {
      defs = c.value.value.map((any) => {
        const d = anyUnpack(any, AssetFileDefSchema);
        if (!d) {
          throw new ServingError(
            Code.INVALID_ARGUMENT,
            `Cannot read the ${ASSETS_COLLECTION} collection: expected AssetFileDef, got ${any.typeUrl}`,
          );
        }
        return d;
      });
    }
  }
  return defs.flatMap((d) =>
    d.tensorInfo?.encoding.case === "name"
      ? [{ tensor: d.tensorInfo.encoding.value, path: joinPath(exportDir, "assets", d.filename) }]
      : []
  );
}

/**
 * Reads a version directory into a bundle: the proto, the chosen MetaGraphDef and what the
 * loader must run.
 *
 * @param exportDir the version directory
 * @param tags the tag set (TF Serving uses `serve`)
 */
export async function readSavedModel(
  exportDir: string,
  tags: readonly string[] = ["serve"],
): Promise<SavedModelBundle> {
  const sm = await readSavedModelProto(exportDir);
  const metaGraph = selectMetaGraph(sm, tags, exportDir);
  const signatures = new Map(
    Object.entries(metaGraph.signatureDef).filter(([k]) => k !== INIT_OP_SIGNATURE_KEY),
  );
  const saver = metaGraph.saverDef;
  const prefix = joinPath(exportDir, VARIABLES_PREFIX);
  // As TensorFlow: no variables index means nothing to restore (the model has no variables).
  const restore = saver && saver.restoreOpName && await exists(`${prefix}.index`)
    ? { op: nodeName(saver.restoreOpName), filenameTensor: saver.filenameTensorName, prefix }
    : undefined;
  return {
    exportDir,
    metaGraph,
    signatures,
    restore,
    initOp: findInitOp(metaGraph),
    assets: findAssets(metaGraph, exportDir),
    assetsExtra: await listFiles(joinPath(exportDir, "assets.extra")),
  };
}
