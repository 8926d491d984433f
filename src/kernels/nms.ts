/**
 * Non-maximum suppression: `NonMaxSuppression` (V1), `NonMaxSuppressionV2`–`V5` and
 * `CombinedNonMaxSuppression`, following TensorFlow's CPU kernel
 * (`core/kernels/image/non_max_suppression_op.cc`) step by step, so the selected indices, their
 * order and the (soft-NMS) scores are TensorFlow's:
 *
 * - candidates are boxes whose score is strictly greater than `score_threshold`; they are
 *   visited from the highest score down, ties broken by the lower box index (V1–V5);
 * - a candidate is suppressed when its IoU with a selected box is strictly greater than
 *   `iou_threshold` (`>`, not `≥`); IoU is computed in float32 from the corner-normalised boxes
 *   and is 0 when either box has no area;
 * - V5 with `soft_nms_sigma` > 0 decays the score by exp(−0.5·IoU²/σ) for each selected box
 *   it has not yet been compared with, puts it back in the queue while it stays above the
 *   threshold, and returns the decayed scores;
 * - V4/V5 `pad_to_max_output_size` pads the indices (and scores) with zeros and return the
 *   number of valid outputs;
 * - `CombinedNonMaxSuppression` runs NMS per batch and class with a score-only priority queue
 *   and sorts the per-batch results with a score-only comparison. Equal scores make the order of
 *   both implementation-defined in C++; here the queue and the sort replay libstdc++'s
 *   `std::priority_queue` (push_heap/pop_heap) and `std::sort` (introsort) exactly, so ties come
 *   out in the order TensorFlow's Linux builds produce.
 *
 * Arithmetic is done in the op's type `T`: float32 (every step through `Math.fround`) or half
 * (every step rounded to binary16), as `DoNonMaxSuppressionOp<T>` does.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import { bfloat16BitsToNumber, halfBitsToNumber, numberToHalfBits } from "./elementwise.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

const fround = Math.fround;

/** Rounds to the nearest binary16 value. */
function roundHalf(x: number): number {
  return halfBitsToNumber(numberToHalfBits(x));
}

// ---------------------------------------------------------------------------------------------
// libstdc++'s heap and sort algorithms (bits/stl_heap.h, bits/stl_algo.h), so that elements the
// comparator calls equal are ordered exactly as TensorFlow's C++ does.

type Less<E> = (a: E, b: E) => boolean;

function pushHeapHole<E>(a: E[], hole: number, top: number, value: E, less: Less<E>): void {
  let parent = (hole - 1) >> 1;
  while (hole > top && less(a[parent], value)) {
    a[hole] = a[parent];
    hole = parent;
    parent = (hole - 1) >> 1;
  }
  a[hole] = value;
}

function adjustHeap<E>(a: E[], first: number, hole: number, len: number, value: E, less: Less<E>) {
  // Works on a[first … first + len) with indices relative to `first`.
  const at = (i: number) => a[first + i];
  const top = hole;
  let child = hole;
  while (child < ((len - 1) >> 1)) {
    child = 2 * (child + 1);
    if (less(at(child), at(child - 1))) child--;
    a[first + hole] = at(child);
    hole = child;
  }
  if ((len & 1) === 0 && child === ((len - 2) >> 1)) {
    child = 2 * (child + 1);
    a[first + hole] = at(child - 1);
    hole = child - 1;
  }
  // __push_heap on the sub-range.
  let parent = (hole - 1) >> 1;
  while (hole > top && less(at(parent), value)) {
    a[first + hole] = at(parent);
    hole = parent;
    parent = (hole - 1) >> 1;
  }
  a[first + hole] = value;
}

/** `std::priority_queue` over a vector/deque with comparator `less` (the top is the max). */
class PriorityQueue<E> {
  readonly #a: E[] = [];
  constructor(readonly less: Less<E>) {}

  get empty(): boolean {
    return this.#a.length === 0;
  }

  push(e: E): void {
    this.#a.push(e);
    pushHeapHole(this.#a, this.#a.length - 1, 0, e, this.less);
  }

  top(): E {
    return this.#a[0];
  }

  pop(): void {
    const a = this.#a;
    const n = a.length;
    if (n > 1) {
      const value = a[n - 1];
      a[n - 1] = a[0];
      adjustHeap(a, 0, 0, n - 1, value, this.less);
    }
    a.pop();
  }
}

const THRESHOLD = 16;

/** libstdc++ `std::sort(a.begin(), a.end(), less)`. */
export function stdSort<E>(a: E[], less: Less<E>): void {
  const n = a.length;
  if (n < 2) return;
  introsortLoop(a, 0, n, 2 * Math.floor(Math.log2(n)), less);
  finalInsertionSort(a, 0, n, less);
}

function swap<E>(a: E[], i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

function introsortLoop<E>(a: E[], first: number, last: number, depth: number, less: Less<E>) {
  while (last - first > THRESHOLD) {
    if (depth === 0) {
      heapSortRange(a, first, last, less);
      return;
    }
    depth--;
    const cut = partitionPivot(a, first, last, less);
    introsortLoop(a, cut, last, depth, less);
    last = cut;
  }
}

function partitionPivot<E>(a: E[], first: number, last: number, less: Less<E>): number {
  const mid = first + ((last - first) >> 1);
  // __move_median_to_first(first, first + 1, mid, last - 1)
  const x = first + 1, y = mid, z = last - 1;
  if (less(a[x], a[y])) {
    if (less(a[y], a[z])) swap(a, first, y);
    else if (less(a[x], a[z])) swap(a, first, z);
    else swap(a, first, x);
  } else if (less(a[x], a[z])) swap(a, first, x);
  else if (less(a[y], a[z])) swap(a, first, z);
  else swap(a, first, y);
  // __unguarded_partition(first + 1, last, first)
  let lo = first + 1;
  let hi = last;
  const pivot = a[first];
  for (;;) {
    while (less(a[lo], pivot)) lo++;
    hi--;
    while (less(pivot, a[hi])) hi--;
    if (!(lo < hi)) return lo;
    swap(a, lo, hi);
    lo++;
  }
}

/** std::partial_sort(first, last, last): make_heap then sort_heap. */
function heapSortRange<E>(a: E[], first: number, last: number, less: Less<E>): void {
  const len = last - first;
  if (len >= 2) {
    for (let parent = (len - 2) >> 1;; parent--) {
      adjustHeap(a, first, parent, len, a[first + parent], less);
      if (parent === 0) break;
    }
  }
  for (let end = last; end - first > 1;) {
    end--;
    const value = a[end];
    a[end] = a[first];
    adjustHeap(a, first, 0, end - first, value, less);
  }
}

function linearInsert<E>(a: E[], i: number, less: Less<E>): void {
  const value = a[i];
  let next = i - 1;
  while (less(value, a[next])) {
    a[i] = a[next];
    i = next;
    next--;
  }
  a[i] = value;
}

function insertionSort<E>(a: E[], first: number, last: number, less: Less<E>): void {
  if (first === last) return;
  for (let i = first + 1; i < last; i++) {
    if (less(a[i], a[first])) {
      const value = a[i];
      for (let k = i; k > first; k--) a[k] = a[k - 1];
      a[first] = value;
    } else linearInsert(a, i, less);
  }
}

function finalInsertionSort<E>(a: E[], first: number, last: number, less: Less<E>): void {
  if (last - first > THRESHOLD) {
    insertionSort(a, first, first + THRESHOLD, less);
    for (let i = first + THRESHOLD; i < last; i++) linearInsert(a, i, less);
  } else insertionSort(a, first, last, less);
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** Values of a float-like tensor as numbers (half and bfloat16 decoded exactly). */
function floatValues(t: Tensor): Float32Array | Float64Array {
  const d = t.data as NumericArray;
  if (d instanceof Float32Array || d instanceof Float64Array) return d;
  if (t.dtype === DataType.DT_HALF) return Float32Array.from(d as Uint16Array, halfBitsToNumber);
  if (t.dtype === DataType.DT_BFLOAT16) {
    return Float32Array.from(d as Uint16Array, bfloat16BitsToNumber);
  }
  throw invalidArgument(`Expected a floating-point tensor, got ${dtypeName(t.dtype)}`);
}

/** A 0-D input, as TF checks it (`<name> must be 0-D, got shape [..]`). */
function scalarOf(t: Tensor, name: string, suffix = false): number {
  if (t.rank !== 0) {
    throw invalidArgument(
      `${name} must be 0-D, got shape ${shapeString(t.shape)}` +
        (suffix ? ` (Shape must be rank 0 but is rank ${t.rank})` : ""),
    );
  }
  if (t.dtype === DataType.DT_INT32) return (t.data as Int32Array)[0];
  return floatValues(t)[0];
}

function checkBoxes(boxes: Tensor, scores: Tensor): number {
  if (boxes.rank !== 2) {
    throw invalidArgument(
      `boxes must be 2-D${
        shapeString(boxes.shape)
      } (Shape must be rank 2 but is rank ${boxes.rank})`,
    );
  }
  const n = boxes.shape[0];
  if (boxes.shape[1] !== 4) {
    throw invalidArgument(
      `boxes must have 4 columns (Dimension must be 4 but is ${boxes.shape[1]})`,
    );
  }
  if (scores.rank !== 1) {
    throw invalidArgument(
      `scores must be 1-D${
        shapeString(scores.shape)
      } (Shape must be rank 1 but is rank ${scores.rank})`,
    );
  }
  if (scores.shape[0] !== n) {
    throw invalidArgument(
      `scores has incompatible shape (Dimensions must be equal, but are ${n} and ${
        scores.shape[0]
      })`,
    );
  }
  return n;
}

/** IOU() of non_max_suppression_op.cc, in float32; `i`, `j` are offsets of 4 coordinates. */
function iou(b: ArrayLike<number>, i: number, j: number): number {
  const yminI = Math.min(b[i], b[i + 2]), xminI = Math.min(b[i + 1], b[i + 3]);
  const ymaxI = Math.max(b[i], b[i + 2]), xmaxI = Math.max(b[i + 1], b[i + 3]);
  const yminJ = Math.min(b[j], b[j + 2]), xminJ = Math.min(b[j + 1], b[j + 3]);
  const ymaxJ = Math.max(b[j], b[j + 2]), xmaxJ = Math.max(b[j + 1], b[j + 3]);
  const areaI = fround(fround(ymaxI - yminI) * fround(xmaxI - xminI));
  const areaJ = fround(fround(ymaxJ - yminJ) * fround(xmaxJ - xminJ));
  if (areaI <= 0 || areaJ <= 0) return 0;
  const iy = Math.max(fround(Math.min(ymaxI, ymaxJ) - Math.max(yminI, yminJ)), 0);
  const ix = Math.max(fround(Math.min(xmaxI, xmaxJ) - Math.max(xminI, xminJ)), 0);
  const inter = fround(iy * ix);
  return fround(inter / fround(fround(areaI + areaJ) - inter));
}

// ---------------------------------------------------------------------------------------------
// DoNonMaxSuppressionOp

interface NmsResult {
  selected: Int32Array;
  scores: Float64Array;
  valid: number;
}

interface Candidate {
  box: number;
  score: number;
  suppressBegin: number;
}

function doNms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  outputSize: number,
  iouThreshold: number,
  scoreThreshold: number,
  sigma: number,
  pad: boolean,
  rnd: (x: number) => number,
): NmsResult {
  if (!(outputSize >= 0)) throw invalidArgument("output size must be non-negative");
  if (pad) checkedElements([outputSize], "max_output_size");
  const queue = new PriorityQueue<Candidate>((a, b) =>
    (a.score === b.score && a.box > b.box) || a.score < b.score
  );
  for (let i = 0; i < scores.length; i++) {
    if (scores[i] > scoreThreshold) queue.push({ box: i, score: scores[i], suppressBegin: 0 });
  }
  const soft = sigma > 0;
  const scale = soft ? rnd(-0.5 / sigma) : 0;
  const weight = (sim: number) => {
    const w = rnd(Math.exp(rnd(rnd(scale * sim) * sim)));
    return soft || sim <= iouThreshold ? w : 0;
  };
  const selected: number[] = [];
  const selectedScores: number[] = [];
  while (selected.length < outputSize && !queue.empty) {
    const c = { ...queue.top() };
    const original = c.score;
    queue.pop();
    let hard = false;
    for (let j = selected.length - 1; j >= c.suppressBegin; j--) {
      const sim = rnd(iou(boxes, c.box * 4, selected[j] * 4));
      c.score = rnd(c.score * weight(sim));
      if (!soft && sim > iouThreshold) {
        hard = true;
        break;
      }
      if (c.score <= scoreThreshold) break;
    }
    c.suppressBegin = selected.length;
    if (!hard) {
      if (c.score === original) {
        selected.push(c.box);
        selectedScores.push(c.score);
        continue;
      }
      if (c.score > scoreThreshold) queue.push(c);
    }
  }
  const valid = selected.length;
  const n = pad ? outputSize : valid;
  const outIdx = new Int32Array(n);
  const outScores = new Float64Array(n);
  outIdx.set(selected);
  outScores.set(selectedScores);
  return { selected: outIdx, scores: outScores, valid };
}

/** Reads `T` (float or half) and refuses the rest at load. */
function opType(ctx: KernelContext, name = "T"): DataType {
  const t = ctx.attr.type(name, DataType.DT_FLOAT);
  if (t !== DataType.DT_FLOAT && t !== DataType.DT_HALF) {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `${ctx.op} node "${ctx.name}": attr ${name}=${
        dtypeName(t)
      } is not supported (supported: DT_FLOAT, DT_HALF)`,
    );
  }
  return t;
}

function rounder(t: DataType): (x: number) => number {
  return t === DataType.DT_HALF ? roundHalf : fround;
}

function scoresTensor(t: DataType, values: Float64Array): Tensor {
  if (t === DataType.DT_HALF) {
    return new Tensor(t, [values.length], Uint16Array.from(values, (v) => numberToHalfBits(v)));
  }
  return Tensor.float32(values);
}

function checkIou(v: number): void {
  if (!(v >= 0 && v <= 1)) throw invalidArgument("iou_threshold must be in [0, 1]");
}

/** V2–V5: the shared input parsing; `version` picks the messages and inputs. */
function nmsKernel(op: string, version: 2 | 3 | 4 | 5): Kernel {
  return {
    op,
    compile(ctx) {
      const t = opType(ctx);
      if (version < 5) opType(ctx, "T_threshold");
      const pad = version >= 4 ? ctx.attr.bool("pad_to_max_output_size", false) : false;
      const rnd = rounder(t);
      return (inputs) => {
        const [boxesT, scoresT, maxT, iouT] = inputs;
        const maxOut = scalarOf(maxT, "max_output_size", version === 3);
        const iouThreshold = rnd(scalarOf(iouT, "iou_threshold", version === 3));
        checkIou(iouThreshold);
        const scoreThreshold = version >= 3
          ? rnd(scalarOf(inputs[4], "score_threshold"))
          : -(t === DataType.DT_HALF ? 65504 : 3.4028234663852886e38);
        let sigma = 0;
        if (version === 5) {
          sigma = rnd(scalarOf(inputs[5], "soft_nms_sigma"));
          if (!(sigma >= 0)) throw invalidArgument("soft_nms_sigma_val must be >= 0");
        }
        checkBoxes(boxesT, scoresT);
        const r = doNms(
          floatValues(boxesT),
          floatValues(scoresT),
          maxOut,
          iouThreshold,
          scoreThreshold,
          sigma,
          pad,
          rnd,
        );
        const indices = new Tensor(DataType.DT_INT32, [r.selected.length], r.selected);
        if (version === 5) {
          return [indices, scoresTensor(t, r.scores), Tensor.scalar(DataType.DT_INT32, r.valid)];
        }
        if (version === 4) return [indices, Tensor.scalar(DataType.DT_INT32, r.valid)];
        return [indices];
      };
    },
  };
}

const nmsV1: Kernel = {
  op: "NonMaxSuppression",
  compile(ctx) {
    const iouThreshold = fround(ctx.attr.float("iou_threshold", 0.5));
    return ([boxesT, scoresT, maxT]) => {
      const maxOut = scalarOf(maxT, "max_output_size");
      checkIou(iouThreshold);
      checkBoxes(boxesT, scoresT);
      const r = doNms(
        floatValues(boxesT),
        floatValues(scoresT),
        maxOut,
        iouThreshold,
        -3.4028234663852886e38,
        0,
        false,
        fround,
      );
      return [new Tensor(DataType.DT_INT32, [r.selected.length], r.selected)];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// CombinedNonMaxSuppression

interface ResultCandidate {
  box: number;
  score: number;
  cls: number;
  coord: [number, number, number, number];
}

const combinedNms: Kernel = {
  op: "CombinedNonMaxSuppression",
  compile(ctx) {
    const padPerClass = ctx.attr.bool("pad_per_class", false);
    const clip = ctx.attr.bool("clip_boxes", true);
    return (inputs) => {
      const [boxesT, scoresT, maxPerClassT, maxTotalT, iouT, scoreT] = inputs;
      if (boxesT.rank !== 4) {
        throw invalidArgument(
          `boxes must be 4-D [batch, num_boxes, q, 4], got shape ${shapeString(boxesT.shape)}`,
        );
      }
      if (scoresT.rank !== 3) {
        throw invalidArgument(
          `scores must be 3-D [batch, num_boxes, num_classes], got shape ${
            shapeString(scoresT.shape)
          }`,
        );
      }
      const [batches, numBoxes, q] = boxesT.shape;
      const numClasses = scoresT.shape[2];
      if (q !== 1 && q !== numClasses) {
        throw invalidArgument("third dimension of boxes must be either 1 or num classes");
      }
      if (boxesT.shape[3] !== 4) throw invalidArgument("boxes must have 4 columns");
      if (scoresT.shape[1] !== numBoxes) throw invalidArgument("scores has incompatible shape");
      if (batches !== scoresT.shape[0]) {
        throw invalidArgument("boxes and scores must have same batch size");
      }
      const maxPerClass = scalarOf(maxPerClassT, "max_size_per_class");
      if (!(maxPerClass > 0)) throw invalidArgument("max_size_per_class must be positive");
      const maxTotal = scalarOf(maxTotalT, "max_total_size");
      if (!(maxTotal > 0)) throw invalidArgument("max_total_size must be > 0");
      const iouThreshold = fround(scalarOf(iouT, "iou_threshold"));
      const scoreThreshold = fround(scalarOf(scoreT, "score_threshold"));
      checkIou(iouThreshold);

      const boxes = floatValues(boxesT);
      const scores = floatValues(scoresT);
      const sizePerClass = Math.min(maxPerClass, numBoxes);
      if (sizePerClass * numClasses > 2 ** 31 - 1) {
        throw invalidArgument("size_per_class * num_classes causes overflow");
      }
      const maxTotalSize = Math.min(2 ** 31 - 1, maxPerClass * numClasses);
      const perBatch = padPerClass ? Math.min(maxTotal, maxTotalSize) : maxTotal;
      const n = checkedElements([batches, perBatch, 4], ctx.op);

      const outBoxes = new Float32Array(n);
      const outScores = new Float32Array(batches * perBatch);
      const outClasses = new Float32Array(batches * perBatch);
      const valid = new Int32Array(batches);
      const boxesPerBatch = numBoxes * q * 4;
      const scoresPerBatch = numBoxes * numClasses;
      for (let b = 0; b < batches; b++) {
        const results: ResultCandidate[] = Array.from(
          { length: sizePerClass * numClasses },
          () => ({ box: -1, score: -Infinity, cls: -1, coord: [0, 0, 0, 0] }),
        );
        const bOff = b * boxesPerBatch;
        const sOff = b * scoresPerBatch;
        for (let c = 0; c < numClasses; c++) {
          const queue = new PriorityQueue<{ box: number; score: number }>((x, y) =>
            x.score < y.score
          );
          for (let i = 0; i < numBoxes; i++) {
            const s = scores[sOff + i * numClasses + c];
            if (s > scoreThreshold) queue.push({ box: i, score: s });
          }
          const classBox = q > 1 ? c : 0;
          const selected: number[] = [];
          while (selected.length < sizePerClass && !queue.empty) {
            const next = queue.top();
            queue.pop();
            const ci = bOff + (next.box * q + classBox) * 4;
            let keep = true;
            for (let j = selected.length - 1; j >= 0; j--) {
              if (iou(boxes, ci, bOff + (selected[j] * q + classBox) * 4) > iouThreshold) {
                keep = false;
                break;
              }
            }
            if (keep) {
              results[selected.length + sizePerClass * c] = {
                box: next.box,
                score: next.score,
                cls: c,
                coord: [boxes[ci], boxes[ci + 1], boxes[ci + 2], boxes[ci + 3]],
              };
              selected.push(next.box);
            }
          }
        }
        // SelectResultPerBatch
        stdSort(results, (x, y) => y.score < x.score);
        const count = results.filter((r) => r.box > -1).length;
        const detections = padPerClass ? Math.min(perBatch, count) : Math.min(count, maxTotal);
        valid[b] = detections;
        for (let k = 0; k < detections && k < results.length; k++) {
          const r = results[k];
          const o = b * perBatch + k;
          for (let m = 0; m < 4; m++) {
            outBoxes[o * 4 + m] = clip ? Math.max(Math.min(r.coord[m], 1), 0) : r.coord[m];
          }
          outScores[o] = r.score;
          outClasses[o] = r.cls;
        }
      }
      return [
        new Tensor(DataType.DT_FLOAT, [batches, perBatch, 4], outBoxes),
        new Tensor(DataType.DT_FLOAT, [batches, perBatch], outScores),
        new Tensor(DataType.DT_FLOAT, [batches, perBatch], outClasses),
        new Tensor(DataType.DT_INT32, [batches], valid),
      ];
    };
  },
};

/** Non-max-suppression kernels. */
export const nmsKernels: Kernel[] = [
  nmsV1,
  nmsKernel("NonMaxSuppressionV2", 2),
  nmsKernel("NonMaxSuppressionV3", 3),
  nmsKernel("NonMaxSuppressionV4", 4),
  nmsKernel("NonMaxSuppressionV5", 5),
  combinedNms,
];
