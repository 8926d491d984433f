/**
 * Typed getters over a node's attrs, so kernels never read raw AttrValue.
 *
 * @module
 */
import type { AttrValue } from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { Code, ServingError } from "../errors.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { partialShapeFromProto, tensorFromProto } from "../tensor/tensor_proto.ts";

const decoder = new TextDecoder();

/** A function reference held in an attr: its name and the attrs it is instantiated with. */
export interface FuncAttr {
  readonly name: string;
  readonly attr: Readonly<Record<string, AttrValue>>;
}

type AttrOf<K> = Extract<AttrValue["value"], { case: K }> extends { value: infer V } ? V : never;

/**
 * Typed access to the attrs of one node. A missing attr with no default, or one of the wrong
 * kind, fails with INVALID_ARGUMENT naming the node and the attr.
 */
export class Attrs {
  /**
   * @param node the node name, for messages
   * @param values the node's attr map
   */
  constructor(readonly node: string, readonly values: Readonly<Record<string, AttrValue>>) {}

  /** True if the attr is present. */
  has(name: string): boolean {
    return this.values[name] !== undefined;
  }

  private get<K extends NonNullable<AttrValue["value"]["case"]>>(
    name: string,
    kind: K,
  ): AttrOf<K> | undefined {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (v.value.case !== kind) {
      // An empty list attr is encoded as an AttrValue with an empty `list`; others are errors.
      throw this.error(name, `expected ${kind}, found ${v.value.case ?? "nothing"}`);
    }
    return v.value.value as AttrOf<K>;
  }

  private error(name: string, detail: string): ServingError {
    return new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot read attr "${name}" of node "${this.node}": ${detail}`,
    );
  }

  private required<T>(name: string, v: T | undefined, dflt: T | undefined): T {
    if (v !== undefined) return v;
    if (dflt !== undefined) return dflt;
    throw this.error(name, "missing");
  }

  /** An int attr. */
  int(name: string, dflt?: number): number {
    const v = this.get(name, "i");
    return this.required(name, v === undefined ? undefined : Number(v), dflt);
  }

  /** A float attr. */
  float(name: string, dflt?: number): number {
    return this.required(name, this.get(name, "f"), dflt);
  }

  /** A bool attr. */
  bool(name: string, dflt?: boolean): boolean {
    return this.required(name, this.get(name, "b"), dflt);
  }

  /** A string attr, decoded as UTF-8. */
  string(name: string, dflt?: string): string {
    const v = this.get(name, "s");
    return this.required(name, v === undefined ? undefined : decoder.decode(v), dflt);
  }

  /** A string attr as raw bytes. */
  bytes(name: string, dflt?: Uint8Array): Uint8Array {
    return this.required(name, this.get(name, "s"), dflt);
  }

  /** A type attr. */
  type(name: string, dflt?: DataType): DataType {
    return this.required(name, this.get(name, "type"), dflt);
  }

  /** A shape attr: `undefined` for unknown rank, `-1` for unknown dims. */
  shape(name: string): number[] | undefined {
    const v = this.get(name, "shape");
    if (v === undefined) throw this.error(name, "missing");
    return partialShapeFromProto(v);
  }

  /** A tensor attr, converted. */
  tensor(name: string): Tensor {
    const v = this.get(name, "tensor");
    if (v === undefined) throw this.error(name, "missing");
    try {
      return tensorFromProto(v, `attr "${name}" of node "${this.node}"`);
    } catch (e) {
      throw ServingError.from(e, Code.INVALID_ARGUMENT);
    }
  }

  /** A function attr. */
  func(name: string): FuncAttr {
    const v = this.get(name, "func");
    if (v === undefined) throw this.error(name, "missing");
    return { name: v.name, attr: v.attr };
  }

  private list(name: string) {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (v.value.case === "list") return v.value.value;
    if (v.value.case === undefined) return undefined;
    throw this.error(name, `expected a list, found ${v.value.case}`);
  }

  /** A list(int) attr. */
  ints(name: string, dflt?: number[]): number[] {
    const l = this.list(name);
    return this.required(name, l ? l.i.map(Number) : undefined, dflt);
  }

  /** A list(float) attr. */
  floats(name: string, dflt?: number[]): number[] {
    const l = this.list(name);
    return this.required(name, l ? l.f.slice() : undefined, dflt);
  }

  /** A list(type) attr. */
  types(name: string, dflt?: DataType[]): DataType[] {
    const l = this.list(name);
    return this.required(name, l ? l.type.slice() : undefined, dflt);
  }

  /** A list(string) attr, decoded as UTF-8. */
  strings(name: string, dflt?: string[]): string[] {
    const l = this.list(name);
    return this.required(name, l ? l.s.map((s) => decoder.decode(s)) : undefined, dflt);
  }

  /** A list(shape) attr. */
  shapes(name: string, dflt?: (number[] | undefined)[]): (number[] | undefined)[] {
    const l = this.list(name);
    return this.required(name, l ? l.shape.map(partialShapeFromProto) : undefined, dflt);
  }

  /** Fails unless a type attr is one of `allowed`. */
  typeIn(name: string, allowed: readonly DataType[], dflt?: DataType): DataType {
    const t = this.type(name, dflt);
    if (!allowed.includes(t)) {
      throw this.error(
        name,
        `${dtypeName(t)} is not supported here (supported: ${allowed.map(dtypeName).join(", ")})`,
      );
    }
    return t;
  }
}
