/**
 * Runs the real server as a child process for integration tests, exactly as `deno task serve`
 * does (the launcher, which starts `main.ts` with least privilege): a free port, the log
 * collected line by line, readiness awaited on the "Running gRPC ModelServer" line.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The repo's deno.json. */
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * The arguments of `Deno.execPath()` that run the `deno.json` task `name` (e.g. "serve") with
 * `args`: the task's own command line, with the repo's files made absolute and `--config` added,
 * so tests start the server with the very permissions users get.
 */
export function taskCommand(name: string, args: readonly string[]): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(CONFIG)).tasks as Record<string, string>;
  const words = tasks[name].split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run") throw new Error(`task ${name} is not deno run`);
  const rest = words.slice(2).map((w) => /^[\w/]+\.ts$/.test(w) ? `${ROOT}${w}` : w);
  return ["run", "--config", CONFIG, ...rest, ...args];
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A server child process. */
export class ServerProcess implements AsyncDisposable {
  /** Every line the process wrote, stdout and stderr interleaved. */
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  readonly #done: Promise<void>;

  private constructor(child: Deno.ChildProcess, readonly port: number) {
    this.#child = child;
    this.#done = Promise.all([this.#pump(child.stdout), this.#pump(child.stderr)]).then(() => {});
  }

  /**
   * Starts the server with `flags` (a `--port` is added unless given) and waits until it serves.
   *
   * @throws if the process exits or does not get ready within `timeoutMs`
   */
  static async start(
    flags: string[],
    timeoutMs = 30_000,
    env?: Record<string, string>,
  ): Promise<ServerProcess> {
    const port = flags.some((f) => f.startsWith("--port=")) ? -1 : freePort();
    const args = port > 0 ? [`--port=${port}`, ...flags] : flags;
    const p = ServerProcess.spawn(args, port, env);
    try {
      await p.waitFor(/Running gRPC ModelServer at/, timeoutMs);
    } catch (e) {
      await p.kill();
      throw e;
    }
    return p;
  }

  /** Spawns `deno task serve` with exactly `args`, without waiting. */
  static spawn(args: string[], port = -1, env?: Record<string, string>): ServerProcess {
    const child = new Deno.Command(Deno.execPath(), {
      args: taskCommand("serve", args),
      env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    return new ServerProcess(child, port);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        this.#line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) this.#line(buf);
  }

  #line(line: string): void {
    this.lines.push(line);
    if (Deno.env.get("SERVER_LOG")) console.error(`[server] ${line}`);
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i].re.test(line)) {
        this.#waiters[i].resolve(line);
        this.#waiters.splice(i, 1);
      }
    }
  }

  /** Resolves with the first line (already seen or to come) matching `re`. */
  waitFor(re: RegExp, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.findIndex((w) => w.resolve === done);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`No log line matching ${re} within ${timeoutMs} ms. Log:\n${this.log()}`));
      }, timeoutMs);
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiters.push({ re, resolve: done });
      this.#child.status.then(() => {
        // Give the pumps a moment to deliver the last lines.
        setTimeout(() => {
          const i = this.#waiters.findIndex((w) => w.resolve === done);
          if (i >= 0) {
            this.#waiters.splice(i, 1);
            clearTimeout(timer);
            reject(new Error(`Server exited before logging ${re}. Log:\n${this.log()}`));
          }
        }, 100);
      });
    });
  }

  /** The log so far. */
  log(): string {
    return this.lines.join("\n");
  }

  /** The exit status, once it exits. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Waits for the process to exit by itself (and for the end of its output). */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.#child.status;
    await this.#done;
    return status;
  }

  /** Sends a signal and waits for the exit (and the end of its output). */
  async kill(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
    const status = await this.#child.status;
    await this.#done;
    return status;
  }

  /** Kills the process if it still runs. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill("SIGKILL");
  }
}
