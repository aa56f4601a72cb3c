// The two per-row loops of the Newton solver, one item's row of the by-item graph at
// a time: the Hessian-vector product and the gradient (with the curvatures for the
// next Hessian products). Compiled for AVX2 + FMA the gradient's math runs four
// entries per instruction; the baseline build runs the same math in plain loops
// (callgrind, Newton 20k/200k hard: 192M instructions with the AVX2 kernels, 293M with
// the baseline ones, PYCOMP_CPU_KERNELS=base).
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PYCOMP_ROW_KERNELS_AVX2 1
#endif

#include "core/bt_math.h"
#include "cpu/item_graph.h"

namespace pycomp {
namespace cpu {
PYCOMP_ISA_BEGIN

// Whether the gathers of a pass over n items are worth prefetching: n doubles are more
// than a core's L2 cache (512 KiB on Zen 3). Both passes switch at the same n. Below it
// the prefetches only cost instructions (callgrind, Newton 20k/200k: 192M instructions,
// 258M when prefetching).
inline bool gathers_miss_l2(index_t n) { return static_cast<count_t>(n) * 8 > (count_t(1) << 19); }

// Sums of one row's gradient and curvature terms.
struct RowSums {
  double grad;
  double curv;
};

// sum_e curv[e] * (va - v[neighbour(e)]) over the entries [e, end) of one row (v of
// doubles or floats, summed in double), prefetching v kPrefetch entries ahead when
// Prefetch. Scalar loads: AVX2 gathers measured slower on Zen 3, from L2 and L3 alike.
template <bool Prefetch, class E, class V>
inline double row_hessian_times(E en, const float* curv, count_t e, count_t end, const V* v, double va) {
  // Four running sums: one would wait on the add latency at every entry (Newton 10k/200k,
  // one thread, min of 61 solves: 12.7-13.8 ms, 13.9-17.0 ms with one sum; wall clock,
  // four alternating rounds).
  double acc0 = 0.0, acc1 = 0.0, acc2 = 0.0, acc3 = 0.0;
  for (; e + 4 <= end; e += 4) {
    if (Prefetch) {
      __builtin_prefetch(v + en.neighbour(e + kPrefetch));
      __builtin_prefetch(v + en.neighbour(e + kPrefetch + 1));
      __builtin_prefetch(v + en.neighbour(e + kPrefetch + 2));
      __builtin_prefetch(v + en.neighbour(e + kPrefetch + 3));
    }
    acc0 += static_cast<double>(curv[e]) * (va - v[en.neighbour(e)]);
    acc1 += static_cast<double>(curv[e + 1]) * (va - v[en.neighbour(e + 1)]);
    acc2 += static_cast<double>(curv[e + 2]) * (va - v[en.neighbour(e + 2)]);
    acc3 += static_cast<double>(curv[e + 3]) * (va - v[en.neighbour(e + 3)]);
  }
  for (; e < end; ++e) {
    if (Prefetch) __builtin_prefetch(v + en.neighbour(e + kPrefetch));
    acc0 += static_cast<double>(curv[e]) * (va - v[en.neighbour(e)]);
  }
  return (acc0 + acc1) + (acc2 + acc3);
}

#ifdef PYCOMP_ROW_KERNELS_AVX2

namespace avx2 {

// Lane mask (all ones in each 32-bit lane) of the first `count` of four lanes.
inline __m128i first_lanes32(count_t count) {
  return _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(count)), _mm_setr_epi32(0, 1, 2, 3));
}

inline double horizontal_sum(__m256d v) {
  const __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
}

// Gradient and curvature terms of four entries given their ratios r = exp(-(s_a - s_b))
// (see bt_terms_given_ratio); `raw` holds the stored neighbours (the Hard win bit),
// `wins`/`total` the entries' data for the other kinds.
template <EntryKind K>
inline void ratio_terms(__m256d r, __m128i raw, __m256d wins, __m256d total, __m256d& grad, __m256d& curv) {
  const __m256d one = _mm256_set1_pd(1.0);
  if (K == EntryKind::Hard) {
    // wins = 1 unless the entry's sign bit says the row's item lost; total = 1.
    const __m256d lost = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(raw));
    wins = _mm256_blendv_pd(one, _mm256_setzero_pd(), lost);
    total = one;
  }
  const __m256d inv = _mm256_div_pd(one, _mm256_add_pd(one, r));
  grad = _mm256_mul_pd(_mm256_fnmadd_pd(wins, r, _mm256_sub_pd(total, wins)), inv);
  curv = _mm256_mul_pd(_mm256_mul_pd(total, _mm256_mul_pd(r, inv)), inv);
}

}  // namespace avx2

// Sums of the gradient and curvature terms of the entries [e, end) of item a's row,
// writing each entry's curvature (as float) to curv; up = exp(s), down_a = exp(-s_a).
// The neighbours' up are loaded one by one (see row_hessian_times), the math runs
// four entries at a time.
template <bool Prefetch, class E>
inline RowSums row_gradient(E en, float* curv, count_t e, count_t end, const double* up, double down_a) {
  constexpr EntryKind K = E::kind;
  const __m256d da = _mm256_set1_pd(down_a);
  const __m256d one = _mm256_set1_pd(1.0);
  __m256d gsum = _mm256_setzero_pd(), csum = _mm256_setzero_pd();
  for (; e + 4 <= end; e += 4) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(en.nbr + e));
    if (Prefetch) {
      __builtin_prefetch(up + en.neighbour(e + kPrefetch));
      __builtin_prefetch(up + en.neighbour(e + kPrefetch + 1));
      __builtin_prefetch(up + en.neighbour(e + kPrefetch + 2));
      __builtin_prefetch(up + en.neighbour(e + kPrefetch + 3));
    }
    const __m256d ub = _mm256_setr_pd(up[en.neighbour(e)], up[en.neighbour(e + 1)], up[en.neighbour(e + 2)],
                                      up[en.neighbour(e + 3)]);
    const __m256d r = _mm256_mul_pd(ub, da);
    const __m256d wins = K == EntryKind::Hard ? one : _mm256_loadu_pd(en.wins_ + e);
    const __m256d total = K == EntryKind::Weighted ? _mm256_loadu_pd(en.total_ + e) : one;
    __m256d grad, cv;
    avx2::ratio_terms<K>(r, raw, wins, total, grad, cv);
    _mm_storeu_ps(curv + e, _mm256_cvtpd_ps(cv));
    gsum = _mm256_add_pd(gsum, grad);
    csum = _mm256_add_pd(csum, cv);
  }
  if (e < end) {
    const __m128i m32 = avx2::first_lanes32(end - e);
    const __m256i m64i = _mm256_cvtepi32_epi64(m32);
    const __m256d m64 = _mm256_castsi256_pd(m64i);
    const __m128i raw = _mm_maskload_epi32(en.nbr + e, m32);
    alignas(32) double ub[4] = {0.0, 0.0, 0.0, 0.0};
    for (count_t t = 0; t < end - e; ++t) {
      if (Prefetch) __builtin_prefetch(up + en.neighbour(e + t + kPrefetch));
      ub[t] = up[en.neighbour(e + t)];
    }
    const __m256d r = _mm256_mul_pd(_mm256_load_pd(ub), da);
    const __m256d wins = K == EntryKind::Hard ? one : _mm256_maskload_pd(en.wins_ + e, m64i);
    const __m256d total = K == EntryKind::Weighted ? _mm256_maskload_pd(en.total_ + e, m64i) : one;
    __m256d grad, cv;
    avx2::ratio_terms<K>(r, raw, wins, total, grad, cv);
    grad = _mm256_and_pd(grad, m64);
    cv = _mm256_and_pd(cv, m64);
    _mm_maskstore_ps(curv + e, m32, _mm256_cvtpd_ps(cv));
    gsum = _mm256_add_pd(gsum, grad);
    csum = _mm256_add_pd(csum, cv);
  }
  return RowSums{avx2::horizontal_sum(gsum), avx2::horizontal_sum(csum)};
}

#else  // baseline build: plain loops

template <bool Prefetch, class E>
inline RowSums row_gradient(E en, float* curv, count_t e, count_t end, const double* up, double down_a) {
  RowSums out{0.0, 0.0};
  for (; e < end; ++e) {
    if (Prefetch) __builtin_prefetch(up + en.neighbour(e + kPrefetch));
    const BtTerms t = bt_terms_given_ratio(up[en.neighbour(e)] * down_a, en.wins(e), en.total(e));
    curv[e] = static_cast<float>(t.curv);
    out.grad += t.grad;
    out.curv += t.curv;
  }
  return out;
}

#endif

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
