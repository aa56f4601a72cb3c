// OpenMP building blocks of the CPU backend: per-thread scatter accumulators and
// item-wise reductions. Every pass over the comparisons is one `scatter_pass`.
#pragma once

#include <algorithm>
#include <cmath>
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
// passes take microseconds, and waking a thread team would dominate.
constexpr count_t kSerialBelow = 20000;

// The thread count for a problem of m comparisons: `requested` when > 0, else one
// thread for small problems and the OpenMP default otherwise.
inline int resolve_threads(int requested, count_t m = kSerialBelow) {
#ifdef PYCOMP_WITH_OPENMP
  if (requested > 0) return requested;
  return m < kSerialBelow ? 1 : omp_get_max_threads();
#else
  (void)requested;
  (void)m;
  return 1;
#endif
}

inline int thread_id() {
#ifdef PYCOMP_WITH_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int thread_count() {
#ifdef PYCOMP_WITH_OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Sum and maximum produced by a parallel loop.
struct ItemTotals {
  double sum = 0.0;
  double max = 0.0;
};

// Adds up per-chunk totals in chunk order.
inline ItemTotals combine(const std::vector<ItemTotals>& partial) {
  ItemTotals out;
  for (const ItemTotals& p : partial) {
    out.sum += p.sum;
    out.max = std::max(out.max, p.max);
  }
  return out;
}

// Items per chunk of for_items: fixed, so that sums do not depend on the thread count.
constexpr index_t kItemChunk = 4096;

// Parallel loop over [0, count) in fixed blocks of `block`, returning the sum and
// maximum of f(k), reproducible bit for bit whatever the thread count.
template <class Index, class F>
ItemTotals for_blocks(Index count, Index block, int threads, F&& f) {
  const Index n_blocks = (count + block - 1) / block;
  std::vector<ItemTotals> partial(static_cast<size_t>(n_blocks));
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
  for (Index blk = 0; blk < n_blocks; ++blk) {
    ItemTotals acc;
    const Index hi = std::min(count, (blk + 1) * block);
    for (Index k = blk * block; k < hi; ++k) {
      const ItemTotals r = f(k);
      acc.sum += r.sum;
      acc.max = std::max(acc.max, r.max);
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
