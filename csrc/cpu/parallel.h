// OpenMP building blocks of the CPU backend: per-thread scatter accumulators and
// item-wise reductions. Every pass over the comparisons is one `scatter_pass`.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#ifdef PYCOMP_WITH_OPENMP
#include <omp.h>
#endif

#include "core/common.h"

namespace pycomp {
namespace cpu {

inline int resolve_threads(int requested) {
#ifdef PYCOMP_WITH_OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
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

// Comparisons are processed in blocks of this many, so that the transcendental math
// of a block runs as one vectorised loop between the gathers and the scatters.
constexpr count_t kEdgeBlock = 256;

// Adapts a per-comparison body f(k, acc) -> double to the block interface of ScatterBuffers::run.
template <class F>
auto per_edge(F&& f) {
  return [f](count_t k0, count_t k1, double* acc) {
    double sum = 0.0;
    for (count_t k = k0; k < k1; ++k) sum += f(k, acc);
    return sum;
  };
}

// Sum and maximum produced by the item-wise step of a pass.
struct ItemTotals {
  double sum = 0.0;
  double max = 0.0;
};

// [threads x n x W] accumulators: each thread scatters its share of the comparisons
// into its own slab, so no atomics are needed; the slabs are then added item by item.
template <int W>
class ScatterBuffers {
 public:
  ScatterBuffers(index_t n, int threads) : n_(n), threads_(threads), data_(static_cast<size_t>(threads) * n * W) {}

  int threads() const { return threads_; }

  // Runs edges(k0, k1, acc) -> double over consecutive blocks [k0, k1) of at most
  // kEdgeBlock comparisons covering [0, m), acc being this thread's zeroed [n x W]
  // slab, then item(a, sums) -> ItemTotals for every item a with sums[W] the slabs
  // added up. Returns the item totals; *edge_sum_out gets the sum of the edge values.
  template <class Edges, class Item>
  ItemTotals run(count_t m, Edges&& edges, Item&& item, double* edge_sum_out = nullptr) {
    double edge_sum = 0.0, item_sum = 0.0, item_max = 0.0;
    const index_t n = n_;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel num_threads(threads_) reduction(+ : edge_sum)
#endif
    {
      const int t = thread_id();
      const int T = thread_count();
      double* acc = slab(t);
      std::fill(acc, acc + static_cast<size_t>(n) * W, 0.0);
      const count_t lo = m * t / T, hi = m * (t + 1) / T;
      double local = 0.0;
      for (count_t k0 = lo; k0 < hi; k0 += kEdgeBlock) local += edges(k0, std::min(hi, k0 + kEdgeBlock), acc);
      edge_sum += local;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp barrier
#pragma omp for schedule(static) reduction(+ : item_sum) reduction(max : item_max)
#endif
      for (index_t a = 0; a < n; ++a) {
        double sums[W];
        for (int w = 0; w < W; ++w) sums[w] = 0.0;
        for (int tt = 0; tt < T; ++tt) {
          const double* row = slab(tt) + static_cast<size_t>(a) * W;
          for (int w = 0; w < W; ++w) sums[w] += row[w];
        }
        const ItemTotals r = item(a, sums);
        item_sum += r.sum;
        item_max = std::max(item_max, r.max);
      }
    }
    if (edge_sum_out) *edge_sum_out = edge_sum;
    return ItemTotals{item_sum, item_max};
  }

 private:
  double* slab(int t) { return data_.data() + static_cast<size_t>(t) * n_ * W; }

  index_t n_;
  int threads_;
  std::vector<double> data_;
};

// Parallel loop over items returning the sum and maximum of f(a).
template <class F>
ItemTotals for_items(index_t n, int threads, F&& f) {
  double s = 0.0, mx = 0.0;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : s) reduction(max : mx)
#endif
  for (index_t a = 0; a < n; ++a) {
    const ItemTotals r = f(a);
    s += r.sum;
    mx = std::max(mx, r.max);
  }
  return ItemTotals{s, mx};
}

}  // namespace cpu
}  // namespace pycomp
