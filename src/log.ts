/**
 * Server log lines: `2026-11-25 11:07:33.123: I message`, the level letter as glog writes it
 * (I, W, E), info to stdout and the rest to stderr.
 *
 * @module
 */
/** Severity of a log line. */
export type LogLevel = "info" | "warning" | "error";

/** Receives one log line; the wording follows TF Serving's own log lines. */
export type LogFn = (level: LogLevel, message: string) => void;

const LETTER: Record<LogLevel, string> = { info: "I", warning: "W", error: "E" };

function stamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${
      p(d.getUTCMilliseconds(), 3)
    }`;
}

/** Formats one line. */
export function formatLogLine(level: LogLevel, message: string, now = new Date()): string {
  return `${stamp(now)}: ${LETTER[level]} ${message}`;
}

/** A LogFn writing timestamped lines to the console. */
export const serverLog: LogFn = (level, message) => {
  const line = formatLogLine(level, message);
  if (level === "info") console.log(line);
  else console.error(line);
};

/** A LogFn that drops everything (for tests and benchmarks). */
export const silentLog: LogFn = () => {};
