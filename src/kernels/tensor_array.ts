/**
 * TF1 TensorArrays (`tf.TensorArray` in graph mode, `tf.map_fn`, dynamic RNNs):
 * `TensorArrayV3` and its Write/Read/Gather/Scatter/Concat/Split/Size/Close ops (gradients are
 * not supported), following `core/kernels/tensor_array.h` and `tensor_array_ops.cc`.
 *
 * Every run of a `TensorArrayV3` node makes a new TensorArray and returns it as a DT_RESOURCE
 * scalar handle, plus the float `flow` scalar that orders the ops using it. The other ops take
 * the handle and a flow input and return the flow unchanged: all state is in the TensorArray
 * object, so the ops behave the same inside a while loop (one write per iteration) as outside.
 * Element rules are TensorFlow's: fixed size unless `dynamic_size`; each index written once;
 * reads of a never-written index give zeros if the element shape is fully known; with
 * `clear_after_read` (the default) an element can be read only once; an element read cannot
 * be written again.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { type Resource, type Shape, shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { checkedLength } from "./sizes.ts";
import {
  compatible,
  concatRows,
  fullyDefined,
  type PartialShape,
  partialString,
  sameShape,
  sliceRow,
  stackTensors,
} from "./stack.ts";

/** One slot of a TensorArray (TensorAndState). */
interface Slot {
  tensor?: Tensor;
  shape?: Shape;
  written: boolean;
  read: boolean;
  cleared: boolean;
}

let counter = 0;

/** A TensorArray resource. */
export class TensorArray implements Resource {
  /** One slot per element, made on first use (a reserved array costs one pointer each). */
  readonly slots: (Slot | undefined)[];
  closed = false;

  constructor(
    /** `_tensor_arrays` + the unique name, as TensorFlow keys it. */
    readonly key: string,
    /** The unique name (`<tensor_array_name>_<n>`), for messages. */
    readonly name: string,
    readonly dtype: DataType,
    size: number,
    public elementShape: PartialShape,
    readonly identicalShapes: boolean,
    readonly dynamicSize: boolean,
    readonly clearAfterRead: boolean,
  ) {
    this.slots = new Array<Slot | undefined>(size).fill(undefined);
  }

  private slot(index: number): Slot {
    return this.slots[index] ??= { written: false, read: false, cleared: false };
  }

  private fail(message: string): ServingError {
    return invalidArgument(`TensorArray ${this.name}: ${message}`);
  }

  checkOpen(): void {
    if (this.closed) throw invalidArgument(`TensorArray ${this.name} has already been closed.`);
  }

  /** LockedWriteOrAggregate without aggregation. */
  write(index: number, value: Tensor): void {
    this.checkOpen();
    if (index < 0 || (!this.dynamicSize && index >= this.slots.length)) {
      throw this.fail(
        `Tried to write to index ${index} but array is not resizeable and size is: ${this.slots.length}`,
      );
    }
    if (index >= this.slots.length) {
      checkedLength(index + 1, "TensorArray size");
      while (this.slots.length <= index) this.slots.push(undefined);
    }
    const t = this.slot(index);
    if (value.dtype !== this.dtype) {
      throw this.fail(
        `Could not write to TensorArray index ${index} because the value dtype is ${
          dtypeName(value.dtype)
        } but TensorArray dtype is ${dtypeName(this.dtype)}.`,
      );
    }
    if (!compatible(this.elementShape, value.shape)) {
      throw this.fail(
        `Could not write to TensorArray index ${index} because the value shape is ${
          shapeString(value.shape)
        } which is incompatible with the TensorArray's inferred element shape: ${
          partialString(this.elementShape)
        } (consider setting infer_shape=False).`,
      );
    } else if (this.identicalShapes && !fullyDefined(this.elementShape)) {
      this.elementShape = [...value.shape];
    }
    if (t.read) {
      throw this.fail(
        `Could not write to TensorArray index ${index} because it has already been read.`,
      );
    }
    if (t.written) {
      throw this.fail(
        `Could not write to TensorArray index ${index} because it has already been written to.`,
      );
    }
    t.tensor = value;
    t.shape = value.shape;
    t.written = true;
  }

  /** LockedRead (not a gradient array). */
  read(index: number): Tensor {
    this.checkOpen();
    if (index < 0 || index >= this.slots.length) {
      throw invalidArgument(
        `Tried to read from index ${index} but array size is: ${this.slots.length}`,
      );
    }
    const t = this.slot(index);
    if (!t.written) {
      if (!fullyDefined(this.elementShape)) {
        throw this.fail(
          `Could not read from TensorArray index ${index}.  Furthermore, the element shape is ` +
            `not fully defined: ${
              partialString(this.elementShape)
            }.  It is possible you are working with a resizeable TensorArray and stop_gradients ` +
            `is not allowing the gradients to be written.  If you set the full element_shape ` +
            `property on the forward TensorArray, the proper all-zeros tensor will be returned ` +
            `instead of incurring this error.`,
        );
      }
      t.shape = this.elementShape;
      t.written = true;
    }
    if (t.cleared) {
      throw this.fail(
        `Could not read index ${index} twice because it was cleared after a previous read ` +
          `(perhaps try setting clear_after_read = false?).`,
      );
    }
    const value = t.tensor ?? Tensor.zeros(this.dtype, t.shape!);
    if (this.clearAfterRead) {
      t.tensor = undefined;
      t.cleared = true;
    } else t.tensor = value;
    t.read = true;
    return value;
  }
}

function arrayOf(t: Tensor, op: string): TensorArray {
  const r = t.dtype === DataType.DT_RESOURCE ? (t.data as unknown[])[0] : undefined;
  if (!(r instanceof TensorArray)) {
    throw invalidArgument(`${op} expects a TensorArray handle as its first input`);
  }
  return r;
}

function scalarIndex(t: Tensor): number {
  if (t.rank !== 0) {
    throw invalidArgument(
      `TensorArray index must be scalar, but had shape: ${shapeString(t.shape)}`,
    );
  }
  return toIntArray(t, "index")[0];
}

function vectorIndices(t: Tensor): number[] {
  if (t.rank !== 1) {
    throw invalidArgument(
      `Expected indices to be a vector, but received shape: ${shapeString(t.shape)}`,
    );
  }
  return toIntArray(t, "indices");
}

function checkRequested(ta: TensorArray, dtype: DataType): void {
  if (ta.dtype !== dtype) {
    throw invalidArgument(
      `TensorArray dtype is ${dtypeName(ta.dtype)} but Op requested dtype ${dtypeName(dtype)}.`,
    );
  }
}

function checkWritten(ta: TensorArray, value: Tensor): void {
  if (value.dtype !== ta.dtype) {
    throw invalidArgument(
      `TensorArray dtype is ${dtypeName(ta.dtype)} but Op is trying to write dtype ${
        dtypeName(value.dtype)
      }.`,
    );
  }
}

/** An optional shape attr (missing = unknown rank). */
function shapeAttr(ctx: KernelContext, name: string): PartialShape {
  return ctx.attr.has(name) ? ctx.attr.shape(name) : undefined;
}

/** Reads `indices` of `ta` and stacks them (TensorArrayGather/Pack). */
function gather(ta: TensorArray, indices: number[], elementShape: PartialShape): Tensor {
  ta.checkOpen();
  if (indices.length === 0) {
    if (!fullyDefined(elementShape)) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `TensorArray has size zero, but element shape ${
          partialString(elementShape)
        } is not fully defined. Currently only static shapes are supported when packing ` +
          `zero-size TensorArrays.`,
      );
    }
    return Tensor.zeros(ta.dtype, [0, ...elementShape]);
  }
  const values = indices.map((i) => ta.read(i));
  const first = values[0].shape;
  if (!compatible(elementShape, first)) {
    throw invalidArgument(
      `TensorArray was passed element_shape ${
        partialString(elementShape)
      } which does not match the Tensor at index 0: ${shapeString(first)}`,
    );
  }
  for (let i = 1; i < values.length; i++) {
    if (!sameShape(first, values[i].shape)) {
      throw invalidArgument(
        `TensorArray has inconsistent shapes.  Index 0 has shape: ${
          shapeString(first)
        } but index ${i} has shape: ${shapeString(values[i].shape)}`,
      );
    }
  }
  return stackTensors(ta.dtype, first, values);
}

const ZERO_FLOW = Tensor.scalar(DataType.DT_FLOAT, 0);

/** TensorArray kernels. */
export const tensorArrayKernels: Kernel[] = [
  {
    op: "TensorArrayV3",
    compile(ctx) {
      const dtype = ctx.attr.type("dtype");
      const elementShape = shapeAttr(ctx, "element_shape");
      const dynamicSize = ctx.attr.bool("dynamic_size", false);
      const clearAfterRead = ctx.attr.bool("clear_after_read", true);
      const identical = ctx.attr.bool("identical_element_shapes", false);
      const baseName = ctx.attr.string("tensor_array_name", "");
      return ([sizeT]) => {
        if (sizeT.rank !== 0) {
          throw invalidArgument(
            `TensorArray size must be scalar, but had shape: ${shapeString(sizeT.shape)}`,
          );
        }
        const size = toIntArray(sizeT, "size")[0];
        if (size < 0) throw invalidArgument("Size should be >= 0.");
        checkedLength(size, "TensorArray size");
        const name = `${baseName}_${counter++}`;
        const ta = new TensorArray(
          `_tensor_arrays${name}`,
          name,
          dtype,
          size,
          elementShape,
          identical,
          dynamicSize,
          clearAfterRead,
        );
        return [new Tensor(DataType.DT_RESOURCE, [], [ta]), ZERO_FLOW];
      };
    },
  },
  {
    op: "TensorArrayWriteV3",
    compile: (ctx) => ([h, indexT, value, flow]) => {
      const index = scalarIndex(indexT);
      const ta = arrayOf(h, ctx.op);
      checkWritten(ta, value);
      ta.write(index, value);
      return [flow];
    },
  },
  {
    op: "TensorArrayReadV3",
    compile(ctx) {
      const dtype = ctx.attr.type("dtype");
      return ([h, indexT]) => {
        const index = scalarIndex(indexT);
        const ta = arrayOf(h, ctx.op);
        checkRequested(ta, dtype);
        return [ta.read(index)];
      };
    },
  },
  {
    op: "TensorArrayGatherV3",
    compile(ctx) {
      const dtype = ctx.attr.type("dtype");
      const elementShape = shapeAttr(ctx, "element_shape");
      return ([h, indicesT]) => {
        const ta = arrayOf(h, ctx.op);
        checkRequested(ta, dtype);
        return [gather(ta, vectorIndices(indicesT), elementShape)];
      };
    },
  },
  {
    op: "TensorArrayScatterV3",
    compile: (ctx) => ([h, indicesT, value, flow]) => {
      const ta = arrayOf(h, ctx.op);
      ta.checkOpen();
      if (value.rank === 0) {
        throw invalidArgument(
          `Input value for unpack must be at least a vector but received shape: ${
            shapeString(value.shape)
          }`,
        );
      }
      const indices = vectorIndices(indicesT);
      if (indices.length !== value.shape[0]) {
        throw invalidArgument(
          `Expected len(indices) == values.shape[0], but saw: ${indices.length} vs. ${
            value.shape[0]
          }`,
        );
      }
      checkWritten(ta, value);
      const maxIndex = indices.length === 0 ? -1 : Math.max(...indices);
      let size = ta.slots.length;
      if (ta.dynamicSize && size < maxIndex + 1) size = maxIndex + 1;
      if (!(maxIndex < size)) {
        throw invalidArgument(
          `Max scatter index must be < array size (${maxIndex} vs. ${size})`,
        );
      }
      for (let i = 0; i < indices.length; i++) ta.write(indices[i], sliceRow(value, i));
      return [flow];
    },
  },
  {
    op: "TensorArraySizeV3",
    compile: (ctx) => ([h]) => {
      const ta = arrayOf(h, ctx.op);
      ta.checkOpen();
      return [Tensor.scalar(DataType.DT_INT32, ta.slots.length)];
    },
  },
  {
    op: "TensorArrayConcatV3",
    compile(ctx) {
      const dtype = ctx.attr.type("dtype");
      const except0 = shapeAttr(ctx, "element_shape_except0");
      return ([h]) => {
        const ta = arrayOf(h, ctx.op);
        checkRequested(ta, dtype);
        ta.checkOpen();
        const n = ta.slots.length;
        if (n === 0) {
          if (!fullyDefined(except0)) {
            throw new ServingError(
              Code.UNIMPLEMENTED,
              `TensorArray has size zero, but element_shape_except0 ${
                partialString(except0)
              } is not fully defined. Currently only static shapes are supported when ` +
                `concatenating zero-size TensorArrays.`,
            );
          }
          return [Tensor.zeros(dtype, [0, ...except0]), Tensor.int64([], [0])];
        }
        const values = Array.from({ length: n }, (_, i) => ta.read(i));
        const lengths: number[] = [];
        const rest0 = values[0].shape.slice(1);
        for (let i = 0; i < n; i++) {
          const s = values[i].shape;
          if (s.length === 0) {
            throw invalidArgument(
              `Concat saw a scalar shape at index ${i} but requires at least vectors.  Did you ` +
                `mean to call TensorArray.pack()?`,
            );
          }
          if (!sameShape(s.slice(1), rest0)) {
            throw invalidArgument(
              `TensorArray has inconsistent shapes.  Index 0 has (excepting dimension 0) ` +
                `shape: ${shapeString(rest0)} but index ${i} has (excepting dimension 0) ` +
                `shape: ${shapeString(s.slice(1))}`,
            );
          }
          lengths.push(s[0]);
        }
        return [concatRows(dtype, rest0, values), Tensor.int64(lengths)];
      };
    },
  },
  {
    op: "TensorArraySplitV3",
    compile: (ctx) => ([h, value, lengthsT, flow]) => {
      const ta = arrayOf(h, ctx.op);
      ta.checkOpen();
      if (lengthsT.rank !== 1) {
        throw invalidArgument(
          `Expected lengths to be a vector, received shape: ${shapeString(lengthsT.shape)}`,
        );
      }
      const lengths = toIntArray(lengthsT, "lengths");
      if (value.rank === 0) {
        throw invalidArgument(
          `Expected value to be at least a vector, but received shape: ${shapeString(value.shape)}`,
        );
      }
      const total = lengths.reduce((a, b) => a + b, 0);
      if (total !== value.shape[0]) {
        throw invalidArgument(
          `Expected sum of lengths to be equal to values.shape[0], but sum of lengths is ${total} and value's shape is: ${
            shapeString(value.shape)
          }`,
        );
      }
      let size = ta.slots.length;
      if (ta.dynamicSize && size < lengths.length) size = lengths.length;
      if (size !== lengths.length) {
        throw invalidArgument(
          `TensorArray's size is not equal to the size of lengths (${size} vs. ${lengths.length}), and the TensorArray is not marked as dynamically resizeable`,
        );
      }
      checkWritten(ta, value);
      let at = 0;
      for (let i = 0; i < lengths.length; i++) {
        if (lengths[i] < 0) throw invalidArgument(`lengths must be non-negative`);
        ta.write(i, sliceRow(value, at, lengths[i], true));
        at += lengths[i];
      }
      return [flow];
    },
  },
  {
    op: "TensorArrayCloseV3",
    compile: (ctx) => ([h]) => {
      // Closing releases the elements; later use fails as TensorFlow's.
      const ta = arrayOf(h, ctx.op);
      ta.closed = true;
      ta.slots.fill(undefined);
      return [];
    },
  },
];
