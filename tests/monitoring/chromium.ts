/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven by playwright-core.
 *
 * @module
 */
import fs from "node:fs";
import type { BrowserType } from "playwright-core";

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";
/** Flags for a quiet headless run on a machine with no network. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Imports playwright-core. Its bundle probes `/proc/sys/fs/binfmt_misc/WSLInterop` with
 * `fs.existsSync` when it loads, and Deno answers any access under /proc/sys with NotCapable
 * unless run with --allow-all; the tests run with scoped permissions, so that one probe is
 * answered "no" (this is not WSL) while the module loads, and existsSync is restored after.
 */
export async function importChromium(): Promise<BrowserType> {
  const existsSync = fs.existsSync;
  fs.existsSync = (p: fs.PathLike) => !String(p).startsWith("/proc/sys/") && existsSync(p);
  try {
    return (await import("playwright-core")).chromium;
  } finally {
    fs.existsSync = existsSync;
  }
}

/** True if Chromium is installed. */
export const haveChromium = exists(CHROMIUM);
/** True under CI, where a missing browser fails the test rather than skipping it. */
export const inCI = Deno.env.get("CI") === "true";
