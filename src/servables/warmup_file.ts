/**
 * Where a version directory keeps its warmup requests, in a module of its own so the loader can
 * look for the file without importing the replay (servables/warmup.ts).
 *
 * @module
 */

/** The warmup file's place in a version directory (TF Serving's `saved_model_warmup.cc`). */
export const WARMUP_FILE = "assets.extra/tf_serving_warmup_requests";
