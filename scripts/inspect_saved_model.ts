/**
 * Prints what a SavedModel version directory holds: tag sets, saver, collections, signatures,
 * the ops of the graph and of each library function. A maintenance aid, like `saved_model_cli`.
 *
 * Usage: `deno run --allow-read scripts/inspect_saved_model.ts DIR [--nodes]`
 *
 * @module
 */
import { readSavedModelProto } from "../src/saved_model/reader.ts";

if (import.meta.main) {
  const [dir, flag] = Deno.args;
  const sm = await readSavedModelProto(dir);
  for (const mg of sm.metaGraphs) {
    console.log(`tags: ${mg.metaInfoDef?.tags.join(",")}`);
    console.log(
      `saver: ${mg.saverDef?.filenameTensorName ?? "-"} → ${mg.saverDef?.restoreOpName ?? "-"}`,
    );
    console.log(`collections: ${Object.keys(mg.collectionDef).join(", ")}`);
    console.log(`asset_file_def: ${mg.assetFileDef.map((a) => a.filename).join(", ") || "-"}`);
    for (const [k, s] of Object.entries(mg.signatureDef)) {
      const io = (m: typeof s.inputs) =>
        Object.entries(m).map(([a, t]) => `${a}=${t.encoding.value}`).join(", ");
      console.log(`signature ${k} (${s.methodName || "-"}): ${io(s.inputs)} → ${io(s.outputs)}`);
    }
    const ops = new Map<string, number>();
    for (const n of mg.graphDef?.node ?? []) ops.set(n.op, (ops.get(n.op) ?? 0) + 1);
    console.log(`graph ops: ${[...ops].map(([o, c]) => `${o}×${c}`).join(" ")}`);
    for (const f of mg.graphDef?.library?.function ?? []) {
      const fops = [...new Set(f.nodeDef.map((n) => n.op))].join(",");
      console.log(`function ${f.signature?.name}: ${fops}`);
    }
    if (flag === "--nodes") {
      for (const n of mg.graphDef?.node ?? []) {
        console.log(`  ${n.name} = ${n.op}(${n.input.join(", ")})`);
      }
    }
  }
}
