/**
 * The kernel registry: a flat map from TensorFlow op name to Kernel, filled from the family
 * files. A duplicate registration is a programming error and throws at start-up.
 *
 * @module
 */
import type { Kernel } from "./kernel.ts";

/** A map from op name to kernel. */
export class KernelRegistry {
  readonly #kernels = new Map<string, Kernel>();

  /** @param families kernel lists to register */
  constructor(...families: readonly Kernel[][]) {
    for (const family of families) for (const k of family) this.register(k);
  }

  /** Adds a kernel; throws if the op already has one. */
  register(kernel: Kernel): void {
    if (this.#kernels.has(kernel.op)) {
      throw new Error(`Kernel for op "${kernel.op}" is registered twice`);
    }
    this.#kernels.set(kernel.op, kernel);
  }

  /** The kernel for an op, or undefined. */
  get(op: string): Kernel | undefined {
    return this.#kernels.get(op);
  }

  /** Every registered op name, sorted. */
  ops(): string[] {
    return [...this.#kernels.keys()].sort();
  }
}
