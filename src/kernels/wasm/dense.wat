;; Dense layer kernel with 128-bit SIMD: y = x·W + b for each row of x, optionally followed by a
;; numerically stable softmax per row. Compiled to `dense_wasm.ts` by `scripts/gen_wasm.ts`;
;; the JavaScript side is `dense.ts`, which owns the memory layout described here.
;;
;; Layout (all offsets in bytes, all data float32, little-endian; kp = ceil4(k), m4 = ceil4(m)):
;;   x  n rows of k floats, contiguous (stride k). At least 16 readable bytes must follow the
;;      last row: the k % 4 tail of a row is read as one whole vector and masked.
;;   w  the weights packed in panels, 16-byte aligned. Panel g holds outputs 4g..4g+3; within
;;      it, chunk c (64 bytes) holds for each of the 4 outputs j the weights of inputs
;;      4c..4c+3: float (g·kp/4 + c)·16 + 4j + l is W[input 4c+l, output 4g+j]. Inputs past k
;;      and outputs past m are zero. One pointer walks a panel front to back.
;;   b  the bias, m4 floats (zeros past m).
;;   y  n rows of m floats, contiguous, followed by at least 16 readable bytes. Nothing is
;;      written outside the rows (partial blocks are stored lane by lane).
;;
;; Each output is a dot product of the x row and one packed weight row, accumulated in four
;; float32 lanes (lane l sums the inputs i with i % 4 = l, in order), then the lanes are summed
;; as (l0 + l2) + (l1 + l3), then the bias is added. TensorFlow's CPU MatMul (Eigen) accumulates
;; in float32 as well; the order differs from a sequential loop, so results differ from a
;; float64 loop in the last bits of the logits. Rows go in pairs ($row2: each weight load serves
;; two rows) and an odd last row alone ($row1: each x load serves 4 outputs); both sum in the
;; same order, so a row's result does not depend on the batch it came in.
;;
;; (Measured with V8 in Deno: 8 accumulators for a single row, over two panels or two
;; interleaved chunk sets, ran slower than 4, so $row1 keeps 4.)
(module
  ;; The process's one kernel memory (shared_memory.ts), shared by every isolate's instances:
  ;; packed weights are stored once; each isolate's scratch blocks are its own. 32768 pages
  ;; (2 GiB) at most, so every byte offset is a non-negative i32.
  (import "env" "memory" (memory 1 32768 shared))

  ;; exp of four lanes: Cephes expf (range reduction by ln 2 in two parts, degree-5 polynomial),
  ;; relative error about 1e-7 over the range. The input is clamped to [-104, 88.72]; the power
  ;; of two is applied as two factors so results down in the subnormal range are right and
  ;; exp(x) for x <= -104 (and -inf) is 0. exp(0) is exactly 1. NaN stays NaN (min/max
  ;; propagate it).
  (func $exp4 (param $x v128) (result v128)
    (local $fx v128) (local $r v128) (local $p v128) (local $n v128) (local $n1 v128)
    (local.set $x (f32x4.min
      (f32x4.max (local.get $x) (v128.const f32x4 -104 -104 -104 -104))
      (v128.const f32x4 88.72283 88.72283 88.72283 88.72283)))
    ;; fx = floor(x·log2(e) + 1/2): the power of two nearest to exp(x).
    (local.set $fx (f32x4.floor (f32x4.add
      (f32x4.mul (local.get $x)
        (v128.const f32x4 1.44269504088896341 1.44269504088896341
                          1.44269504088896341 1.44269504088896341))
      (v128.const f32x4 0.5 0.5 0.5 0.5))))
    ;; r = x - fx·ln2, with ln2 split as C1 + C2 so fx·C1 is exact.
    (local.set $r (f32x4.sub
      (f32x4.sub (local.get $x)
        (f32x4.mul (local.get $fx)
          (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
      (f32x4.mul (local.get $fx)
        (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    ;; p = ((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5
    (local.set $p (f32x4.add
      (f32x4.mul (local.get $r)
        (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
      (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    ;; exp(r) ≈ p·r² + r + 1
    (local.set $p (f32x4.add
      (f32x4.add
        (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r)))
        (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    ;; 2^fx as 2^n1 · 2^(n - n1) with n1 = n >> 1: both factors are normal floats for
    ;; n in [-150, 128].
    (local.set $n (i32x4.trunc_sat_f32x4_s (local.get $fx)))
    (local.set $n1 (i32x4.shr_s (local.get $n) (i32.const 1)))
    (f32x4.mul
      (f32x4.mul (local.get $p)
        (i32x4.shl (i32x4.add (local.get $n1) (v128.const i32x4 127 127 127 127))
          (i32.const 23)))
      (i32x4.shl
        (i32x4.add (i32x4.sub (local.get $n) (local.get $n1)) (v128.const i32x4 127 127 127 127))
        (i32.const 23))))

  ;; Lane mask with lanes [0, count) all ones and the others zero, for count in [0, 4].
  (func $mask (param $count i32) (result v128)
    (i32x4.gt_s (i32x4.splat (local.get $count)) (v128.const i32x4 0 1 2 3)))

  ;; Stores lanes [0, count) of $v at $addr, count in [1, 4]; nothing past them is written.
  (func $store (param $addr i32) (param $v v128) (param $count i32)
    (if (i32.ge_u (local.get $count) (i32.const 4))
      (then (v128.store (local.get $addr) (local.get $v)) (return)))
    (if (i32.ge_u (local.get $count) (i32.const 2))
      (then
        (v128.store64_lane 0 (local.get $addr) (local.get $v))
        (if (i32.eq (local.get $count) (i32.const 3))
          (then (v128.store32_lane offset=8 2 (local.get $addr) (local.get $v)))))
      (else (v128.store32_lane 0 (local.get $addr) (local.get $v)))))

  ;; [Σa0, Σa1, Σa2, Σa3]: the four lane sums, as one vector.
  (func $hsum4 (param $a0 v128) (param $a1 v128) (param $a2 v128) (param $a3 v128)
    (result v128)
    (local $u v128) (local $v v128)
    ;; u = [a0₀+a0₂, a0₁+a0₃, a1₀+a1₂, a1₁+a1₃], v likewise for a2, a3
    (local.set $u (f32x4.add
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $a0) (local.get $a1))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
        (local.get $a0) (local.get $a1))))
    (local.set $v (f32x4.add
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $a2) (local.get $a3))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
        (local.get $a2) (local.get $a3))))
    (f32x4.add
      (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $u) (local.get $v))
      (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $u) (local.get $v))))

  ;; One row: y[0, m) = x[0, k)·W + b. Per panel, 4 accumulators (outputs 4g..4g+3); each x
  ;; load serves 4 outputs. The sums run in exactly the order of $row2, so a row's result does
  ;; not depend on whether it was computed alone or in a pair (batch size or position).
  (func $row1 (param $x i32) (param $w i32) (param $b i32) (param $y i32)
    (param $k i32) (param $m i32)
    (local $px i32) (local $pw i32) (local $o i32) (local $end4 i32)
    (local $tail v128) (local $xv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $end4 (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2))))
    (local.set $tail (call $mask (i32.and (local.get $k) (i32.const 3))))
    (local.set $pw (local.get $w))
    (local.set $o (i32.const 0))
    (loop $panels
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (local.set $px (local.get $x))
      (block $done
        (loop $chunks
          (br_if $done (i32.ge_u (local.get $px) (local.get $end4)))
          (local.set $xv (v128.load (local.get $px)))
          (local.set $a0 (f32x4.add (local.get $a0)
            (f32x4.mul (local.get $xv) (v128.load offset=0 (local.get $pw)))))
          (local.set $a1 (f32x4.add (local.get $a1)
            (f32x4.mul (local.get $xv) (v128.load offset=16 (local.get $pw)))))
          (local.set $a2 (f32x4.add (local.get $a2)
            (f32x4.mul (local.get $xv) (v128.load offset=32 (local.get $pw)))))
          (local.set $a3 (f32x4.add (local.get $a3)
            (f32x4.mul (local.get $xv) (v128.load offset=48 (local.get $pw)))))
          (local.set $px (i32.add (local.get $px) (i32.const 16)))
          (local.set $pw (i32.add (local.get $pw) (i32.const 64)))
          (br $chunks)))
      ;; the k % 4 tail: a whole vector read, lanes past k zeroed (the bytes there may be the
      ;; next row, or anything, even NaN; 0·w with w = 0 padding then adds nothing)
      (if (v128.any_true (local.get $tail))
        (then
          (local.set $xv (v128.and (local.get $tail) (v128.load (local.get $px))))
          (local.set $a0 (f32x4.add (local.get $a0)
            (f32x4.mul (local.get $xv) (v128.load offset=0 (local.get $pw)))))
          (local.set $a1 (f32x4.add (local.get $a1)
            (f32x4.mul (local.get $xv) (v128.load offset=16 (local.get $pw)))))
          (local.set $a2 (f32x4.add (local.get $a2)
            (f32x4.mul (local.get $xv) (v128.load offset=32 (local.get $pw)))))
          (local.set $a3 (f32x4.add (local.get $a3)
            (f32x4.mul (local.get $xv) (v128.load offset=48 (local.get $pw)))))
          (local.set $pw (i32.add (local.get $pw) (i32.const 64)))))
      (call $store (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2)))
        (f32x4.add
          (call $hsum4 (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3))
          (v128.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2)))))
        (i32.sub (local.get $m) (local.get $o)))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br_if $panels (i32.lt_u (local.get $o) (local.get $m)))))

  ;; Two rows (x0 and the next, y0 and the next): per panel, 8 accumulators, outputs
  ;; 4g..4g+3 of row 0 (a*) and of row 1 (c*); each weight load serves both rows.
  (func $row2 (param $x i32) (param $w i32) (param $b i32) (param $y i32)
    (param $k i32) (param $m i32)
    (local $px i32) (local $pu i32) (local $pw i32) (local $o i32) (local $end4 i32)
    (local $rowBytes i32)
    (local $tail v128) (local $xv v128) (local $xu v128) (local $wv v128) (local $bv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local.set $rowBytes (i32.shl (local.get $k) (i32.const 2)))
    (local.set $end4 (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2))))
    (local.set $tail (call $mask (i32.and (local.get $k) (i32.const 3))))
    (local.set $pw (local.get $w))
    (local.set $o (i32.const 0))
    (loop $panels
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (local.set $c0 (v128.const i32x4 0 0 0 0))
      (local.set $c1 (v128.const i32x4 0 0 0 0))
      (local.set $c2 (v128.const i32x4 0 0 0 0))
      (local.set $c3 (v128.const i32x4 0 0 0 0))
      (local.set $px (local.get $x))
      (local.set $pu (i32.add (local.get $x) (local.get $rowBytes)))
      (block $done
        (loop $chunks
          (br_if $done (i32.ge_u (local.get $px) (local.get $end4)))
          (local.set $xv (v128.load (local.get $px)))
          (local.set $xu (v128.load (local.get $pu)))
          (local.set $wv (v128.load offset=0 (local.get $pw)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $wv (v128.load offset=16 (local.get $pw)))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $wv (v128.load offset=32 (local.get $pw)))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $wv (v128.load offset=48 (local.get $pw)))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $px (i32.add (local.get $px) (i32.const 16)))
          (local.set $pu (i32.add (local.get $pu) (i32.const 16)))
          (local.set $pw (i32.add (local.get $pw) (i32.const 64)))
          (br $chunks)))
      ;; the k % 4 tail, masked as in $row1
      (if (v128.any_true (local.get $tail))
        (then
          (local.set $xv (v128.and (local.get $tail) (v128.load (local.get $px))))
          (local.set $xu (v128.and (local.get $tail)
            (v128.load (local.get $pu))))
          (local.set $wv (v128.load offset=0 (local.get $pw)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $wv (v128.load offset=16 (local.get $pw)))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $wv (v128.load offset=32 (local.get $pw)))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $wv (v128.load offset=48 (local.get $pw)))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv) (local.get $wv))))
          (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $xu) (local.get $wv))))
          (local.set $pw (i32.add (local.get $pw) (i32.const 64)))))
      (local.set $bv (v128.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2)))))
      (call $store (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2)))
        (f32x4.add
          (call $hsum4 (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3))
          (local.get $bv))
        (i32.sub (local.get $m) (local.get $o)))
      (call $store
        (i32.add (local.get $y) (i32.shl (i32.add (local.get $m) (local.get $o)) (i32.const 2)))
        (f32x4.add
          (call $hsum4 (local.get $c0) (local.get $c1) (local.get $c2) (local.get $c3))
          (local.get $bv))
        (i32.sub (local.get $m) (local.get $o)))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br_if $panels (i32.lt_u (local.get $o) (local.get $m)))))

  ;; Softmax of the m floats at $row, in place: the max is subtracted before exp, then e / sum.
  ;; The partial last block is read whole (up to 12 bytes past the row: the next row or the
  ;; slack) with the extra lanes masked out of the max and the sum, and stored lane by lane.
  (func $softmax (param $row i32) (param $m i32)
    (local $j i32) (local $end i32) (local $count i32) (local $tail v128) (local $max v128)
    (local $mx f32) (local $sum v128) (local $e v128)
    (local.set $end (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 2)))
    (local.set $count (i32.and (local.get $m) (i32.const 3)))
    (local.set $tail (call $mask (local.get $count)))
    ;; the max over whole blocks, then the tail lanes (the others count as -inf)
    (local.set $max (v128.bitselect
      (v128.load (i32.add (local.get $row) (local.get $end)))
      (v128.const f32x4 -inf -inf -inf -inf)
      (local.get $tail)))
    (local.set $j (i32.const 0))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
        (local.set $max (f32x4.max (local.get $max)
          (v128.load (i32.add (local.get $row) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $blocks)))
    (local.set $mx (f32.max
      (f32.max (f32x4.extract_lane 0 (local.get $max)) (f32x4.extract_lane 1 (local.get $max)))
      (f32.max (f32x4.extract_lane 2 (local.get $max)) (f32x4.extract_lane 3 (local.get $max)))))
    (local.set $max (f32x4.splat (local.get $mx)))
    ;; e = exp(v - max), stored and summed
    (local.set $sum (v128.const f32x4 0 0 0 0))
    (local.set $j (i32.const 0))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
        (local.set $e (call $exp4 (f32x4.sub
          (v128.load (i32.add (local.get $row) (local.get $j))) (local.get $max))))
        (v128.store (i32.add (local.get $row) (local.get $j)) (local.get $e))
        (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $blocks)))
    (if (local.get $count)
      (then
        (local.set $e (v128.and (local.get $tail) (call $exp4 (f32x4.sub
          (v128.load (i32.add (local.get $row) (local.get $end))) (local.get $max)))))
        (call $store (i32.add (local.get $row) (local.get $end)) (local.get $e)
          (local.get $count))
        (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))))
    (local.set $sum (f32x4.splat (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $sum)) (f32x4.extract_lane 1 (local.get $sum)))
      (f32.add (f32x4.extract_lane 2 (local.get $sum)) (f32x4.extract_lane 3 (local.get $sum))))))
    ;; y = e / sum (a division, not a multiply by 1/sum: one rounding per output)
    (local.set $j (i32.const 0))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
        (v128.store (i32.add (local.get $row) (local.get $j))
          (f32x4.div (v128.load (i32.add (local.get $row) (local.get $j))) (local.get $sum)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $blocks)))
    (if (local.get $count)
      (then
        (call $store (i32.add (local.get $row) (local.get $end))
          (f32x4.div (v128.load (i32.add (local.get $row) (local.get $end))) (local.get $sum))
          (local.get $count)))))

  ;; y[i, :] = x[i, :]·W + b for i in [0, n), then the softmax of each row when $softmax is not
  ;; zero. Rows go in pairs, the odd last one alone. Requires k >= 1 and m >= 1.
  (func (export "dense")
    (param $x i32) (param $w i32) (param $b i32) (param $y i32)
    (param $n i32) (param $k i32) (param $m i32) (param $softmax i32)
    (local $i i32) (local $xStep i32) (local $yStep i32)
    (local.set $xStep (i32.shl (local.get $k) (i32.const 2)))
    (local.set $yStep (i32.shl (local.get $m) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $pairs
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 2)) (local.get $n)))
        (call $row2 (local.get $x) (local.get $w) (local.get $b) (local.get $y)
          (local.get $k) (local.get $m))
        (if (local.get $softmax)
          (then
            (call $softmax (local.get $y) (local.get $m))
            (call $softmax (i32.add (local.get $y) (local.get $yStep)) (local.get $m))))
        (local.set $x (i32.add (local.get $x) (i32.shl (local.get $xStep) (i32.const 1))))
        (local.set $y (i32.add (local.get $y) (i32.shl (local.get $yStep) (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $pairs)))
    (if (i32.lt_u (local.get $i) (local.get $n))
      (then
        (call $row1 (local.get $x) (local.get $w) (local.get $b) (local.get $y)
          (local.get $k) (local.get $m))
        (if (local.get $softmax)
          (then (call $softmax (local.get $y) (local.get $m)))))))
)
