;; Convolution and matrix-product kernels with 128-bit SIMD, float32 throughout. Compiled to
;; `conv_wasm.ts` (plain SIMD) and `conv_relaxed_wasm.ts` (every `a + x·w` below becomes
;; `f32x4.relaxed_madd`, a fused multiply-add where the CPU has one) by `scripts/gen_wasm.ts`;
;; the JavaScript side is `conv.ts`, which owns the memory layout described here.
;;
;; All pointers are byte offsets into the one memory, all data float32, little-endian.
;;
;; $gemm: y[i, j] = act(Σ_k a[i, k]·W[k, j] + bias[j] (+ side[i, j])) for i < m, j < n.
;;   a     m rows of k floats, row stride $lda bytes (an im2col buffer, or an NHWC activation
;;         for a 1×1 convolution, or the left operand of a MatMul).
;;   w     W packed in panels of 8 columns: panel p holds, for each k, the 8 floats
;;         W[k, 8p..8p+7] (32 bytes), zeros past n. n8 = ceil8(n) columns in all.
;;   bias  n8 floats, zeros past n.
;;   y     m rows of n floats, row stride $ldy bytes. Only columns < n are written.
;;   side  0, or m rows of n floats with stride $ldy added before the activation (a residual).
;;   act   0 none, 1 Relu (max(v, 0), NaN stays NaN), 2 Relu6 (min(max(v, 0), 6)), 3 hard-swish
;;         (v·s)·Relu6(v + o), with s and o set by $setHardSwish, in the order of the graph's
;;         Mul(s, v), AddV2(v, o), Relu6, Mul that it replaces (so results are the same floats).
;; Rows go in blocks of 4 (each weight load serves 4 rows, each a load 8 columns: 8
;; accumulators); the last m % 4 rows one at a time. Sums run over k in order in each lane, so
;; a row's result does not depend on the block it is computed in.
;;
;; $im2col: the patches of one NHWC image for output pixels [p0, p0 + np), one row of
;;   fh·fw·c floats per pixel in filter order (fy, fx, channel), zeros where a tap falls in the
;;   padding: with an HWIO filter seen as a [fh·fw·c, outC] matrix, a convolution is
;;   $gemm(im2col(x), W).
;;
;; $depthwise: NHWC depthwise convolution with channel multiplier 1 of one image, channels
;;   padded to c4 = ceil4(c) in x and y (the JavaScript side pads and unpads), weights packed
;;   [fh·fw][c4], the bias [c4] at $bias (zeros in the padding); with $side not 0, a tensor of
;;   y's layout added after the activation.
;;
;; $pool: max or average pooling of one NHWC image, channels padded to c4 as for $depthwise.
;;
;; $peak: a loop of 12 independent multiply-adds on 4 lanes, to measure the
;;   machine's SIMD multiply-add throughput (the benchmark's roofline).
(module
  ;; The process's one kernel memory (shared_memory.ts), shared by every isolate's instances:
  ;; packed weights are stored once; each isolate's scratch blocks are its own. 32768 pages
  ;; (2 GiB) at most, so every byte offset is a non-negative i32.
  (import "env" "memory" (memory 1 32768 shared))

  ;; The hard-swish constants (act 3): scale and offset.
  (global $hsScale (mut f32) (f32.const 0))
  (global $hsOffset (mut f32) (f32.const 0))
  (func (export "setHardSwish") (param $scale f32) (param $offset f32)
    (global.set $hsScale (local.get $scale))
    (global.set $hsOffset (local.get $offset)))

  ;; Stores lanes [0, count) of $v at $addr, count in [0, 4]; nothing past them is written.
  (func $store (param $addr i32) (param $v v128) (param $count i32)
    (if (i32.ge_s (local.get $count) (i32.const 4))
      (then (v128.store (local.get $addr) (local.get $v)) (return)))
    (if (i32.le_s (local.get $count) (i32.const 0)) (then (return)))
    (if (i32.ge_u (local.get $count) (i32.const 2))
      (then
        (v128.store64_lane 0 (local.get $addr) (local.get $v))
        (if (i32.eq (local.get $count) (i32.const 3))
          (then (v128.store32_lane offset=8 2 (local.get $addr) (local.get $v)))))
      (else (v128.store32_lane 0 (local.get $addr) (local.get $v)))))

  ;; The activation of an epilogue.
  (func $act (param $v v128) (param $act i32) (result v128)
    (if (result v128) (i32.eqz (local.get $act))
      (then (local.get $v))
      (else
        (if (result v128) (i32.eq (local.get $act) (i32.const 1))
          (then (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0)))
          (else
            (if (result v128) (i32.eq (local.get $act) (i32.const 2))
              (then
                (f32x4.min
                  (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0))
                  (v128.const f32x4 6 6 6 6)))
              (else
                (f32x4.mul
                  (f32x4.mul (local.get $v) (f32x4.splat (global.get $hsScale)))
                  (f32x4.min
                    (f32x4.max
                      (f32x4.add (local.get $v) (f32x4.splat (global.get $hsOffset)))
                      (v128.const f32x4 0 0 0 0))
                    (v128.const f32x4 6 6 6 6))))))))))

  ;; The activation, then + the 4 floats at $addr when $side is not 0 (a residual added after
  ;; the activation, as a graph's Add of the activated output does).
  (func $actSide (param $v v128) (param $act i32) (param $side i32) (param $addr i32)
    (result v128)
    (local.set $v (call $act (local.get $v) (local.get $act)))
    (if (result v128) (local.get $side)
      (then (f32x4.add (local.get $v) (v128.load (local.get $addr))))
      (else (local.get $v))))

  ;; The epilogue of one row of 8 columns: bias, side, activation, store of columns < $cols.
  (func $finish8 (param $y i32) (param $side i32) (param $off i32) (param $bias i32)
    (param $c0 v128) (param $c1 v128) (param $cols i32) (param $act i32)
    (local.set $c0 (f32x4.add (local.get $c0) (v128.load (local.get $bias))))
    (local.set $c1 (f32x4.add (local.get $c1) (v128.load offset=16 (local.get $bias))))
    (if (local.get $side)
      (then
        (if (i32.ge_s (local.get $cols) (i32.const 8))
          (then
            (local.set $c0 (f32x4.add (local.get $c0)
              (v128.load (i32.add (local.get $side) (local.get $off)))))
            (local.set $c1 (f32x4.add (local.get $c1)
              (v128.load offset=16 (i32.add (local.get $side) (local.get $off))))))
          (else
            ;; a partial panel: read the side lane by lane, so nothing past the row is read
            (local.set $c0 (f32x4.add (local.get $c0)
              (call $loadPart (i32.add (local.get $side) (local.get $off)) (local.get $cols))))
            (local.set $c1 (f32x4.add (local.get $c1)
              (call $loadPart (i32.add (i32.add (local.get $side) (local.get $off)) (i32.const 16))
                (i32.sub (local.get $cols) (i32.const 4)))))))))
    (local.set $c0 (call $act (local.get $c0) (local.get $act)))
    (local.set $c1 (call $act (local.get $c1) (local.get $act)))
    (if (i32.ge_s (local.get $cols) (i32.const 8))
      (then
        (v128.store (i32.add (local.get $y) (local.get $off)) (local.get $c0))
        (v128.store offset=16 (i32.add (local.get $y) (local.get $off)) (local.get $c1)))
      (else
        (call $store (i32.add (local.get $y) (local.get $off)) (local.get $c0) (local.get $cols))
        (call $store (i32.add (i32.add (local.get $y) (local.get $off)) (i32.const 16))
          (local.get $c1) (i32.sub (local.get $cols) (i32.const 4))))))

  ;; Lanes [0, count) from $addr, zeros after; count may be <= 0 (all zeros) or >= 4.
  (func $loadPart (param $addr i32) (param $count i32) (result v128)
    (local $v v128)
    (if (i32.ge_s (local.get $count) (i32.const 4))
      (then (return (v128.load (local.get $addr)))))
    (if (i32.le_s (local.get $count) (i32.const 0))
      (then (return (v128.const i32x4 0 0 0 0))))
    (local.set $v (v128.load32_zero (local.get $addr)))
    (if (i32.ge_s (local.get $count) (i32.const 2))
      (then (local.set $v (v128.load32_lane offset=4 1 (local.get $addr) (local.get $v)))))
    (if (i32.ge_s (local.get $count) (i32.const 3))
      (then (local.set $v (v128.load32_lane offset=8 2 (local.get $addr) (local.get $v)))))
    (local.get $v))

  (func $gemm (export "gemm")
    (param $a i32) (param $lda i32) (param $w i32) (param $bias i32)
    (param $y i32) (param $ldy i32) (param $side i32)
    (param $m i32) (param $k i32) (param $n i32) (param $act i32)
    (local $i i32) (local $p i32) (local $pw i32) (local $panelBytes i32)
    (local $pa0 i32) (local $pa1 i32) (local $pa2 i32) (local $pa3 i32)
    (local $end4 i32) (local $end i32) (local $off i32) (local $cols i32)
    (local $w0 v128) (local $w1 v128) (local $x v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $panelBytes (i32.shl (local.get $k) (i32.const 5)))
    (local.set $i (i32.const 0))
    ;; Blocks of 4 rows.
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.gt_s (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
        (local.set $p (i32.const 0))
        (local.set $pw (local.get $w))
        (loop $panels
          (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))))
          (local.set $pa1 (i32.add (local.get $pa0) (local.get $lda)))
          (local.set $pa2 (i32.add (local.get $pa1) (local.get $lda)))
          (local.set $pa3 (i32.add (local.get $pa2) (local.get $lda)))
          (local.set $end4 (i32.add (local.get $pa0)
            (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2))))
          (local.set $end (i32.add (local.get $pa0) (i32.shl (local.get $k) (i32.const 2))))
          (local.set $c00 (v128.const i32x4 0 0 0 0))
          (local.set $c01 (v128.const i32x4 0 0 0 0))
          (local.set $c10 (v128.const i32x4 0 0 0 0))
          (local.set $c11 (v128.const i32x4 0 0 0 0))
          (local.set $c20 (v128.const i32x4 0 0 0 0))
          (local.set $c21 (v128.const i32x4 0 0 0 0))
          (local.set $c30 (v128.const i32x4 0 0 0 0))
          (local.set $c31 (v128.const i32x4 0 0 0 0))
          ;; k in steps of 4
          (block $k4Done
            (loop $k4
              (br_if $k4Done (i32.ge_u (local.get $pa0) (local.get $end4)))
              ;; step 0
              (local.set $w0 (v128.load offset=0 (local.get $pw)))
              (local.set $w1 (v128.load offset=16 (local.get $pw)))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa0)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa1)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa2)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa3)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $w1))))
              ;; step 1
              (local.set $w0 (v128.load offset=32 (local.get $pw)))
              (local.set $w1 (v128.load offset=48 (local.get $pw)))
              (local.set $x (v128.load32_splat offset=4 (local.get $pa0)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=4 (local.get $pa1)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=4 (local.get $pa2)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=4 (local.get $pa3)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $w1))))
              ;; step 2
              (local.set $w0 (v128.load offset=64 (local.get $pw)))
              (local.set $w1 (v128.load offset=80 (local.get $pw)))
              (local.set $x (v128.load32_splat offset=8 (local.get $pa0)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=8 (local.get $pa1)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=8 (local.get $pa2)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=8 (local.get $pa3)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $w1))))
              ;; step 3
              (local.set $w0 (v128.load offset=96 (local.get $pw)))
              (local.set $w1 (v128.load offset=112 (local.get $pw)))
              (local.set $x (v128.load32_splat offset=12 (local.get $pa0)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=12 (local.get $pa1)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=12 (local.get $pa2)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=12 (local.get $pa3)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $pa0 (i32.add (local.get $pa0) (i32.const 16)))
              (local.set $pa1 (i32.add (local.get $pa1) (i32.const 16)))
              (local.set $pa2 (i32.add (local.get $pa2) (i32.const 16)))
              (local.set $pa3 (i32.add (local.get $pa3) (i32.const 16)))
              (local.set $pw (i32.add (local.get $pw) (i32.const 128)))
              (br $k4)))
          ;; the k % 4 rest, one k at a time
          (block $k1Done
            (loop $k1
              (br_if $k1Done (i32.ge_u (local.get $pa0) (local.get $end)))
              (local.set $w0 (v128.load offset=0 (local.get $pw)))
              (local.set $w1 (v128.load offset=16 (local.get $pw)))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa0)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa1)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa2)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa3)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $w0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $w1))))
              (local.set $pa0 (i32.add (local.get $pa0) (i32.const 4)))
              (local.set $pa1 (i32.add (local.get $pa1) (i32.const 4)))
              (local.set $pa2 (i32.add (local.get $pa2) (i32.const 4)))
              (local.set $pa3 (i32.add (local.get $pa3) (i32.const 4)))
              (local.set $pw (i32.add (local.get $pw) (i32.const 32)))
              (br $k1)))
          ;; epilogue of the 4 rows: columns 8p.. of rows i..i+3
          (local.set $cols (i32.sub (local.get $n) (local.get $p)))
          (local.set $off (i32.add (i32.mul (local.get $i) (local.get $ldy))
            (i32.shl (local.get $p) (i32.const 2))))
          (call $finish8 (local.get $y) (local.get $side) (local.get $off)
            (i32.add (local.get $bias) (i32.shl (local.get $p) (i32.const 2)))
            (local.get $c00) (local.get $c01) (local.get $cols) (local.get $act))
          (local.set $off (i32.add (local.get $off) (local.get $ldy)))
          (call $finish8 (local.get $y) (local.get $side) (local.get $off)
            (i32.add (local.get $bias) (i32.shl (local.get $p) (i32.const 2)))
            (local.get $c10) (local.get $c11) (local.get $cols) (local.get $act))
          (local.set $off (i32.add (local.get $off) (local.get $ldy)))
          (call $finish8 (local.get $y) (local.get $side) (local.get $off)
            (i32.add (local.get $bias) (i32.shl (local.get $p) (i32.const 2)))
            (local.get $c20) (local.get $c21) (local.get $cols) (local.get $act))
          (local.set $off (i32.add (local.get $off) (local.get $ldy)))
          (call $finish8 (local.get $y) (local.get $side) (local.get $off)
            (i32.add (local.get $bias) (i32.shl (local.get $p) (i32.const 2)))
            (local.get $c30) (local.get $c31) (local.get $cols) (local.get $act))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br_if $panels (i32.lt_s (local.get $p) (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows)))
    ;; The last m % 4 rows, one at a time.
    (block $restDone
      (loop $rest
        (br_if $restDone (i32.ge_s (local.get $i) (local.get $m)))
        (local.set $p (i32.const 0))
        (local.set $pw (local.get $w))
        (loop $panels1
          (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))))
          (local.set $end (i32.add (local.get $pa0) (i32.shl (local.get $k) (i32.const 2))))
          (local.set $c00 (v128.const i32x4 0 0 0 0))
          (local.set $c01 (v128.const i32x4 0 0 0 0))
          (block $r1Done
            (loop $r1
              (br_if $r1Done (i32.ge_u (local.get $pa0) (local.get $end)))
              (local.set $x (v128.load32_splat offset=0 (local.get $pa0)))
              (local.set $c00 (f32x4.add (local.get $c00)
                (f32x4.mul (local.get $x) (v128.load offset=0 (local.get $pw)))))
              (local.set $c01 (f32x4.add (local.get $c01)
                (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $pw)))))
              (local.set $pa0 (i32.add (local.get $pa0) (i32.const 4)))
              (local.set $pw (i32.add (local.get $pw) (i32.const 32)))
              (br $r1)))
          (call $finish8 (local.get $y) (local.get $side)
            (i32.add (i32.mul (local.get $i) (local.get $ldy)) (i32.shl (local.get $p) (i32.const 2)))
            (i32.add (local.get $bias) (i32.shl (local.get $p) (i32.const 2)))
            (local.get $c00) (local.get $c01) (i32.sub (local.get $n) (local.get $p))
            (local.get $act))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br_if $panels1 (i32.lt_s (local.get $p) (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rest))))

  ;; Copies $count floats from $src to $dst (4 at a time while it can).
  (func $copy (param $dst i32) (param $src i32) (param $count i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $count) (i32.const 2))))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $src) (i32.const 16)) (local.get $end)))
        (v128.store (local.get $dst) (v128.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $l4)))
    (block $done1
      (loop $l1
        (br_if $done1 (i32.ge_u (local.get $src) (local.get $end)))
        (f32.store (local.get $dst) (f32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (br $l1))))

  ;; Zeros $count floats at $dst.
  (func $zero (param $dst i32) (param $count i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $count) (i32.const 2))))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.gt_u (i32.add (local.get $dst) (i32.const 16)) (local.get $end)))
        (v128.store (local.get $dst) (v128.const i32x4 0 0 0 0))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $l4)))
    (block $done1
      (loop $l1
        (br_if $done1 (i32.ge_u (local.get $dst) (local.get $end)))
        (f32.store (local.get $dst) (f32.const 0))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (br $l1))))

  (func $im2col (export "im2col")
    (param $x i32) (param $inH i32) (param $inW i32) (param $c i32)
    (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32) (param $dh i32) (param $dw i32)
    (param $padT i32) (param $padL i32) (param $outW i32)
    (param $p0 i32) (param $np i32) (param $dst i32)
    (local $p i32) (local $pEnd i32) (local $oy i32) (local $ox i32) (local $iy i32) (local $ix i32)
    (local $fy i32) (local $fx i32) (local $rowValid i32)
    (local.set $p (local.get $p0))
    (local.set $pEnd (i32.add (local.get $p0) (local.get $np)))
    (block $done
      (loop $pixels
        (br_if $done (i32.ge_s (local.get $p) (local.get $pEnd)))
        (local.set $oy (i32.div_s (local.get $p) (local.get $outW)))
        (local.set $ox (i32.sub (local.get $p) (i32.mul (local.get $oy) (local.get $outW))))
        (local.set $fy (i32.const 0))
        (loop $rows
          (local.set $iy (i32.add
            (i32.sub (i32.mul (local.get $oy) (local.get $sh)) (local.get $padT))
            (i32.mul (local.get $fy) (local.get $dh))))
          (local.set $rowValid (i32.and
            (i32.ge_s (local.get $iy) (i32.const 0))
            (i32.lt_s (local.get $iy) (local.get $inH))))
          (local.set $fx (i32.const 0))
          (loop $cols
            (local.set $ix (i32.add
              (i32.sub (i32.mul (local.get $ox) (local.get $sw)) (local.get $padL))
              (i32.mul (local.get $fx) (local.get $dw))))
            (if (i32.and (local.get $rowValid)
                  (i32.and (i32.ge_s (local.get $ix) (i32.const 0))
                    (i32.lt_s (local.get $ix) (local.get $inW))))
              (then
                (call $copy (local.get $dst)
                  (i32.add (local.get $x)
                    (i32.shl
                      (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $inW)) (local.get $ix))
                        (local.get $c))
                      (i32.const 2)))
                  (local.get $c)))
              (else (call $zero (local.get $dst) (local.get $c))))
            (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $c) (i32.const 2))))
            (local.set $fx (i32.add (local.get $fx) (i32.const 1)))
            (br_if $cols (i32.lt_s (local.get $fx) (local.get $fw))))
          (local.set $fy (i32.add (local.get $fy) (i32.const 1)))
          (br_if $rows (i32.lt_s (local.get $fy) (local.get $fh))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pixels))))

  (func $depthwise (export "depthwise")
    (param $x i32) (param $inH i32) (param $inW i32) (param $c4 i32)
    (param $w i32) (param $bias i32) (param $y i32)
    (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32) (param $dh i32) (param $dw i32)
    (param $padT i32) (param $padL i32) (param $outH i32) (param $outW i32) (param $act i32)
    (param $side i32)
    (local $oy i32) (local $ox i32) (local $iy0 i32) (local $ix0 i32)
    (local $fyS i32) (local $fyE i32) (local $fxS i32) (local $fxE i32) (local $fy i32) (local $fx i32)
    (local $cb i32) (local $cEnd16 i32) (local $rowBytes i32) (local $tapBytes i32)
    (local $dyBytes i32) (local $dxBytes i32) (local $wRowBytes i32)
    (local $x0 i32) (local $w0 i32) (local $px i32) (local $pw i32) (local $rx i32) (local $rw i32)
    (local $py i32) (local $ps i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    ;; bytes: a pixel's channels (= a tap's weights), an input row, the steps between taps
    (local.set $tapBytes (i32.shl (local.get $c4) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $inW) (local.get $tapBytes)))
    (local.set $dyBytes (i32.mul (local.get $dh) (local.get $rowBytes)))
    (local.set $dxBytes (i32.mul (local.get $dw) (local.get $tapBytes)))
    (local.set $wRowBytes (i32.mul (local.get $fw) (local.get $tapBytes)))
    (local.set $cEnd16 (i32.and (local.get $tapBytes) (i32.const -64)))
    (local.set $py (local.get $y))
    (local.set $ps (local.get $side))
    (local.set $oy (i32.const 0))
    (block $ysDone
      (loop $ys
        (br_if $ysDone (i32.ge_s (local.get $oy) (local.get $outH)))
        (local.set $iy0 (i32.sub (i32.mul (local.get $oy) (local.get $sh)) (local.get $padT)))
        ;; the taps [fyS, fyE) that land inside the input rows
        (local.set $fyS (i32.const 0))
        (block $d (loop $l
          (br_if $d (i32.ge_s (local.get $fyS) (local.get $fh)))
          (br_if $d (i32.ge_s (i32.add (local.get $iy0)
            (i32.mul (local.get $fyS) (local.get $dh))) (i32.const 0)))
          (local.set $fyS (i32.add (local.get $fyS) (i32.const 1)))
          (br $l)))
        (local.set $fyE (local.get $fh))
        (block $d (loop $l
          (br_if $d (i32.le_s (local.get $fyE) (local.get $fyS)))
          (br_if $d (i32.lt_s (i32.add (local.get $iy0)
            (i32.mul (i32.sub (local.get $fyE) (i32.const 1)) (local.get $dh))) (local.get $inH)))
          (local.set $fyE (i32.sub (local.get $fyE) (i32.const 1)))
          (br $l)))
        (local.set $ox (i32.const 0))
        (block $xsDone
          (loop $xs
            (br_if $xsDone (i32.ge_s (local.get $ox) (local.get $outW)))
            (local.set $ix0 (i32.sub (i32.mul (local.get $ox) (local.get $sw)) (local.get $padL)))
            (local.set $fxS (i32.const 0))
            (block $d (loop $l
              (br_if $d (i32.ge_s (local.get $fxS) (local.get $fw)))
              (br_if $d (i32.ge_s (i32.add (local.get $ix0)
                (i32.mul (local.get $fxS) (local.get $dw))) (i32.const 0)))
              (local.set $fxS (i32.add (local.get $fxS) (i32.const 1)))
              (br $l)))
            (local.set $fxE (local.get $fw))
            (block $d (loop $l
              (br_if $d (i32.le_s (local.get $fxE) (local.get $fxS)))
              (br_if $d (i32.lt_s (i32.add (local.get $ix0)
                (i32.mul (i32.sub (local.get $fxE) (i32.const 1)) (local.get $dw))) (local.get $inW)))
              (local.set $fxE (i32.sub (local.get $fxE) (i32.const 1)))
              (br $l)))
            ;; the first valid tap's input pixel and weights (channel 0)
            (local.set $x0 (i32.add (local.get $x)
              (i32.add
                (i32.mul (i32.add (local.get $iy0) (i32.mul (local.get $fyS) (local.get $dh)))
                  (local.get $rowBytes))
                (i32.mul (i32.add (local.get $ix0) (i32.mul (local.get $fxS) (local.get $dw)))
                  (local.get $tapBytes)))))
            (local.set $w0 (i32.add (local.get $w)
              (i32.mul (i32.add (i32.mul (local.get $fyS) (local.get $fw)) (local.get $fxS))
                (local.get $tapBytes))))
            ;; channel bytes [cb, cb + 64): 16 channels in 4 accumulators
            (local.set $cb (i32.const 0))
            (block $c16Done
              (loop $c16
                (br_if $c16Done (i32.ge_u (local.get $cb) (local.get $cEnd16)))
                (local.set $a0 (v128.load offset=0 (i32.add (local.get $bias) (local.get $cb))))
                (local.set $a1 (v128.load offset=16 (i32.add (local.get $bias) (local.get $cb))))
                (local.set $a2 (v128.load offset=32 (i32.add (local.get $bias) (local.get $cb))))
                (local.set $a3 (v128.load offset=48 (i32.add (local.get $bias) (local.get $cb))))
                (local.set $rx (i32.add (local.get $x0) (local.get $cb)))
                (local.set $rw (i32.add (local.get $w0) (local.get $cb)))
                (local.set $fy (local.get $fyS))
                (block $tfyDone
                  (loop $tfy
                    (br_if $tfyDone (i32.ge_s (local.get $fy) (local.get $fyE)))
                    (local.set $px (local.get $rx))
                    (local.set $pw (local.get $rw))
                    (local.set $fx (local.get $fxS))
                    (block $tfxDone
                      (loop $tfx
                        (br_if $tfxDone (i32.ge_s (local.get $fx) (local.get $fxE)))
                        (local.set $a0 (f32x4.add (local.get $a0)
                          (f32x4.mul (v128.load offset=0 (local.get $px))
                            (v128.load offset=0 (local.get $pw)))))
                        (local.set $a1 (f32x4.add (local.get $a1)
                          (f32x4.mul (v128.load offset=16 (local.get $px))
                            (v128.load offset=16 (local.get $pw)))))
                        (local.set $a2 (f32x4.add (local.get $a2)
                          (f32x4.mul (v128.load offset=32 (local.get $px))
                            (v128.load offset=32 (local.get $pw)))))
                        (local.set $a3 (f32x4.add (local.get $a3)
                          (f32x4.mul (v128.load offset=48 (local.get $px))
                            (v128.load offset=48 (local.get $pw)))))
                        (local.set $px (i32.add (local.get $px) (local.get $dxBytes)))
                        (local.set $pw (i32.add (local.get $pw) (local.get $tapBytes)))
                        (local.set $fx (i32.add (local.get $fx) (i32.const 1)))
                        (br $tfx)))
                    (local.set $rx (i32.add (local.get $rx) (local.get $dyBytes)))
                    (local.set $rw (i32.add (local.get $rw) (local.get $wRowBytes)))
                    (local.set $fy (i32.add (local.get $fy) (i32.const 1)))
                    (br $tfy)))
                (v128.store offset=0 (i32.add (local.get $py) (local.get $cb))
                  (call $actSide (local.get $a0) (local.get $act) (local.get $side)
                    (i32.add (i32.add (local.get $ps) (local.get $cb)) (i32.const 0))))
                (v128.store offset=16 (i32.add (local.get $py) (local.get $cb))
                  (call $actSide (local.get $a1) (local.get $act) (local.get $side)
                    (i32.add (i32.add (local.get $ps) (local.get $cb)) (i32.const 16))))
                (v128.store offset=32 (i32.add (local.get $py) (local.get $cb))
                  (call $actSide (local.get $a2) (local.get $act) (local.get $side)
                    (i32.add (i32.add (local.get $ps) (local.get $cb)) (i32.const 32))))
                (v128.store offset=48 (i32.add (local.get $py) (local.get $cb))
                  (call $actSide (local.get $a3) (local.get $act) (local.get $side)
                    (i32.add (i32.add (local.get $ps) (local.get $cb)) (i32.const 48))))
                (local.set $cb (i32.add (local.get $cb) (i32.const 64)))
                (br $c16)))
            ;; the rest, 4 channels at a time
            (block $c4Done
              (loop $c4l
                (br_if $c4Done (i32.ge_u (local.get $cb) (local.get $tapBytes)))
                (local.set $a0 (v128.load (i32.add (local.get $bias) (local.get $cb))))
                (local.set $rx (i32.add (local.get $x0) (local.get $cb)))
                (local.set $rw (i32.add (local.get $w0) (local.get $cb)))
                (local.set $fy (local.get $fyS))
                (block $sfyDone
                  (loop $sfy
                    (br_if $sfyDone (i32.ge_s (local.get $fy) (local.get $fyE)))
                    (local.set $px (local.get $rx))
                    (local.set $pw (local.get $rw))
                    (local.set $fx (local.get $fxS))
                    (block $sfxDone
                      (loop $sfx
                        (br_if $sfxDone (i32.ge_s (local.get $fx) (local.get $fxE)))
                        (local.set $a0 (f32x4.add (local.get $a0)
                          (f32x4.mul (v128.load (local.get $px)) (v128.load (local.get $pw)))))
                        (local.set $px (i32.add (local.get $px) (local.get $dxBytes)))
                        (local.set $pw (i32.add (local.get $pw) (local.get $tapBytes)))
                        (local.set $fx (i32.add (local.get $fx) (i32.const 1)))
                        (br $sfx)))
                    (local.set $rx (i32.add (local.get $rx) (local.get $dyBytes)))
                    (local.set $rw (i32.add (local.get $rw) (local.get $wRowBytes)))
                    (local.set $fy (i32.add (local.get $fy) (i32.const 1)))
                    (br $sfy)))
                (v128.store (i32.add (local.get $py) (local.get $cb))
                  (call $actSide (local.get $a0) (local.get $act) (local.get $side)
                    (i32.add (local.get $ps) (local.get $cb))))
                (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
                (br $c4l)))
            (local.set $py (i32.add (local.get $py) (local.get $tapBytes)))
            (local.set $ps (i32.add (local.get $ps) (local.get $tapBytes)))
            (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
            (br $xs)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $ys))))

  ;; Max (max = 1) or average pooling of one NHWC image, channels padded to c4 as for
  ;; $depthwise. Windows are clipped to the input: padding never wins a max and is not counted
  ;; in an average. The max keeps the running value when the new one is NaN (pmax, as the
  ;; JavaScript loop's `>`); an empty window gives the lowest float (max) or NaN (average).
  (func $pool (export "pool")
    (param $x i32) (param $inH i32) (param $inW i32) (param $c4 i32) (param $y i32)
    (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32)
    (param $padT i32) (param $padL i32) (param $outH i32) (param $outW i32) (param $max i32)
    (local $oy i32) (local $ox i32) (local $y0 i32) (local $y1 i32) (local $x0 i32) (local $x1 i32)
    (local $iy i32) (local $ix i32) (local $cb i32) (local $tapBytes i32) (local $rowBytes i32)
    (local $px i32) (local $py i32) (local $acc v128) (local $count v128)
    (local.set $tapBytes (i32.shl (local.get $c4) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $inW) (local.get $tapBytes)))
    (local.set $py (local.get $y))
    (local.set $oy (i32.const 0))
    (block $ysDone
      (loop $ys
        (br_if $ysDone (i32.ge_s (local.get $oy) (local.get $outH)))
        (local.set $y0 (i32.sub (i32.mul (local.get $oy) (local.get $sh)) (local.get $padT)))
        (local.set $y1 (i32.add (local.get $y0) (local.get $fh)))
        (if (i32.lt_s (local.get $y0) (i32.const 0)) (then (local.set $y0 (i32.const 0))))
        (if (i32.gt_s (local.get $y1) (local.get $inH)) (then (local.set $y1 (local.get $inH))))
        (local.set $ox (i32.const 0))
        (block $xsDone
          (loop $xs
            (br_if $xsDone (i32.ge_s (local.get $ox) (local.get $outW)))
            (local.set $x0 (i32.sub (i32.mul (local.get $ox) (local.get $sw)) (local.get $padL)))
            (local.set $x1 (i32.add (local.get $x0) (local.get $fw)))
            (if (i32.lt_s (local.get $x0) (i32.const 0)) (then (local.set $x0 (i32.const 0))))
            (if (i32.gt_s (local.get $x1) (local.get $inW)) (then (local.set $x1 (local.get $inW))))
            (local.set $count (f32x4.splat (f32.convert_i32_s (i32.mul
              (select (i32.sub (local.get $y1) (local.get $y0)) (i32.const 0)
                (i32.gt_s (local.get $y1) (local.get $y0)))
              (select (i32.sub (local.get $x1) (local.get $x0)) (i32.const 0)
                (i32.gt_s (local.get $x1) (local.get $x0)))))))
            (local.set $cb (i32.const 0))
            (block $csDone
              (loop $cs
                (br_if $csDone (i32.ge_u (local.get $cb) (local.get $tapBytes)))
                (local.set $acc (select (result v128)
                  (v128.const f32x4 -3.4028234663852886e38 -3.4028234663852886e38
                                    -3.4028234663852886e38 -3.4028234663852886e38)
                  (v128.const i32x4 0 0 0 0)
                  (local.get $max)))
                (local.set $iy (local.get $y0))
                (block $rDone
                  (loop $r
                    (br_if $rDone (i32.ge_s (local.get $iy) (local.get $y1)))
                    (local.set $px (i32.add (i32.add (local.get $x) (local.get $cb))
                      (i32.add (i32.mul (local.get $iy) (local.get $rowBytes))
                        (i32.mul (local.get $x0) (local.get $tapBytes)))))
                    (local.set $ix (local.get $x0))
                    (block $cDone
                      (loop $c
                        (br_if $cDone (i32.ge_s (local.get $ix) (local.get $x1)))
                        (if (local.get $max)
                          (then (local.set $acc (f32x4.pmax (local.get $acc)
                            (v128.load (local.get $px)))))
                          (else (local.set $acc (f32x4.add (local.get $acc)
                            (v128.load (local.get $px))))))
                        (local.set $px (i32.add (local.get $px) (local.get $tapBytes)))
                        (local.set $ix (i32.add (local.get $ix) (i32.const 1)))
                        (br $c)))
                    (local.set $iy (i32.add (local.get $iy) (i32.const 1)))
                    (br $r)))
                (if (i32.eqz (local.get $max))
                  (then (local.set $acc (f32x4.div (local.get $acc) (local.get $count)))))
                (v128.store (i32.add (local.get $py) (local.get $cb)) (local.get $acc))
                (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
                (br $cs)))
            (local.set $py (i32.add (local.get $py) (local.get $tapBytes)))
            (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
            (br $xs)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $ys))))

  (func $peak (export "peak") (param $iters i32) (result f32)
    (local $x v128) (local $w v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local $c4 v128) (local $c5 v128) (local $c6 v128) (local $c7 v128)
    (local $c8 v128) (local $c9 v128) (local $c10 v128) (local $c11 v128)
    (local.set $x (v128.const f32x4 0.999 0.999 0.999 0.999))
    (local.set $w (v128.const f32x4 0.001 0.001 0.001 0.001))
    (block $done
      (loop $l
        (br_if $done (i32.le_s (local.get $iters) (i32.const 0)))
        (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c4 (f32x4.add (local.get $c4) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c5 (f32x4.add (local.get $c5) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c6 (f32x4.add (local.get $c6) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c7 (f32x4.add (local.get $c7) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c8 (f32x4.add (local.get $c8) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c9 (f32x4.add (local.get $c9) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $w))))
        (local.set $iters (i32.sub (local.get $iters) (i32.const 1)))
        (br $l)))
    ;; the sum, so the loop is not dead code
    (f32x4.extract_lane 0
      (f32x4.add
        (f32x4.add
          (f32x4.add (f32x4.add (local.get $c0) (local.get $c1)) (f32x4.add (local.get $c2) (local.get $c3)))
          (f32x4.add (f32x4.add (local.get $c4) (local.get $c5)) (f32x4.add (local.get $c6) (local.get $c7))))
        (f32x4.add (f32x4.add (local.get $c8) (local.get $c9)) (f32x4.add (local.get $c10) (local.get $c11)))))))
