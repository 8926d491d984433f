/**
 * Timing for benchmarks: the median over rounds of the mean time per call, each round long
 * enough to swamp the timer's resolution.
 *
 * @module
 */

/** Result of timing one function. */
export interface Timing {
  /** Median microseconds per call. */
  readonly usPerCall: number;
  /** Calls per second from the median. */
  readonly perSecond: number;
}

/**
 * Times `fn`: warms up, sizes a round to about `roundMs`, runs `rounds` rounds and returns the
 * median.
 */
export function time(fn: () => unknown, roundMs = 150, rounds = 7): Timing {
  for (let i = 0; i < 50; i++) fn();
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    const dt = performance.now() - t0;
    if (dt > roundMs / 4) {
      n = Math.max(1, Math.round((n * roundMs) / dt));
      break;
    }
    n *= 4;
  }
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    per.push(((performance.now() - t0) * 1000) / n);
  }
  per.sort((a, b) => a - b);
  const usPerCall = per[rounds >> 1];
  return { usPerCall, perSecond: 1e6 / usPerCall };
}

/** Formats microseconds with sensible precision. */
export function us(v: number): string {
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

/** Prints a markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const lines = [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
  return lines.join("\n");
}
