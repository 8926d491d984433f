;; Elementwise float32 kernels with 128-bit SIMD: the activations whose JavaScript loops are slow
;; (Relu and Relu6 branch on the sign, which mispredicts on real feature maps; Math.tanh costs
;; 10-15 ns an element) and the broadcasting binary arithmetic. Compiled to `elementwise_wasm.ts`
;; by `scripts/gen_wasm.ts`; the JavaScript side is `elementwise.ts`. Pointers are byte offsets,
;; counts and strides are in elements. Every function reads x (or a, b) and writes y; y may be x.
;;
;; $relu:  y = max(x, 0); NaN stays NaN (f32x4.max propagates it).
;; $relu6: y = min(max(x, 0), 6); NaN stays NaN.
;; $exp:   see $exp4 (the same reduction and polynomial as activation.wat's exp, with cheaper
;;   clamps and rounding).
;; $tanh:  |x| < 0.25: the odd Taylor polynomial x + x³(-1/3 + x²(2/15 + x²(-17/315 +
;;   x²·62/2835))) (the first omitted term is below 1e-8 relative there); otherwise
;;   (1 - t) / (1 + t) with t = e^(-2|x|), which never overflows and has no cancellation (t is at
;;   most e^-0.5), the sign of x put back. e^z for z in [-87, 0] as z = k·ln2 + r (k = nearest
;;   z·log2 e, ln2 in two parts so r is exact), e^r by a degree-7 polynomial (Cephes' expf
;;   coefficients, relative error about one float32 ulp), 2^k from exponent bits; below -87, t
;;   is 0 and the result ±1, as in float32. NaN stays NaN. Within a few float32 ulps.
;;
;; $binary: y[i0, i1, i2] = f(a[i0·a0 + i1·a1 + i2·a2], b[i0·b0 + i1·b1 + i2·b2]) over an
;;   n0 × n1 × n2 output (row-major), where a2 and b2 are 0 (broadcast along the row) or 1; the
;;   caller collapses numpy broadcasting into that form. f by `op`: 0 add, 1 sub, 2 mul, 3 div,
;;   4 max, 5 min (both propagate NaN), 6 squared difference (a - b)², 7 PReLU with b the
;;   slope, Relu(a) + b·Relu(-a) (one of the two terms is zero). Every operation is one
;;   correctly rounded float32 operation, so the results are the same bits as float64 arithmetic
;;   rounded to float32 (JavaScript over Float32Arrays), but for the sign of a zero from max/min.
;;   $tmp: 32 bytes of scratch (a row's broadcast operands, splatted).
;;
;; $reduce: Max or Min over the middle of three dims (see the function).
;; $mulAdd: x·s + r with s and r per element, per channel or one value (see the function).
;; $copyRows: strided row copies (a concatenation's inputs into its output).
(module
  (memory (export "memory") 1)

  ;; ---------------------------------------------------------------------------------------------
  ;; Unary

  (func $tanh4 (param $v v128) (result v128)
    (local $a v128) (local $z v128) (local $k v128) (local $r v128) (local $p v128)
    (local $t v128) (local $x2 v128) (local $small v128) (local $big v128)
    (local.set $a (f32x4.abs (local.get $v)))
    ;; small: v + v·x²·(c3 + x²(c5 + x²(c7 + x²·c9)))
    (local.set $x2 (f32x4.mul (local.get $v) (local.get $v)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $x2)
      (v128.const f32x4 0.021869488536155203 0.021869488536155203
                        0.021869488536155203 0.021869488536155203))
      (v128.const f32x4 -0.05396825396825397 -0.05396825396825397
                        -0.05396825396825397 -0.05396825396825397)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2))
      (v128.const f32x4 0.13333333333333333 0.13333333333333333
                        0.13333333333333333 0.13333333333333333)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x2))
      (v128.const f32x4 -0.3333333333333333 -0.3333333333333333
                        -0.3333333333333333 -0.3333333333333333)))
    (local.set $small (f32x4.add (local.get $v)
      (f32x4.mul (local.get $v) (f32x4.mul (local.get $x2) (local.get $p)))))
    ;; big: t = e^z, z = max(-2|v|, -87)
    ;; (pmax: n < -87 ? -87 : n, one instruction where max takes about eight; NaN kept)
    (local.set $z (f32x4.pmax (f32x4.mul (local.get $a) (v128.const f32x4 -2 -2 -2 -2))
      (v128.const f32x4 -87 -87 -87 -87)))
    (local.set $k (f32x4.nearest (f32x4.mul (local.get $z)
      (v128.const f32x4 1.44269504088896341 1.44269504088896341
                        1.44269504088896341 1.44269504088896341))))
    (local.set $r (f32x4.sub (local.get $z) (f32x4.mul (local.get $k)
      (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $k)
      (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (f32x4.add (f32x4.mul
      (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4)
      (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3
                                        1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $t (f32x4.add (f32x4.add
      (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    ;; ·2^k, k in [-126, 0] (an integer: k + 1.5·2^23 is exact and its low mantissa bits are
    ;; k, where trunc_sat takes several instructions)
    (local.set $t (f32x4.mul (local.get $t) (i32x4.shl
      (i32x4.add (i32x4.sub
          (f32x4.add (local.get $k) (v128.const f32x4 12582912 12582912 12582912 12582912))
          (v128.const f32x4 12582912 12582912 12582912 12582912))
        (v128.const i32x4 127 127 127 127))
      (i32.const 23))))
    ;; 0 where -2|v| < -87
    (local.set $t (v128.andnot (local.get $t) (f32x4.lt
      (f32x4.mul (local.get $a) (v128.const f32x4 -2 -2 -2 -2))
      (v128.const f32x4 -87 -87 -87 -87))))
    (local.set $big (f32x4.div
      (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $t))
      (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $t))))
    ;; the sign of v on the (non-negative, or NaN) magnitude
    (local.set $big (v128.or (local.get $big) (v128.and (local.get $v)
      (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000))))
    (v128.bitselect (local.get $small) (local.get $big)
      (f32x4.lt (local.get $a) (v128.const f32x4 0.25 0.25 0.25 0.25))))

  ;; e^v for four lanes: v clamped to [-86.6, 88.72283935546875] (pmin/pmax, one instruction
  ;; each), k = nearest(v·log2 e) by adding and subtracting 1.5·2^23 (the sum's low mantissa bits
  ;; then hold k as an integer), r = v - k·ln2 in two parts (exact), e^r by Cephes' expf
  ;; polynomial, times 2^(k-1)·2 from exponent bits (k up to 128). 0 below -86.6 (results under
  ;; 2.5e-38 flushed), +Inf above ln(FLT_MAX), NaN kept. Within a few float32 ulps.
  (func $exp4 (param $v v128) (result v128)
    (local $z v128) (local $kf v128) (local $k v128) (local $r v128) (local $p v128)
    (local.set $z (f32x4.pmin (f32x4.pmax (local.get $v)
      (v128.const f32x4 -86.6 -86.6 -86.6 -86.6))
      (v128.const f32x4 88.72283935546875 88.72283935546875
                        88.72283935546875 88.72283935546875)))
    (local.set $kf (f32x4.add (f32x4.mul (local.get $z)
      (v128.const f32x4 1.44269504088896341 1.44269504088896341
                        1.44269504088896341 1.44269504088896341))
      (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $k (i32x4.sub (local.get $kf) (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $kf (f32x4.sub (local.get $kf) (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $r (f32x4.sub (local.get $z) (f32x4.mul (local.get $kf)
      (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $kf)
      (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (f32x4.add (f32x4.mul
      (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4)
      (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3
                                        1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $p (f32x4.add (f32x4.add
      (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.mul (f32x4.mul (local.get $p) (i32x4.shl
      (i32x4.add (local.get $k) (v128.const i32x4 126 126 126 126)) (i32.const 23)))
      (v128.const f32x4 2 2 2 2)))
    ;; 0 below the clamp, +Inf above it, NaN where v is NaN
    (local.set $p (v128.andnot (local.get $p)
      (f32x4.lt (local.get $v) (v128.const f32x4 -86.6 -86.6 -86.6 -86.6))))
    (local.set $p (v128.bitselect (v128.const f32x4 inf inf inf inf) (local.get $p)
      (f32x4.gt (local.get $v) (v128.const f32x4 88.72283935546875 88.72283935546875
                                                 88.72283935546875 88.72283935546875))))
    (v128.bitselect (local.get $v) (local.get $p) (f32x4.ne (local.get $v) (local.get $v))))

  ;; One activation of four lanes: 0 relu, 1 relu6, 2 tanh, 3 exp.
  (func $act4 (param $act i32) (param $v v128) (result v128)
    (block $exp
    (block $tanh
      (block $relu6
        (block $relu
          (br_table $relu $relu6 $tanh $exp (local.get $act)))
        (return (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0))))
      (return (f32x4.min (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0))
        (v128.const f32x4 6 6 6 6))))
    (return (call $tanh4 (local.get $v))))
    (call $exp4 (local.get $v)))

  ;; y[i] = act(x[i]) for i < n: one loop per activation, eight lanes an iteration (two
  ;; independent vectors; choosing the activation per vector, a br_table and two calls, cost
  ;; three times relu itself), then at most one more vector and the last n % 4 lanes through
  ;; $act4, those on a copy at $tmp (16 bytes). Every lane gets the same arithmetic either way.
  (func $unary (export "unary") (param $act i32) (param $x i32) (param $y i32) (param $n i32)
    (param $tmp i32)
    (local $i i32) (local $n4 i32) (local $n8 i32) (local $rest i32) (local $px i32) (local $py i32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $n8 (i32.and (local.get $n) (i32.const -8)))
    (block $tail
      (block $exp
        (block $tanh
          (block $relu6
            (block $relu
              (br_table $relu $relu6 $tanh $exp (local.get $act)))
            (block $done
              (loop $l
                (br_if $done (i32.ge_u (local.get $i) (local.get $n8)))
                (local.set $px (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
                (local.set $py (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))))
                (v128.store (local.get $py)
                  (f32x4.max (v128.load (local.get $px)) (v128.const f32x4 0 0 0 0)))
                (v128.store offset=16 (local.get $py)
                  (f32x4.max (v128.load offset=16 (local.get $px)) (v128.const f32x4 0 0 0 0)))
                (local.set $i (i32.add (local.get $i) (i32.const 8)))
                (br $l)))
            (br $tail))
          (block $done
            (loop $l
              (br_if $done (i32.ge_u (local.get $i) (local.get $n8)))
              (local.set $px (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
              (local.set $py (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))))
              (v128.store (local.get $py)
                (f32x4.min (f32x4.max (v128.load (local.get $px)) (v128.const f32x4 0 0 0 0))
                  (v128.const f32x4 6 6 6 6)))
              (v128.store offset=16 (local.get $py)
                (f32x4.min
                  (f32x4.max (v128.load offset=16 (local.get $px)) (v128.const f32x4 0 0 0 0))
                  (v128.const f32x4 6 6 6 6)))
              (local.set $i (i32.add (local.get $i) (i32.const 8)))
              (br $l)))
          (br $tail))
        (block $done
          (loop $l
            (br_if $done (i32.ge_u (local.get $i) (local.get $n8)))
            (local.set $px (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
            (local.set $py (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))))
            (v128.store (local.get $py) (call $tanh4 (v128.load (local.get $px))))
            (v128.store offset=16 (local.get $py) (call $tanh4 (v128.load offset=16 (local.get $px))))
            (local.set $i (i32.add (local.get $i) (i32.const 8)))
            (br $l)))
        (br $tail))
      (block $done
        (loop $l
          (br_if $done (i32.ge_u (local.get $i) (local.get $n8)))
          (local.set $px (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
          (local.set $py (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))))
          (v128.store (local.get $py) (call $exp4 (v128.load (local.get $px))))
          (v128.store offset=16 (local.get $py) (call $exp4 (v128.load offset=16 (local.get $px))))
          (local.set $i (i32.add (local.get $i) (i32.const 8)))
          (br $l))))
    (if (i32.lt_u (local.get $i) (local.get $n4))
      (then
        (v128.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))
          (call $act4 (local.get $act)
            (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))))
    (local.set $rest (i32.shl (i32.sub (local.get $n) (local.get $n4)) (i32.const 2)))
    (if (local.get $rest)
      (then
        (v128.store (local.get $tmp) (v128.const i32x4 0 0 0 0))
        (memory.copy (local.get $tmp)
          (i32.add (local.get $x) (i32.shl (local.get $n4) (i32.const 2))) (local.get $rest))
        (v128.store (local.get $tmp)
          (call $act4 (local.get $act) (v128.load (local.get $tmp))))
        (memory.copy (i32.add (local.get $y) (i32.shl (local.get $n4) (i32.const 2)))
          (local.get $tmp) (local.get $rest)))))

  ;; ---------------------------------------------------------------------------------------------
  ;; Binary

  (func $op4 (param $op i32) (param $a v128) (param $b v128) (result v128)
    (local $d v128)
    (block $prelu
    (block $sq
      (block $min
        (block $max
          (block $div
            (block $mul
              (block $sub
                (block $add
                  (br_table $add $sub $mul $div $max $min $sq $prelu (local.get $op)))
                (return (f32x4.add (local.get $a) (local.get $b))))
              (return (f32x4.sub (local.get $a) (local.get $b))))
            (return (f32x4.mul (local.get $a) (local.get $b))))
          (return (f32x4.div (local.get $a) (local.get $b))))
        (return (f32x4.max (local.get $a) (local.get $b))))
      (return (f32x4.min (local.get $a) (local.get $b))))
    (local.set $d (f32x4.sub (local.get $a) (local.get $b)))
    (return (f32x4.mul (local.get $d) (local.get $d))))
    ;; Relu(a) + b·Relu(-a)
    (f32x4.add (f32x4.max (local.get $a) (v128.const f32x4 0 0 0 0))
      (f32x4.mul (local.get $b)
        (f32x4.max (f32x4.neg (local.get $a)) (v128.const f32x4 0 0 0 0)))))

  (func $op1 (param $op i32) (param $a f32) (param $b f32) (result f32)
    (local $d f32)
    (block $prelu
    (block $sq
      (block $min
        (block $max
          (block $div
            (block $mul
              (block $sub
                (block $add
                  (br_table $add $sub $mul $div $max $min $sq $prelu (local.get $op)))
                (return (f32.add (local.get $a) (local.get $b))))
              (return (f32.sub (local.get $a) (local.get $b))))
            (return (f32.mul (local.get $a) (local.get $b))))
          (return (f32.div (local.get $a) (local.get $b))))
        (return (f32.max (local.get $a) (local.get $b))))
      (return (f32.min (local.get $a) (local.get $b))))
    (local.set $d (f32.sub (local.get $a) (local.get $b)))
    (return (f32.mul (local.get $d) (local.get $d))))
    (f32.add (f32.max (local.get $a) (f32.const 0))
      (f32.mul (local.get $b) (f32.max (f32.neg (local.get $a)) (f32.const 0)))))

  ;; Four lanes at a time over [y, y + bytes): y = f(a, b), a and b advancing by da and db bytes
  ;; a step (16: contiguous, 0: one vector repeated). One loop per operation, chosen once: a call
  ;; and a branch table per vector cost more than the arithmetic.
  (func $vecs (param $op i32) (param $a i32) (param $da i32) (param $b i32) (param $db i32)
    (param $y i32) (param $bytes i32)
    (local $e i32) (local $va v128) (local $vb v128) (local $vd v128)
    (local.set $e (i32.add (local.get $y) (local.get $bytes)))
    (block $prelu
    (block $sq
    (block $min
    (block $max
    (block $div
    (block $mul
    (block $sub
    (block $add
    (br_table $add $sub $mul $div $max $min $sq $prelu (local.get $op)))
    ;; add
    (loop $l_add
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.add (local.get $va) (local.get $vb)))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_add))))
    (return))
    ;; sub
    (loop $l_sub
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.sub (local.get $va) (local.get $vb)))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_sub))))
    (return))
    ;; mul
    (loop $l_mul
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.mul (local.get $va) (local.get $vb)))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_mul))))
    (return))
    ;; div
    (loop $l_div
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.div (local.get $va) (local.get $vb)))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_div))))
    (return))
    ;; max
    (loop $l_max
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.max (local.get $va) (local.get $vb)))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_max))))
    (return))
    ;; min
    (loop $l_min
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.min (local.get $va) (local.get $vb)))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_min))))
    (return))
    ;; sq
    (loop $l_sq
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.mul (local.tee $vd (f32x4.sub (local.get $va) (local.get $vb))) (local.get $vd)))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_sq))))
    (return))
    ;; prelu
    (loop $l_prelu
      (if (i32.lt_u (local.get $y) (local.get $e))
        (then
          (local.set $va (v128.load (local.get $a)))
          (local.set $vb (v128.load (local.get $b)))
          (v128.store (local.get $y)
            (f32x4.add (f32x4.max (local.get $va) (v128.const f32x4 0 0 0 0))
          (f32x4.mul (local.get $vb)
            (f32x4.max (f32x4.neg (local.get $va)) (v128.const f32x4 0 0 0 0)))))
          (local.set $a (i32.add (local.get $a) (local.get $da)))
          (local.set $b (i32.add (local.get $b) (local.get $db)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (br $l_prelu))))
    (return))

  ;; One row: y[j] = f(a[j·a2], b[j·b2]) for j < n, a2 and b2 each 0 or 1. An operand fixed
  ;; along the row is splatted into the 32 bytes of scratch at $tmp (a at $tmp, b at $tmp + 16)
  ;; and read there with step 0, so every layout runs the same vector loop; the n % 4 rest one at
  ;; a time.
  (func $row (param $op i32) (param $a i32) (param $a2 i32) (param $b i32) (param $b2 i32)
    (param $y i32) (param $n i32) (param $tmp i32)
    (local $j i32) (local $n4 i32) (local $pa i32) (local $pb i32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (if (local.get $n4)
      (then
        (if (local.get $a2)
          (then (local.set $pa (local.get $a)))
          (else
            (v128.store (local.get $tmp) (v128.load32_splat (local.get $a)))
            (local.set $pa (local.get $tmp))))
        (if (local.get $b2)
          (then (local.set $pb (local.get $b)))
          (else
            (v128.store offset=16 (local.get $tmp) (v128.load32_splat (local.get $b)))
            (local.set $pb (i32.add (local.get $tmp) (i32.const 16)))))
        (call $vecs (local.get $op)
          (local.get $pa) (i32.shl (local.get $a2) (i32.const 4))
          (local.get $pb) (i32.shl (local.get $b2) (i32.const 4))
          (local.get $y) (i32.shl (local.get $n4) (i32.const 2)))))
    (local.set $j (local.get $n4))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2)))
          (call $op1 (local.get $op)
            (f32.load (i32.add (local.get $a)
              (i32.shl (i32.mul (local.get $j) (local.get $a2)) (i32.const 2))))
            (f32.load (i32.add (local.get $b)
              (i32.shl (i32.mul (local.get $j) (local.get $b2)) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l))))

  (func $binary (export "binary") (param $op i32) (param $a i32) (param $b i32) (param $y i32)
    (param $n0 i32) (param $n1 i32) (param $n2 i32)
    (param $a0 i32) (param $a1 i32) (param $a2 i32)
    (param $b0 i32) (param $b1 i32) (param $b2 i32) (param $tmp i32)
    (local $i0 i32) (local $i1 i32) (local $pa i32) (local $pb i32) (local $py i32)
    (local.set $py (local.get $y))
    (block $done0
      (loop $l0
        (br_if $done0 (i32.ge_u (local.get $i0) (local.get $n0)))
        (local.set $pa (i32.add (local.get $a)
          (i32.shl (i32.mul (local.get $i0) (local.get $a0)) (i32.const 2))))
        (local.set $pb (i32.add (local.get $b)
          (i32.shl (i32.mul (local.get $i0) (local.get $b0)) (i32.const 2))))
        (local.set $i1 (i32.const 0))
        (block $done1
          (loop $l1
            (br_if $done1 (i32.ge_u (local.get $i1) (local.get $n1)))
            (call $row (local.get $op) (local.get $pa) (local.get $a2) (local.get $pb)
              (local.get $b2) (local.get $py) (local.get $n2) (local.get $tmp))
            (local.set $pa (i32.add (local.get $pa) (i32.shl (local.get $a1) (i32.const 2))))
            (local.set $pb (i32.add (local.get $pb) (i32.shl (local.get $b1) (i32.const 2))))
            (local.set $py (i32.add (local.get $py) (i32.shl (local.get $n2) (i32.const 2))))
            (local.set $i1 (i32.add (local.get $i1) (i32.const 1)))
            (br $l1)))
        (local.set $i0 (i32.add (local.get $i0) (i32.const 1)))
        (br $l0))))

  ;; ---------------------------------------------------------------------------------------------
  ;; Reductions

  ;; y[o, k] = max (op 4) or min (op 5) over m < mid of x[o, m, k], for o < outer, k < inner,
  ;; mid ≥ 1: the first row copied, then the others folded in, four lanes at a time (NaN
  ;; propagates). y must not overlap x.
  (func $reduce (export "reduce") (param $op i32) (param $x i32) (param $y i32)
    (param $outer i32) (param $mid i32) (param $inner i32)
    (local $o i32) (local $m i32) (local $row i32) (local $px i32) (local $py i32)
    (local.set $row (i32.shl (local.get $inner) (i32.const 2)))
    (local.set $px (local.get $x))
    (local.set $py (local.get $y))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $outer)))
        (memory.copy (local.get $py) (local.get $px) (local.get $row))
        (local.set $px (i32.add (local.get $px) (local.get $row)))
        (local.set $m (i32.const 1))
        (block $mdone
          (loop $ml
            (br_if $mdone (i32.ge_u (local.get $m) (local.get $mid)))
            ;; (both operands contiguous: the row never touches its scratch)
            (call $row (local.get $op) (local.get $py) (i32.const 1) (local.get $px) (i32.const 1)
              (local.get $py) (local.get $inner) (i32.const 0))
            (local.set $px (i32.add (local.get $px) (local.get $row)))
            (local.set $m (i32.add (local.get $m) (i32.const 1)))
            (br $ml)))
        (local.set $py (i32.add (local.get $py) (local.get $row)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $l))))

  ;; ---------------------------------------------------------------------------------------------
  ;; Multiply-add

  ;; y[i, j] = x[i, j]·s[i·s1 + j·s2] + r[i·r1 + j·r2] for i < rows, j < n (x and y row-major,
  ;; rows of n), s2 and r2 each 0 or 1: the product rounded to float32, then the sum, as the Mul
  ;; and Add kernels give them one after the other.
  (func $mulAdd (export "mulAdd") (param $x i32) (param $s i32) (param $r i32) (param $y i32)
    (param $rows i32) (param $n i32) (param $s1 i32) (param $s2 i32) (param $r1 i32)
    (param $r2 i32)
    (local $i i32) (local $j i32) (local $n4 i32) (local $px i32) (local $ps i32) (local $pr i32)
    (local $vs v128) (local $vr v128) (local $o i32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $px (i32.add (local.get $x)
          (i32.shl (i32.mul (local.get $i) (local.get $n)) (i32.const 2))))
        (local.set $ps (i32.add (local.get $s)
          (i32.shl (i32.mul (local.get $i) (local.get $s1)) (i32.const 2))))
        (local.set $pr (i32.add (local.get $r)
          (i32.shl (i32.mul (local.get $i) (local.get $r1)) (i32.const 2))))
        (local.set $vs (v128.load32_splat (local.get $ps)))
        (local.set $vr (v128.load32_splat (local.get $pr)))
        (local.set $j (i32.const 0))
        (block $jdone
          (loop $jl
            (br_if $jdone (i32.ge_u (local.get $j) (local.get $n4)))
            (local.set $o (i32.shl (local.get $j) (i32.const 2)))
            (v128.store (i32.add (i32.sub (local.get $px) (local.get $x)) (i32.add (local.get $y) (local.get $o)))
              (f32x4.add
                (f32x4.mul (v128.load (i32.add (local.get $px) (local.get $o)))
                  (if (result v128) (local.get $s2)
                    (then (v128.load (i32.add (local.get $ps) (local.get $o))))
                    (else (local.get $vs))))
                (if (result v128) (local.get $r2)
                  (then (v128.load (i32.add (local.get $pr) (local.get $o))))
                  (else (local.get $vr)))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $jl)))
        (block $tdone
          (loop $tl
            (br_if $tdone (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $o (i32.shl (local.get $j) (i32.const 2)))
            (f32.store (i32.add (i32.sub (local.get $px) (local.get $x)) (i32.add (local.get $y) (local.get $o)))
              (f32.add
                (f32.mul (f32.load (i32.add (local.get $px) (local.get $o)))
                  (f32.load (i32.add (local.get $ps) (i32.mul (local.get $o) (local.get $s2)))))
                (f32.load (i32.add (local.get $pr) (i32.mul (local.get $o) (local.get $r2))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tl)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l))))

  ;; ---------------------------------------------------------------------------------------------
  ;; Copies

  ;; `rows` rows of `bytes` bytes from src (contiguous) to dst, `stride` bytes apart there: one
  ;; input's part of a concatenation. Sixteen bytes at a time, the rest by memory.copy (a call
  ;; per short row costs more than the copy).
  (func $copyRows (export "copyRows") (param $src i32) (param $dst i32) (param $rows i32)
    (param $bytes i32) (param $stride i32)
    (local $r i32) (local $o i32) (local $b16 i32)
    (local.set $b16 (i32.and (local.get $bytes) (i32.const -16)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $o (i32.const 0))
        (block $vdone
          (loop $v
            (br_if $vdone (i32.ge_u (local.get $o) (local.get $b16)))
            (v128.store (i32.add (local.get $dst) (local.get $o))
              (v128.load (i32.add (local.get $src) (local.get $o))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $v)))
        (if (i32.lt_u (local.get $o) (local.get $bytes))
          (then
            (memory.copy (i32.add (local.get $dst) (local.get $o))
              (i32.add (local.get $src) (local.get $o))
              (i32.sub (local.get $bytes) (local.get $o)))))
        (local.set $src (i32.add (local.get $src) (local.get $bytes)))
        (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $l))))
)
