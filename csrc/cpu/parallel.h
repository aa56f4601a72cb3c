// OpenMP building blocks of the CPU backend: the thread count of a solve and
// parallel loops in fixed blocks whose sums do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#ifdef PYCOMP_WITH_OPENMP
#include <omp.h>
#endif

#include "core/common.h"

namespace pycomp {
namespace cpu {
PYCOMP_ISA_BEGIN

// Problems with fewer comparisons than this run on one thread by default: their
// passes take microseconds, and waking a thread team would dominate (Newton, 2k items /
// 19k comparisons: median 1.25 ms on one thread, 1.77 ms on two; wall clock, five
// alternating rounds, OMP_WAIT_POLICY=PASSIVE).
constexpr count_t kSerialBelow = 20000;

#ifdef PYCOMP_WITH_OPENMP
// The most threads a pass starts: the processors this process may run on, or the
// OpenMP default when that is larger (OMP_NUM_THREADS). More would only wait on each
// other, each with its own buffers, and a request of 10^5 threads would crash the
// process. Results do not depend on the thread count.
inline int thread_limit() {
  static const int limit = std::max({1, omp_get_num_procs(), omp_get_max_threads()});
  return limit;
}
#endif

// The thread count for a problem of m comparisons: `requested` (at most thread_limit())
// when > 0, else one thread for small problems and the OpenMP default otherwise.
inline int resolve_threads(int requested, count_t m = kSerialBelow) {
#ifdef PYCOMP_WITH_OPENMP
  if (requested > 0) return std::min(requested, thread_limit());
  return m < kSerialBelow ? 1 : omp_get_max_threads();
#else
  (void)requested;
  (void)m;
  return 1;
#endif
}

// The larger of m and x, or NaN when either is NaN. Every norm that decides
// convergence takes its maximum with this: std::max(m, x) drops an x of NaN, and a
// NaN gradient would then pass for a small one.
inline double max_or_nan(double m, double x) { return (x <= m || m != m) ? m : x; }

// Sum and maximum produced by a parallel loop (the maximum is NaN if any term is).
struct ItemTotals {
  double sum = 0.0;
  double max = 0.0;
};

// Adds up per-chunk totals in chunk order.
inline ItemTotals combine(const std::vector<ItemTotals>& partial) {
  ItemTotals out;
  for (const ItemTotals& p : partial) {
    out.sum += p.sum;
    out.max = max_or_nan(out.max, p.max);
  }
  return out;
}

// Items per chunk of for_items: fixed, so that sums do not depend on the thread count.
constexpr index_t kItemChunk = 4096;

// Parallel loop over [0, count) in fixed blocks of `block`, returning the sum and
// maximum of f(k), reproducible bit for bit whatever the thread count.
// The block arithmetic is done in 64 bits: with a 32-bit Index, count + block - 1 and
// the end of the last block overflow once count is within a block of 2^31. Each block's
// bounds are <= count, so the loop inside it runs in Index.
template <class Index, class F>
ItemTotals for_blocks(Index count, Index block, int threads, F&& f) {
  const std::int64_t total = count, size = block;
  const std::int64_t n_blocks = (total + size - 1) / size;
  std::vector<ItemTotals> partial(static_cast<size_t>(n_blocks));
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
  for (std::int64_t blk = 0; blk < n_blocks; ++blk) {
    ItemTotals acc;
    const Index lo = static_cast<Index>(blk * size);
    const Index hi = static_cast<Index>(std::min(total, (blk + 1) * size));
    for (Index k = lo; k < hi; ++k) {
      const ItemTotals r = f(k);
      acc.sum += r.sum;
      acc.max = max_or_nan(acc.max, r.max);
    }
    partial[static_cast<size_t>(blk)] = acc;
  }
  return combine(partial);
}

// Parallel loop over items returning the sum and maximum of f(a), reproducible
// bit for bit whatever the thread count.
template <class F>
ItemTotals for_items(index_t n, int threads, F&& f) {
  return for_blocks<index_t>(n, kItemChunk, threads, std::forward<F>(f));
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
