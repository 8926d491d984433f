/**
 * Child processes for benchmarks: a free port, and `deno …` spawned with its output collected
 * line by line so a section can wait for a readiness line.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** A path relative to this folder. */
export const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
/** The program and the config every child runs with. */
export const MAIN: string = here("../../main.ts");
export const CONFIG: string = here("../../deno.json");

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A spawned child with its output lines. */
export interface Proc {
  readonly child: Deno.ChildProcess;
  readonly lines: string[];
  /** Resolves with the milliseconds since spawn once a line matches `re` (or already did). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<number>;
}

/** Spawns `deno args…` with a piped stdin (closing it tells a child its parent is gone). */
export function spawn(args: string[]): Proc {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (ms: number) => void }[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const ms = performance.now() - t0;
        for (const w of waiters.splice(0)) {
          if (w.re.test(line)) w.resolve(ms);
          else waiters.push(w);
        }
      }
    }
  };
  pump(child.stdout);
  pump(child.stderr);
  return {
    child,
    lines,
    waitFor: (re, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        if (lines.some((l) => re.test(l))) return resolve(performance.now() - t0);
        const timer = setTimeout(
          () => reject(new Error(`no ${re} in:\n${lines.join("\n")}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: (ms) => {
            clearTimeout(timer);
            resolve(ms);
          },
        });
      }),
  };
}

/** Stops a child with SIGTERM and waits for it. */
export async function stop(p: Proc): Promise<void> {
  await p.child.stdin.close().catch(() => {});
  try {
    p.child.kill("SIGTERM");
  } catch { /* gone */ }
  await p.child.status;
}
