;; Activation kernels with 128-bit SIMD, float32. Compiled to `activation_wasm.ts` by
;; `scripts/gen_wasm.ts`; the JavaScript side is `activation.ts`. Pointers are byte offsets.
;;
;; $sigmoid: y[i] = 1 / (1 + e^-x[i]) for i < n, in place allowed (y = x), four at a time.
;;   With e = exp(-|x|) (never overflows): x ≥ 0 gives 1 / (1 + e), x < 0 gives e / (1 + e).
;;   exp(z) for z ≤ 0: 0 below -87 (the sigmoid is then 0 or 1 in float32 but for
;;   subnormals), else z = k·ln2 + r with k = nearest(z·log2e) and ln2 split in two
;;   parts so r is exact, e^r by Cephes' expf polynomial on |r| ≤ ln2/2 (relative error about
;;   one float32 ulp), 2^k from the exponent bits. NaN stays NaN (max, nearest and the
;;   polynomial carry it). The result is within a few float32 ulps of the exact sigmoid.
;;   The last n % 4 elements go through the same vector code on a copy at $tmp (16 bytes).
;;
;; $exp: y[i] = e^x[i] for i < n, in place allowed, by the same reduction and polynomial, with
;;   2^k applied as 2^(k-1)·2 so k may reach 128: +Inf above ln(FLT_MAX) (88.7228…), 0 below
;;   -86.6 (where e^x < 2.5e-38: subnormal results are flushed), NaN kept. Within a few
;;   float32 ulps elsewhere.
(module
  (memory (export "memory") 1)

  (func $sigmoid4 (param $v v128) (result v128)
    (local $z v128) (local $k v128) (local $r v128) (local $p v128) (local $e v128)
    (local $d v128) (local $n v128)
    ;; n = -|v| (the sign bit set), z = max(n, -87) (pmax, one instruction where max takes
    ;; about eight: n < -87 ? -87 : n, NaN kept as max keeps it)
    (local.set $n (v128.or (local.get $v)
      (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000)))
    (local.set $z (f32x4.pmax (local.get $n) (v128.const f32x4 -87 -87 -87 -87)))
    (local.set $k (f32x4.nearest (f32x4.mul (local.get $z)
      (v128.const f32x4 1.44269504088896341 1.44269504088896341
                        1.44269504088896341 1.44269504088896341))))
    ;; r = z - k·ln2_hi - k·ln2_lo
    (local.set $r (f32x4.sub (local.get $z) (f32x4.mul (local.get $k)
      (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $k)
      (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    ;; p = ((((c5·r + c4)·r + c3)·r + c2)·r + c1)·r + c0; e^r = p·r² + r + 1
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
    (local.set $e (f32x4.add (f32x4.add
      (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    ;; e·2^k, 2^k built from its exponent bits (k in [-126, 0], an integer: k + 1.5·2^23 is
    ;; exact and its low mantissa bits are k, where trunc_sat takes several instructions)
    (local.set $e (f32x4.mul (local.get $e) (i32x4.shl
      (i32x4.add (i32x4.sub
          (f32x4.add (local.get $k) (v128.const f32x4 12582912 12582912 12582912 12582912))
          (v128.const f32x4 12582912 12582912 12582912 12582912))
        (v128.const i32x4 127 127 127 127))
      (i32.const 23))))
    ;; 0 where -|v| < -87 (the clamp above kept the arithmetic on normal floats)
    (local.set $e (v128.andnot (local.get $e) (f32x4.lt (local.get $n)
      (v128.const f32x4 -87 -87 -87 -87))))
    (local.set $d (f32x4.add (local.get $e) (v128.const f32x4 1 1 1 1)))
    ;; one division of the chosen numerator: the same correctly rounded quotient as dividing
    ;; both and choosing, at half the cost
    (f32x4.div
      (v128.bitselect (v128.const f32x4 1 1 1 1) (local.get $e)
        (f32x4.ge (local.get $v) (v128.const f32x4 0 0 0 0)))
      (local.get $d)))

  ;; e^r·2^k for r = z - k·ln2 (the reduced argument) and k, as in $sigmoid4.
  (func $expReduced (param $z v128) (param $k v128) (result v128)
    (local $r v128) (local $p v128)
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
    (local.set $p (f32x4.add (f32x4.add
      (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    ;; ·2^(k-1)·2 (k in [-125, 128])
    (f32x4.mul (f32x4.mul (local.get $p) (i32x4.shl
      (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $k)) (v128.const i32x4 126 126 126 126))
      (i32.const 23))) (v128.const f32x4 2 2 2 2)))

  (func $exp4 (param $v v128) (result v128)
    (local $z v128) (local $e v128)
    (local.set $z (f32x4.min (f32x4.max (local.get $v)
      (v128.const f32x4 -86.6 -86.6 -86.6 -86.6))
      (v128.const f32x4 88.72283935546875 88.72283935546875
                        88.72283935546875 88.72283935546875)))
    (local.set $e (call $expReduced (local.get $z) (f32x4.nearest (f32x4.mul (local.get $z)
      (v128.const f32x4 1.44269504088896341 1.44269504088896341
                        1.44269504088896341 1.44269504088896341)))))
    ;; 0 below the clamp, +Inf above it
    (local.set $e (v128.andnot (local.get $e)
      (f32x4.lt (local.get $v) (v128.const f32x4 -86.6 -86.6 -86.6 -86.6))))
    (v128.bitselect (v128.const f32x4 inf inf inf inf) (local.get $e)
      (f32x4.gt (local.get $v) (v128.const f32x4 88.72283935546875 88.72283935546875
                                                 88.72283935546875 88.72283935546875))))

  (func $exp (export "exp") (param $x i32) (param $y i32) (param $n i32) (param $tmp i32)
    (local $i i32) (local $n4 i32) (local $rest i32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (v128.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))
          (call $exp4 (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l)))
    (local.set $rest (i32.shl (i32.sub (local.get $n) (local.get $n4)) (i32.const 2)))
    (if (local.get $rest)
      (then
        (v128.store (local.get $tmp) (v128.const i32x4 0 0 0 0))
        (memory.copy (local.get $tmp)
          (i32.add (local.get $x) (i32.shl (local.get $n4) (i32.const 2))) (local.get $rest))
        (v128.store (local.get $tmp) (call $exp4 (v128.load (local.get $tmp))))
        (memory.copy (i32.add (local.get $y) (i32.shl (local.get $n4) (i32.const 2)))
          (local.get $tmp) (local.get $rest)))))

  (func $sigmoid (export "sigmoid") (param $x i32) (param $y i32) (param $n i32) (param $tmp i32)
    (local $i i32) (local $n4 i32) (local $rest i32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (v128.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))
          (call $sigmoid4 (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l)))
    (local.set $rest (i32.shl (i32.sub (local.get $n) (local.get $n4)) (i32.const 2)))
    (if (local.get $rest)
      (then
        (v128.store (local.get $tmp) (v128.const i32x4 0 0 0 0))
        (memory.copy (local.get $tmp)
          (i32.add (local.get $x) (i32.shl (local.get $n4) (i32.const 2))) (local.get $rest))
        (v128.store (local.get $tmp) (call $sigmoid4 (v128.load (local.get $tmp))))
        (memory.copy (i32.add (local.get $y) (i32.shl (local.get $n4) (i32.const 2)))
          (local.get $tmp) (local.get $rest))))))
