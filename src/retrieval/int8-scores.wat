;; Approximate cosines of one query against many int8 rows, and ternary dot products against
;; their bit planes (a coarser first pass), with WebAssembly SIMD and 64-bit popcounts.
;; Compiled into int8-scores-wasm.ts by `npm run build:wasm`; used by quantized-rows.ts.
(module
  ;; Shared, so that a second thread can run part of a scan on the same rows (scan-helper.ts).
  (import "scan" "memory" (memory 1 65536 shared))
  ;; scores(rows, count, stride, query, scales, out):
  ;;   out[i] = f32(dot(rows[i], query)) * scales[i]  for i in [0, count)
  ;; rows: count rows of `stride` int8 bytes each (stride a multiple of 16, zero-padded);
  ;; query: `stride` int8 bytes; scales, out: `count` f32 each. Offsets are byte offsets.
  (func $scores (export "scores")
    (param $rows i32) (param $count i32) (param $stride i32) (param $query i32) (param $scales i32) (param $out i32)
    (local $i i32) (local $k i32) (local $row i32) (local $sum v128) (local $a v128) (local $b v128)
    (local.set $row (local.get $rows))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $sum (v128.const i32x4 0 0 0 0))
        (local.set $k (i32.const 0))
        (block $end
          (loop $bytes
            (br_if $end (i32.ge_u (local.get $k) (local.get $stride)))
            (local.set $a (v128.load (i32.add (local.get $row) (local.get $k))))
            (local.set $b (v128.load (i32.add (local.get $query) (local.get $k))))
            ;; 16 products per step: sign-extend each half to i16, multiply and add pairwise to i32.
            (local.set $sum (i32x4.add (local.get $sum)
              (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $a)) (i16x8.extend_low_i8x16_s (local.get $b)))))
            (local.set $sum (i32x4.add (local.get $sum)
              (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $a)) (i16x8.extend_high_i8x16_s (local.get $b)))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $bytes)))
        (f32.store
          (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (f32.mul
            (f32.convert_i32_s
              (i32.add
                (i32.add (i32x4.extract_lane 0 (local.get $sum)) (i32x4.extract_lane 1 (local.get $sum)))
                (i32.add (i32x4.extract_lane 2 (local.get $sum)) (i32x4.extract_lane 3 (local.get $sum)))))
            (f32.load (i32.add (local.get $scales) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $row (i32.add (local.get $row) (local.get $stride)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each))))
  ;; scoresAt(rows, positions, n, stride, query, scales, out):
  ;;   out[j] = f32(dot(rows[p], query)) * scales[p]  for p = positions[j], j in [0, n)
  ;; As `scores`, for the rows at the n i32 `positions` only.
  (func (export "scoresAt")
    (param $rows i32) (param $positions i32) (param $n i32) (param $stride i32) (param $query i32) (param $scales i32) (param $out i32)
    (local $j i32) (local $p i32)
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $p (i32.load (i32.add (local.get $positions) (i32.shl (local.get $j) (i32.const 2)))))
        (call $scores
          (i32.add (local.get $rows) (i32.mul (local.get $p) (local.get $stride)))
          (i32.const 1)
          (local.get $stride)
          (local.get $query)
          (i32.add (local.get $scales) (i32.shl (local.get $p) (i32.const 2)))
          (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each))))

  ;; ternary(rows, count, plane, query, out, counts, bound):
  ;;   out[i] = i32(dot(t(rows[i]), t(query)))  for i in [0, count), and counts[out[i] + bound] += 1
  ;;   (counts: 2 · bound + 1 i32, bound at least the dimension: a histogram of the scores for `best`)
  ;; Each row (and the query) is a ternary vector (components −1, 0 or +1) as two bit planes of
  ;; `plane` bytes each (a multiple of 16): which components are not 0, then which are negative; a
  ;; row takes 2 · plane bytes. Over the components not 0 in both, the product is +1 where the signs
  ;; agree and −1 where they differ: dot = |m∧m'| − 2 · |m∧m'∧(s⊕s')| (popcounts). out: `count` i32.
  ;; Scalar 64-bit popcounts, two words at a time: on x64 about a quarter faster than i8x16.popcnt,
  ;; which V8 lowers to table lookups per nibble there.
  (func (export "ternary")
    (param $rows i32) (param $count i32) (param $plane i32) (param $query i32) (param $out i32) (param $counts i32) (param $bound i32)
    (local $i i32) (local $row i32) (local $r i32) (local $q i32) (local $end i32)
    (local $both i64) (local $both2 i64) (local $sum i64) (local $sum2 i64) (local $score i32) (local $at i32)
    (local.set $row (local.get $rows))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $sum (i64.const 0))
        (local.set $sum2 (i64.const 0))
        (local.set $r (local.get $row))
        (local.set $q (local.get $query))
        (local.set $end (i32.add (local.get $row) (local.get $plane)))
        (loop $words
          (local.set $both (i64.and (i64.load (local.get $r)) (i64.load (local.get $q))))
          (local.set $both2 (i64.and (i64.load offset=8 (local.get $r)) (i64.load offset=8 (local.get $q))))
          (local.set $sum (i64.add (local.get $sum) (i64.popcnt (local.get $both))))
          (local.set $sum2 (i64.add (local.get $sum2) (i64.popcnt (local.get $both2))))
          (local.set $sum (i64.sub (local.get $sum) (i64.shl (i64.popcnt (i64.and (local.get $both) (i64.xor
            (i64.load (i32.add (local.get $r) (local.get $plane)))
            (i64.load (i32.add (local.get $q) (local.get $plane)))))) (i64.const 1))))
          (local.set $sum2 (i64.sub (local.get $sum2) (i64.shl (i64.popcnt (i64.and (local.get $both2) (i64.xor
            (i64.load offset=8 (i32.add (local.get $r) (local.get $plane)))
            (i64.load offset=8 (i32.add (local.get $q) (local.get $plane)))))) (i64.const 1))))
          (local.set $r (i32.add (local.get $r) (i32.const 16)))
          (local.set $q (i32.add (local.get $q) (i32.const 16)))
          (br_if $words (i32.lt_u (local.get $r) (local.get $end))))
        (local.set $score (i32.wrap_i64 (i64.add (local.get $sum) (local.get $sum2))))
        (i32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $score))
        (local.set $at (i32.add (local.get $counts) (i32.shl (i32.add (local.get $score) (local.get $bound)) (i32.const 2))))
        (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $plane) (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each))))

  ;; histogram(scores, count, bound, counts): counts[scores[i] + bound] += 1 for i in [0, count)
  ;; (what `ternary` counts as it scores, for scores from elsewhere).
  (func (export "histogram")
    (param $scores i32) (param $count i32) (param $bound i32) (param $counts i32)
    (local $i i32) (local $at i32)
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $at (i32.add (local.get $counts) (i32.shl
          (i32.add (i32.load (i32.add (local.get $scores) (i32.shl (local.get $i) (i32.const 2)))) (local.get $bound))
          (i32.const 2))))
        (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each))))

  ;; best(scores, count, limit, bound, counts, out) -> n:
  ;;   the positions of the `limit` highest of the `count` i32 `scores` (from −bound to bound), ascending,
  ;;   into `out`; of those tied at the lowest score kept, the first ones. `counts` is their histogram
  ;;   (`ternary`, `histogram`). Returns how many: min(limit, count).
  (func (export "best")
    (param $scores i32) (param $count i32) (param $limit i32) (param $bound i32) (param $counts i32) (param $out i32)
    (result i32)
    (local $floor i32) (local $above i32) (local $here i32) (local $ties i32) (local $i i32) (local $j i32) (local $score i32)
    (if (i32.lt_u (local.get $count) (local.get $limit)) (then (local.set $limit (local.get $count))))
    ;; The lowest score kept: from the top, while the scores above it and at it do not fill `limit`.
    (local.set $floor (i32.shl (local.get $bound) (i32.const 1)))
    (block $found
      (loop $down
        (br_if $found (i32.le_s (local.get $floor) (i32.const 0)))
        (local.set $here (i32.load (i32.add (local.get $counts) (i32.shl (local.get $floor) (i32.const 2)))))
        (br_if $found (i32.ge_u (i32.add (local.get $above) (local.get $here)) (local.get $limit)))
        (local.set $above (i32.add (local.get $above) (local.get $here)))
        (local.set $floor (i32.sub (local.get $floor) (i32.const 1)))
        (br $down)))
    ;; Every score above the floor is kept; of those at it, as many as fill `limit`.
    (local.set $ties (i32.sub (local.get $limit) (local.get $above)))
    (local.set $floor (i32.sub (local.get $floor) (local.get $bound)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $score (i32.load (i32.add (local.get $scores) (i32.shl (local.get $i) (i32.const 2)))))
        (if (i32.or
              (i32.gt_s (local.get $score) (local.get $floor))
              (i32.and (i32.eq (local.get $score) (local.get $floor)) (i32.gt_s (local.get $ties) (i32.const 0))))
          (then
            (if (i32.eq (local.get $score) (local.get $floor)) (then (local.set $ties (i32.sub (local.get $ties) (i32.const 1)))))
            (i32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (local.get $i))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (local.get $j))
)
