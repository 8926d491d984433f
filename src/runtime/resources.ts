/**
 * The resources of one loaded model: variables and lookup tables, keyed `container/shared_name`
 * as TensorFlow's ResourceMgr keys them. They live as long as the loaded version.
 *
 * @module
 */
import type { ResourceManager } from "../kernels/kernel.ts";
import type { Resource } from "../tensor/tensor.ts";

/** A ResourceManager over a Map. */
export class Resources implements ResourceManager {
  readonly #map = new Map<string, Resource>();

  /** Returns the resource under `key`, creating it with `make` if there is none. */
  lookupOrCreate<R extends Resource>(key: string, make: () => R): R {
    let r = this.#map.get(key);
    if (r === undefined) {
      r = make();
      this.#map.set(key, r);
    }
    return r as R;
  }

  /** Returns the resource under `key`, or undefined. */
  get(key: string): Resource | undefined {
    return this.#map.get(key);
  }

  /** Every resource, by key (the worker pool hands variables to other isolates). */
  entries(): IterableIterator<[string, Resource]> {
    return this.#map.entries();
  }

  /** Number of resources held. */
  get size(): number {
    return this.#map.size;
  }
}
