/**
 * TensorLists: the DT_VARIANT lists behind TF2's `tf.TensorArray` (and the while loops of TF2
 * exports such as TF Object Detection API detectors), following
 * `core/kernels/list_kernels.{h,cc}`: `EmptyTensorList`, `TensorListReserve`,
 * `TensorListFromTensor`, `TensorListSetItem`, `TensorListGetItem`, `TensorListStack`,
 * `TensorListGather`, `TensorListLength`, `TensorListPushBack`, `TensorListPopBack`,
 * `TensorListElementShape`, `TensorListResize`, `TensorListScatterIntoExistingList`,
 * `TensorListConcatV2`, `TensorListSplit`.
 *
 * A list is a value: a DT_VARIANT scalar whose one element is a {@link TensorList}. Ops that
 * "modify" a list return a new TensorList (the array of element references is copied, the
 * elements are shared), so a list seen by one op never changes under another — what TensorFlow
 * gets from copy-on-write. Reserved, never-set elements read as zeros of the element shape when
 * that shape is known (from the list, the op's `element_shape` input, or another element).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { type Resource, shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { checkedLength } from "./sizes.ts";
import {
  compatible,
  concatRows,
  fullyDefined,
  merge,
  type PartialShape,
  partialShapeInput,
  partialShapeTensor,
  partialString,
  sameShape,
  sliceRow,
  stackTensors,
} from "./stack.ts";

/**
 * The value of a DT_VARIANT list tensor. It is kept in the tensor's object storage, like the
 * objects DT_RESOURCE tensors point at, hence the `key` (TensorFlow's variant type name).
 */
export class TensorList implements Resource {
  readonly key = "tensorflow::TensorList";

  constructor(
    readonly elementDtype: DataType,
    readonly elementShape: PartialShape,
    /** The elements; `undefined` for a reserved, never-set element. */
    readonly tensors: readonly (Tensor | undefined)[],
    readonly maxNumElements = -1,
  ) {}

  /** A list like this one with other elements. */
  with(tensors: (Tensor | undefined)[]): TensorList {
    return new TensorList(this.elementDtype, this.elementShape, tensors, this.maxNumElements);
  }
}

function listTensor(l: TensorList): Tensor {
  return new Tensor(DataType.DT_VARIANT, [], [l]);
}

function listOf(t: Tensor, index = 0): TensorList {
  if (t.rank !== 0) {
    throw invalidArgument(`Input list must be a scalar saw: ${shapeString(t.shape)}`);
  }
  const l = t.dtype === DataType.DT_VARIANT ? (t.data as unknown[])[0] : undefined;
  if (!(l instanceof TensorList)) {
    throw invalidArgument(`Expected input ${index} to be a TensorList but saw ${String(l)}`);
  }
  return l;
}

function checkDtype(op: DataType, l: TensorList): void {
  if (op !== l.elementDtype) {
    throw invalidArgument(
      `Invalid data types; op elements ${dtypeName(op)} but list elements ${
        dtypeName(l.elementDtype)
      }`,
    );
  }
}

function scalarInt(t: Tensor, what: string): number {
  if (t.rank !== 0) {
    throw invalidArgument(`${what} must be a scalar but got shape: ${shapeString(t.shape)}`);
  }
  return toIntArray(t, what)[0];
}

/** GetElementShapeFromInput: the list's element shape merged with the op's input. */
function elementShapeFrom(l: TensorList, t: Tensor): PartialShape {
  const m = merge(l.elementShape, partialShapeInput(t));
  if (!m.ok) {
    throw invalidArgument(
      `Incompatible shapes during merge: ${partialString(l.elementShape)} vs. ${
        partialString(partialShapeInput(t))
      }`,
    );
  }
  return m.shape;
}

/** Merges the shape of every set element into `shape` (to give unset elements a shape). */
function inferFromElements(l: TensorList, shape: PartialShape): PartialShape {
  let s = shape;
  for (const t of l.tensors) {
    if (t === undefined) continue;
    const m = merge(s, t.shape);
    if (!m.ok) {
      throw invalidArgument(
        `Incompatible shapes during merge: ${partialString(s)} vs. ${shapeString(t.shape)}`,
      );
    }
    s = m.shape;
  }
  return s;
}

function elementDtype(ctx: KernelContext): DataType {
  return ctx.attr.type("element_dtype");
}

/** Stacks the elements at `indices` (unset ones as zeros of the resolved shape). */
function stackAt(l: TensorList, indices: number[], shape: PartialShape, op: string): Tensor {
  let s = shape;
  if (!fullyDefined(s)) s = inferFromElements(l, s);
  if (!fullyDefined(s)) {
    throw invalidArgument(
      indices.length === 0
        ? `Tried to stack elements of an empty list with non-fully-defined element_shape: ${
          partialString(shape)
        }`
        : `Tried to stack list which only contains uninitialized tensors and has a ` +
          `non-fully-defined element_shape: ${partialString(s)}`,
    );
  }
  let zeros: Tensor | undefined;
  const items = indices.map((i) => {
    if (i < 0 || i >= l.tensors.length) {
      throw invalidArgument(
        `Trying to access element ${i} in a list with ${l.tensors.length} elements.`,
      );
    }
    const t = l.tensors[i];
    if (t === undefined) return (zeros ??= Tensor.zeros(l.elementDtype, s as number[]));
    if (!sameShape(t.shape, s as number[])) {
      throw invalidArgument(
        `${op}: Incompatible shapes during merge: ${partialString(s)} vs. ${shapeString(t.shape)}`,
      );
    }
    return t;
  });
  return stackTensors(l.elementDtype, s, items);
}

function newList(ctx: KernelContext, shapeT: Tensor, size: number, max = -1): Tensor {
  checkedLength(size, `${ctx.op} size`);
  return listTensor(
    new TensorList(
      elementDtype(ctx),
      partialShapeInput(shapeT),
      new Array<Tensor | undefined>(size).fill(undefined),
      max,
    ),
  );
}

/** TensorList kernels. */
export const tensorListKernels: Kernel[] = [
  {
    op: "EmptyTensorList",
    compile: (ctx) => ([shapeT, maxT]) => {
      if (maxT.rank !== 0) {
        throw invalidArgument(
          `max_num_elements expected to be a scalar but got shape: ${shapeString(maxT.shape)}`,
        );
      }
      return [newList(ctx, shapeT, 0, toIntArray(maxT, "max_num_elements")[0])];
    },
  },
  {
    op: "TensorListReserve",
    compile: (ctx) => ([shapeT, numT]) => {
      const n = scalarInt(numT, "num_elements");
      if (n < 0) {
        throw invalidArgument(
          `The num_elements to reserve must be a non negative number, but got ${n}`,
        );
      }
      return [newList(ctx, shapeT, n)];
    },
  },
  {
    op: "TensorListFromTensor",
    compile: (ctx) => ([t, shapeT]) => {
      const dtype = elementDtype(ctx);
      if (t.dtype !== dtype) {
        throw invalidArgument(
          `Invalid data types; op elements ${dtypeName(dtype)} but list elements ${
            dtypeName(t.dtype)
          }`,
        );
      }
      if (t.rank < 1) {
        throw invalidArgument(`Tensor must be at least a vector, but saw shape: []`);
      }
      const shape = partialShapeInput(shapeT);
      const rowShape = t.shape.slice(1);
      if (!compatible(shape, rowShape)) {
        throw invalidArgument(
          `Specified a list with shape ${partialString(shape)} from a tensor with shape ${
            shapeString(t.shape)
          }`,
        );
      }
      const items = Array.from({ length: t.shape[0] }, (_, i) => sliceRow(t, i));
      return [listTensor(new TensorList(dtype, shape, items))];
    },
  },
  {
    op: "TensorListSetItem",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      const resize = ctx.attr.bool("resize_if_index_out_of_bounds", false);
      return ([h, indexT, item]) => {
        const l = listOf(h);
        checkDtype(dtype, l);
        if (item.dtype !== l.elementDtype) {
          throw invalidArgument(
            `Invalid data types; op elements ${dtypeName(item.dtype)} but list elements ${
              dtypeName(l.elementDtype)
            }`,
          );
        }
        const index = scalarInt(indexT, "index");
        const tensors = l.tensors.slice();
        if (resize && index >= tensors.length) {
          checkedLength(index + 1, "TensorList size");
          while (tensors.length <= index) tensors.push(undefined);
        }
        if (index < 0 || index >= tensors.length) {
          throw invalidArgument(
            `Trying to modify element ${index} in a list with ${l.tensors.length} elements.`,
          );
        }
        if (!compatible(l.elementShape, item.shape)) {
          throw invalidArgument(
            `Tried to set a tensor with incompatible shape at a list index. Item element ` +
              `shape: ${shapeString(item.shape)} list shape: ${partialString(l.elementShape)}`,
          );
        }
        tensors[index] = item;
        return [listTensor(l.with(tensors))];
      };
    },
  },
  {
    op: "TensorListGetItem",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      return ([h, indexT, shapeT]) => {
        const l = listOf(h);
        checkDtype(dtype, l);
        const index = scalarInt(indexT, "index");
        if (index < 0 || index >= l.tensors.length) {
          throw invalidArgument(
            `Trying to access element ${index} in a list with ${l.tensors.length} elements.`,
          );
        }
        const t = l.tensors[index];
        if (t !== undefined) return [t];
        let s = elementShapeFrom(l, shapeT);
        if (!fullyDefined(s)) s = inferFromElements(l, s);
        if (!fullyDefined(s)) {
          throw invalidArgument(
            `Trying to read an uninitialized tensor but element_shape is not fully defined: ${
              partialString(s)
            } and no list element is set.`,
          );
        }
        return [Tensor.zeros(dtype, s)];
      };
    },
  },
  {
    op: "TensorListStack",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      const numElements = ctx.attr.int("num_elements", -1);
      return ([h, shapeT]) => {
        const l = listOf(h);
        checkDtype(dtype, l);
        if (numElements !== -1 && l.tensors.length !== numElements) {
          throw invalidArgument(
            `Operation expected a list with ${numElements} elements but got a list with ${l.tensors.length} elements.`,
          );
        }
        const indices = Array.from({ length: l.tensors.length }, (_, i) => i);
        return [stackAt(l, indices, elementShapeFrom(l, shapeT), ctx.op)];
      };
    },
  },
  {
    op: "TensorListGather",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      return ([h, indicesT, shapeT]) => {
        const l = listOf(h);
        checkDtype(dtype, l);
        if (indicesT.rank !== 1) {
          throw invalidArgument(
            `Expected indices to be a vector, but received shape: ${shapeString(indicesT.shape)}`,
          );
        }
        return [stackAt(l, toIntArray(indicesT, "indices"), elementShapeFrom(l, shapeT), ctx.op)];
      };
    },
  },
  {
    op: "TensorListLength",
    compile: () => ([h]) => [Tensor.scalar(DataType.DT_INT32, listOf(h).tensors.length)],
  },
  {
    op: "TensorListPushBack",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      return ([h, item]) => {
        const l = listOf(h);
        if (dtype !== item.dtype) {
          throw invalidArgument(
            `Invalid data types; list elements ${dtypeName(l.elementDtype)} but tried to ` +
              `append ${dtypeName(item.dtype)}`,
          );
        }
        if (!compatible(l.elementShape, item.shape)) {
          throw invalidArgument(
            `Tried to append a tensor with incompatible shape to a list. Op element shape: ${
              shapeString(item.shape)
            } list shape: ${partialString(l.elementShape)}`,
          );
        }
        checkDtype(dtype, l);
        if (l.maxNumElements !== -1 && l.tensors.length >= l.maxNumElements) {
          throw invalidArgument(
            `Tried to push item into a full list list size: ${l.tensors.length} max_num_elements: ${l.maxNumElements}`,
          );
        }
        checkedLength(l.tensors.length + 1, "TensorList size");
        return [listTensor(l.with([...l.tensors, item]))];
      };
    },
  },
  {
    op: "TensorListPopBack",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      return ([h, shapeT]) => {
        const l = listOf(h);
        checkDtype(dtype, l);
        if (l.tensors.length === 0) throw invalidArgument("Trying to pop from an empty list.");
        let t = l.tensors[l.tensors.length - 1];
        if (t === undefined) {
          const s = elementShapeFrom(l, shapeT);
          if (!fullyDefined(s)) {
            throw invalidArgument(
              `Trying to read an uninitialized tensor but element_shape is not fully defined.${
                partialString(s)
              }`,
            );
          }
          t = Tensor.zeros(dtype, s);
        }
        return [listTensor(l.with(l.tensors.slice(0, -1))), t];
      };
    },
  },
  {
    op: "TensorListElementShape",
    compile(ctx) {
      const type = ctx.attr.type("shape_type", DataType.DT_INT32);
      if (type !== DataType.DT_INT32 && type !== DataType.DT_INT64) {
        throw invalidArgument(`shape_type must be int32 or int64, got ${dtypeName(type)}`);
      }
      return ([h]) => [partialShapeTensor(listOf(h).elementShape, type)];
    },
  },
  {
    op: "TensorListResize",
    compile: () => ([h, sizeT]) => {
      const l = listOf(h);
      const size = scalarInt(sizeT, "size");
      if (size < 0) {
        throw invalidArgument(`TensorListSlice expects size to be non-negative. Got: ${size}`);
      }
      checkedLength(size, "TensorList size");
      const tensors = l.tensors.slice(0, size);
      while (tensors.length < size) tensors.push(undefined);
      return [listTensor(l.with(tensors))];
    },
  },
  {
    op: "TensorListScatterIntoExistingList",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      return ([h, t, indicesT]) => {
        const l = listOf(h);
        checkDtype(dtype, l);
        if (t.dtype !== dtype) {
          throw invalidArgument(
            `Invalid data types; op elements ${dtypeName(t.dtype)} but list elements ${
              dtypeName(dtype)
            }`,
          );
        }
        if (t.rank < 1) {
          throw invalidArgument(`Tensor must be at least a vector, but saw shape: []`);
        }
        const indices = toIntArray(indicesT, "indices");
        if (indices.length !== t.shape[0]) {
          throw invalidArgument(
            `Expected len(indices) == tensor.shape[0], but saw: ${indices.length} vs. ${
              t.shape[0]
            }`,
          );
        }
        const tensors = l.tensors.slice();
        const max = indices.length === 0 ? -1 : Math.max(...indices);
        if (max >= tensors.length) {
          checkedLength(max + 1, "TensorList size");
          while (tensors.length <= max) tensors.push(undefined);
        }
        for (let i = 0; i < indices.length; i++) {
          if (indices[i] < 0) {
            throw invalidArgument(`Indices for TensorListScatter must all be non-negative.`);
          }
          const row = sliceRow(t, i);
          if (!compatible(l.elementShape, row.shape)) {
            throw invalidArgument(
              `Tried to scatter a tensor with incompatible shape: ${
                shapeString(row.shape)
              } list shape: ${partialString(l.elementShape)}`,
            );
          }
          tensors[indices[i]] = row;
        }
        return [listTensor(l.with(tensors))];
      };
    },
  },
  {
    op: "TensorListConcatV2",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      return ([h, shapeT, leadingT]) => {
        const l = listOf(h);
        checkDtype(dtype, l);
        const shape = elementShapeFrom(l, shapeT);
        if (shape !== undefined && shape.length === 0) {
          throw invalidArgument(
            "Concat requires elements to be at least vectors, found scalars instead.",
          );
        }
        let rest: PartialShape = shape === undefined ? undefined : shape.slice(1);
        for (const t of l.tensors) {
          if (t === undefined) continue;
          if (t.rank === 0) {
            throw invalidArgument(
              `Concat saw a scalar shape at index ${
                l.tensors.indexOf(t)
              } but requires at least vectors.`,
            );
          }
          const m = merge(rest, t.shape.slice(1));
          if (!m.ok) {
            throw invalidArgument(
              `Incompatible shapes during merge: ${partialString(rest)} vs. ${
                shapeString(t.shape.slice(1))
              }`,
            );
          }
          rest = m.shape;
        }
        if (!fullyDefined(rest)) {
          throw invalidArgument(
            `All except the first dimension must be fully defined when concating an empty ` +
              `tensor list. element_shape: ${partialString(shape)}`,
          );
        }
        const leading = leadingT.size > 0 ? toIntArray(leadingT, "leading_dims") : [];
        const first = shape === undefined ? -1 : shape[0];
        const items = l.tensors.map((t, i) => {
          if (t !== undefined) {
            if (first >= 0 && t.shape[0] !== first) {
              throw invalidArgument(
                `First entry of element_shape input does not match the first dim of list ` +
                  `element at index: ${i} Expected: ${first} Actual: ${t.shape[0]}`,
              );
            }
            return t;
          }
          const d0 = first >= 0 ? first : leading[i];
          if (d0 === undefined || d0 < 0) {
            throw invalidArgument(
              `Trying to concat list with uninitialized tensors but element_shape_except_first_dim ` +
                `is not fully defined and leading_dims is not given for index ${i}`,
            );
          }
          return Tensor.zeros(dtype, [d0, ...(rest as number[])]);
        });
        return [
          concatRows(dtype, rest as number[], items),
          Tensor.int64(items.map((t) => t.shape[0])),
        ];
      };
    },
  },
  {
    op: "TensorListSplit",
    compile(ctx) {
      const dtype = elementDtype(ctx);
      return ([t, shapeT, lengthsT]) => {
        if (t.dtype !== dtype) {
          throw invalidArgument(
            `Invalid data types; op elements ${dtypeName(dtype)} but list elements ${
              dtypeName(t.dtype)
            }`,
          );
        }
        if (t.rank < 1) {
          throw invalidArgument(
            `Tensor must be at least a vector, but saw shape: ${shapeString(t.shape)}`,
          );
        }
        const shape = partialShapeInput(shapeT);
        if (shape !== undefined && !compatible(shape.slice(1), t.shape.slice(1))) {
          throw invalidArgument(
            `Tensor shape ${shapeString(t.shape)} is not compatible with element_shape ${
              partialString(shape)
            }`,
          );
        }
        if (lengthsT.rank !== 1) {
          throw invalidArgument(
            `Expected lengths to be a vector, received shape: ${shapeString(lengthsT.shape)}`,
          );
        }
        const lengths = toIntArray(lengthsT, "lengths");
        let at = 0;
        const items: Tensor[] = [];
        for (const n of lengths) {
          if (n < 0 || at + n > t.shape[0]) {
            throw invalidArgument(
              `Invalid length ${n}: the lengths must be non-negative and sum to at most ${
                t.shape[0]
              }`,
            );
          }
          items.push(sliceRow(t, at, n, true));
          at += n;
        }
        if (at !== t.shape[0]) {
          throw invalidArgument(
            `Unused values in tensor. Length of tensor: ${t.shape[0]} Values used: ${at}`,
          );
        }
        return [listTensor(new TensorList(dtype, shape, items))];
      };
    },
  },
];
