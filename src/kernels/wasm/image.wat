;; Image kernels with 128-bit SIMD, float32 throughout. Compiled to `image_wasm.ts` by
;; `scripts/gen_wasm.ts`; the JavaScript side is `image.ts`, which owns the memory layout
;; described here. All pointers are byte offsets into the one memory, data little-endian.
;;
;; $resizeBilinear: one NHWC image of c channels to outH × outW pixels, with TensorFlow's
;;   float32 interpolation (resize_bilinear_op.cc): for each output pixel and channel
;;     t = tl + (tr - tl)·xl,  u = bl + (br - bl)·xl,  y = t + (u - t)·yl,
;;   each operation rounded to float32, in that order (so the results are the same floats as
;;   TensorFlow's and as the JavaScript loop's; no fused multiply-add here).
;;   ytab  outH entries of 12 bytes: the byte offsets (from $x) of the top and bottom source
;;         rows, then yl as a float32.
;;   xtab  outW entries of 12 bytes: the byte offsets (within a row) of the left and right
;;         source pixels, then xl as a float32.
;;   y     outH·outW·c floats, written in order.
;;   Four channels at a time; the last c % 4 one at a time.
;;
;; $resizeRows: the same floats with each source row interpolated along x once: the rows of
;;   t (or u) values, tl + (tr - tl)·xl for every output column and channel, of the last two
;;   source rows used are kept at $rows (two blocks of $rowStride bytes, each at least outW·c
;;   floats), and each output row is t + (u - t)·yl over them. An upsampling reads each source
;;   row pair for several output rows, so this does about half the arithmetic of
;;   $resizeBilinear; every value goes through the same float32 operations in the same order.
(module
  (memory (export "memory") 1)

  (func $resizeBilinear (export "resizeBilinear")
    (param $x i32) (param $y i32) (param $c i32) (param $outH i32) (param $outW i32)
    (param $ytab i32) (param $xtab i32)
    (local $ey i32) (local $eyEnd i32) (local $ex i32) (local $exEnd i32)
    (local $top i32) (local $bot i32) (local $yl v128) (local $xl v128)
    (local $tl i32) (local $tr i32) (local $bl i32) (local $br i32)
    (local $cb i32) (local $c4b i32) (local $cBytes i32) (local $py i32)
    (local $t v128) (local $u v128) (local $ts f32) (local $us f32)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $c4b (i32.and (local.get $cBytes) (i32.const -16)))
    (local.set $py (local.get $y))
    (local.set $ey (local.get $ytab))
    (local.set $eyEnd (i32.add (local.get $ytab) (i32.mul (local.get $outH) (i32.const 12))))
    (local.set $exEnd (i32.add (local.get $xtab) (i32.mul (local.get $outW) (i32.const 12))))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $ey) (local.get $eyEnd)))
        (local.set $top (i32.add (local.get $x) (i32.load (local.get $ey))))
        (local.set $bot (i32.add (local.get $x) (i32.load offset=4 (local.get $ey))))
        (local.set $yl (f32x4.splat (f32.load offset=8 (local.get $ey))))
        (local.set $ex (local.get $xtab))
        (block $colsDone
          (loop $cols
            (br_if $colsDone (i32.ge_u (local.get $ex) (local.get $exEnd)))
            (local.set $tl (i32.add (local.get $top) (i32.load (local.get $ex))))
            (local.set $tr (i32.add (local.get $top) (i32.load offset=4 (local.get $ex))))
            (local.set $bl (i32.add (local.get $bot) (i32.load (local.get $ex))))
            (local.set $br (i32.add (local.get $bot) (i32.load offset=4 (local.get $ex))))
            (local.set $xl (f32x4.splat (f32.load offset=8 (local.get $ex))))
            (local.set $cb (i32.const 0))
            (block $vDone
              (loop $v
                (br_if $vDone (i32.ge_u (local.get $cb) (local.get $c4b)))
                (local.set $t (v128.load (i32.add (local.get $tl) (local.get $cb))))
                (local.set $t (f32x4.add (local.get $t) (f32x4.mul
                  (f32x4.sub (v128.load (i32.add (local.get $tr) (local.get $cb))) (local.get $t))
                  (local.get $xl))))
                (local.set $u (v128.load (i32.add (local.get $bl) (local.get $cb))))
                (local.set $u (f32x4.add (local.get $u) (f32x4.mul
                  (f32x4.sub (v128.load (i32.add (local.get $br) (local.get $cb))) (local.get $u))
                  (local.get $xl))))
                (v128.store (local.get $py) (f32x4.add (local.get $t) (f32x4.mul
                  (f32x4.sub (local.get $u) (local.get $t)) (local.get $yl))))
                (local.set $py (i32.add (local.get $py) (i32.const 16)))
                (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
                (br $v)))
            (block $sDone
              (loop $s
                (br_if $sDone (i32.ge_u (local.get $cb) (local.get $cBytes)))
                (local.set $ts (f32.load (i32.add (local.get $tl) (local.get $cb))))
                (local.set $ts (f32.add (local.get $ts) (f32.mul
                  (f32.sub (f32.load (i32.add (local.get $tr) (local.get $cb))) (local.get $ts))
                  (f32x4.extract_lane 0 (local.get $xl)))))
                (local.set $us (f32.load (i32.add (local.get $bl) (local.get $cb))))
                (local.set $us (f32.add (local.get $us) (f32.mul
                  (f32.sub (f32.load (i32.add (local.get $br) (local.get $cb))) (local.get $us))
                  (f32x4.extract_lane 0 (local.get $xl)))))
                (f32.store (local.get $py) (f32.add (local.get $ts) (f32.mul
                  (f32.sub (local.get $us) (local.get $ts)) (f32x4.extract_lane 0 (local.get $yl)))))
                (local.set $py (i32.add (local.get $py) (i32.const 4)))
                (local.set $cb (i32.add (local.get $cb) (i32.const 4)))
                (br $s)))
            (local.set $ex (i32.add (local.get $ex) (i32.const 12)))
            (br $cols)))
        (local.set $ey (i32.add (local.get $ey) (i32.const 12)))
        (br $rows))))
  ;; One source row (byte offset $src from $x) interpolated along x into $dst: outW·c floats.
  (func $hrow (param $x i32) (param $src i32) (param $dst i32) (param $c i32) (param $xtab i32)
    (param $exEnd i32)
    (local $ex i32) (local $tl i32) (local $tr i32) (local $xl v128) (local $cb i32)
    (local $c4b i32) (local $cBytes i32) (local $t v128) (local $ts f32) (local $row i32)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $c4b (i32.and (local.get $cBytes) (i32.const -16)))
    (local.set $row (i32.add (local.get $x) (local.get $src)))
    (local.set $ex (local.get $xtab))
    (block $colsDone
      (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $ex) (local.get $exEnd)))
        (local.set $tl (i32.add (local.get $row) (i32.load (local.get $ex))))
        (local.set $tr (i32.add (local.get $row) (i32.load offset=4 (local.get $ex))))
        (local.set $xl (f32x4.splat (f32.load offset=8 (local.get $ex))))
        (local.set $cb (i32.const 0))
        (block $vDone
          (loop $v
            (br_if $vDone (i32.ge_u (local.get $cb) (local.get $c4b)))
            (local.set $t (v128.load (i32.add (local.get $tl) (local.get $cb))))
            (v128.store (local.get $dst) (f32x4.add (local.get $t) (f32x4.mul
              (f32x4.sub (v128.load (i32.add (local.get $tr) (local.get $cb))) (local.get $t))
              (local.get $xl))))
            (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
            (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
            (br $v)))
        (block $sDone
          (loop $s
            (br_if $sDone (i32.ge_u (local.get $cb) (local.get $cBytes)))
            (local.set $ts (f32.load (i32.add (local.get $tl) (local.get $cb))))
            (f32.store (local.get $dst) (f32.add (local.get $ts) (f32.mul
              (f32.sub (f32.load (i32.add (local.get $tr) (local.get $cb))) (local.get $ts))
              (f32x4.extract_lane 0 (local.get $xl)))))
            (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
            (local.set $cb (i32.add (local.get $cb) (i32.const 4)))
            (br $s)))
        (local.set $ex (i32.add (local.get $ex) (i32.const 12)))
        (br $cols))))

  (func $resizeRows (export "resizeRows")
    (param $x i32) (param $y i32) (param $c i32) (param $outH i32) (param $outW i32)
    (param $ytab i32) (param $xtab i32) (param $rows i32) (param $rowStride i32)
    (local $ey i32) (local $eyEnd i32) (local $exEnd i32) (local $top i32) (local $bot i32)
    (local $yl v128) (local $heldA i32) (local $heldB i32) (local $pt i32) (local $pu i32)
    (local $n i32) (local $i i32) (local $end4 i32) (local $end i32) (local $t v128)
    (local $ts f32) (local $slotB i32)
    (local.set $n (i32.shl (i32.mul (local.get $outW) (local.get $c)) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $n) (i32.const -16)))
    (local.set $slotB (i32.add (local.get $rows) (local.get $rowStride)))
    ;; the source rows (byte offsets from $x) slots A and B hold; -1: none
    (local.set $heldA (i32.const -1))
    (local.set $heldB (i32.const -1))
    (local.set $ey (local.get $ytab))
    (local.set $eyEnd (i32.add (local.get $ytab) (i32.mul (local.get $outH) (i32.const 12))))
    (local.set $exEnd (i32.add (local.get $xtab) (i32.mul (local.get $outW) (i32.const 12))))
    (block $rowsDone
      (loop $rowsL
        (br_if $rowsDone (i32.ge_u (local.get $ey) (local.get $eyEnd)))
        (local.set $top (i32.load (local.get $ey)))
        (local.set $bot (i32.load offset=4 (local.get $ey)))
        (local.set $yl (f32x4.splat (f32.load offset=8 (local.get $ey))))
        ;; the top row: held, or made in the slot that does not hold the bottom row
        (if (i32.eq (local.get $top) (local.get $heldA))
          (then (local.set $pt (local.get $rows)))
          (else
            (if (i32.eq (local.get $top) (local.get $heldB))
              (then (local.set $pt (local.get $slotB)))
              (else
                (if (i32.eq (local.get $bot) (local.get $heldA))
                  (then
                    (local.set $pt (local.get $slotB))
                    (local.set $heldB (local.get $top)))
                  (else
                    (local.set $pt (local.get $rows))
                    (local.set $heldA (local.get $top))))
                (call $hrow (local.get $x) (local.get $top) (local.get $pt) (local.get $c)
                  (local.get $xtab) (local.get $exEnd))))))
        ;; the bottom row: held, or made in the slot that does not hold the top row
        (if (i32.eq (local.get $bot) (local.get $heldA))
          (then (local.set $pu (local.get $rows)))
          (else
            (if (i32.eq (local.get $bot) (local.get $heldB))
              (then (local.set $pu (local.get $slotB)))
              (else
                (if (i32.eq (local.get $pt) (local.get $rows))
                  (then
                    (local.set $pu (local.get $slotB))
                    (local.set $heldB (local.get $bot)))
                  (else
                    (local.set $pu (local.get $rows))
                    (local.set $heldA (local.get $bot))))
                (call $hrow (local.get $x) (local.get $bot) (local.get $pu) (local.get $c)
                  (local.get $xtab) (local.get $exEnd))))))
        ;; y = t + (u - t)·yl over the row
        (local.set $i (i32.const 0))
        (block $vDone
          (loop $v
            (br_if $vDone (i32.ge_u (local.get $i) (local.get $end4)))
            (local.set $t (v128.load (i32.add (local.get $pt) (local.get $i))))
            (v128.store (i32.add (local.get $y) (local.get $i)) (f32x4.add (local.get $t)
              (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $pu) (local.get $i)))
                (local.get $t)) (local.get $yl))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $v)))
        (block $sDone
          (loop $s
            (br_if $sDone (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $ts (f32.load (i32.add (local.get $pt) (local.get $i))))
            (f32.store (i32.add (local.get $y) (local.get $i)) (f32.add (local.get $ts)
              (f32.mul (f32.sub (f32.load (i32.add (local.get $pu) (local.get $i)))
                (local.get $ts)) (f32x4.extract_lane 0 (local.get $yl)))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $s)))
        (local.set $y (i32.add (local.get $y) (local.get $n)))
        (local.set $ey (i32.add (local.get $ey) (i32.const 12)))
        (br $rowsL)))))
