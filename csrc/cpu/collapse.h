// Arena-shaped data: repeated comparisons of the same pair collapsed into one weighted
// comparison, and the resampling units of the bootstrap.
//
// Both PoE objectives are sums over comparisons of terms linear in (w p, w) for a fixed
// score difference d (BT: -[w p log sig(d) + (w - w p) log sig(-d)]; Gaussian:
// w/2 (d - (p - beta))^2 = w/2 d^2 - w (p - beta) d + const), so summing w p and w over
// the comparisons of a pair gives the same gradient and Hessian everywhere (BT: the same
// objective; Gaussian: the same up to a constant), hence the same optimum.
#pragma once

#include <cstdint>
#include <vector>

#include "core/common.h"

namespace pycomp {
namespace cpu {

struct Collapsed {
  index_t n = 0;
  count_t m = 0;                    // comparisons read
  // Unique pairs a < b, in increasing (a, b) order, with p oriented as "a beats b".
  std::vector<index_t> a, b;        // [P]
  std::vector<double> wins, total;  // [P] sum w p, sum w
  std::vector<double> q0, q1, q2;   // [P] sum w^2, sum w^2 p, sum w^2 p^2 (the sandwich's meat)
  // Resampling units: drawing the comparisons (or the clusters) with replacement is
  // a multinomial draw of `draws` units, unit u holding unit_count[u] identical copies.
  // Unit u adds unit_wins[e] and unit_total[e] to pair unit_pair[e] for each of its
  // entries e in [unit_start[u], unit_start[u + 1]), once per copy drawn.
  std::vector<count_t> unit_count;   // [U]
  std::vector<count_t> unit_start;   // [U + 1]
  std::vector<count_t> unit_pair;    // [E]
  std::vector<double> unit_wins, unit_total;  // [E]
  count_t draws = 0;
  bool categorical = false;  // units are (pair, outcome) with p in {0, 1/2, 1} and no weights
};

// Collapses m validated comparisons between n items. cluster (may be nullptr) gives
// each comparison's cluster in [0, n_clusters): the units are then the clusters.
// with_units = false skips the units (a solve needs only the pair sums).
template <class Index>
Collapsed collapse_comparisons(const Index* i, const Index* j, const double* p, const double* w, count_t m,
                               index_t n, const std::int64_t* cluster, std::int64_t n_clusters, bool with_units,
                               int threads);

}  // namespace cpu
}  // namespace pycomp
