// A one-pass local approximation of diag(H^-1) for the Laplacian-plus-diagonal Hessians
// of the PoE solvers. Exact Schur complement: [H^-1]_aa = 1 / (H_aa - h_a^T H_{-a}^-1 h_a);
// replacing H_{-a}^-1 by its diagonal 1 / H_bb gives var_a ~= 1 / (H_aa - sum_b C_ab^2 / H_bb),
// exact for a star and accurate on well-mixed graphs (the tests measure it).
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/bt_math.h"
#include "cpu/parallel.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {

std::vector<double> local_variance(const Comparisons& c, const double* curv, const double* prior, int n_threads) {
  const int threads = n_threads;
  const index_t n = c.n;
  // Sum the curvature of repeated pairs: the formula needs C_ab per distinct neighbour.
  std::vector<std::pair<std::uint64_t, double>> pairs(static_cast<size_t>(c.m));
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
  for (count_t k = 0; k < c.m; ++k) {
    const std::uint64_t lo = static_cast<std::uint64_t>(std::min(c.i[k], c.j[k]));
    const std::uint64_t hi = static_cast<std::uint64_t>(std::max(c.i[k], c.j[k]));
    pairs[k] = {(lo << 32) | hi, curv[k]};
  }
  std::sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  size_t unique = 0;
  for (size_t k = 0; k < pairs.size(); ++k) {
    if (unique > 0 && pairs[unique - 1].first == pairs[k].first) {
      pairs[unique - 1].second += pairs[k].second;
    } else {
      pairs[unique++] = pairs[k];
    }
  }
  pairs.resize(unique);
  auto first_of = [](std::uint64_t key) { return static_cast<index_t>(key >> 32); };
  auto second_of = [](std::uint64_t key) { return static_cast<index_t>(key & 0xffffffffu); };

  std::vector<double> diag(prior, prior + n), leak(n, 0.0), var(n);
  for (const auto& e : pairs) {
    diag[first_of(e.first)] += e.second;
    diag[second_of(e.first)] += e.second;
  }
  for (const auto& e : pairs) {
    const index_t a = first_of(e.first), b = second_of(e.first);
    const double c2 = e.second * e.second;
    if (diag[b] > 0) leak[a] += c2 / diag[b];
    if (diag[a] > 0) leak[b] += c2 / diag[a];
  }
  for_items(n, threads, [&](index_t a) {
    const double schur = diag[a] - leak[a];
    // The approximation can fail where a tiny component makes H_{-a} nearly singular;
    // fall back to the lower bound 1 / H_aa there.
    var[a] = schur > 1e-12 * diag[a] ? 1.0 / schur : (diag[a] > 0 ? 1.0 / diag[a] : INFINITY);
    return ItemTotals{};
  });
  return var;
}

void bt_curvature(const Comparisons& c, const double* s, double alpha, int threads, double* curv, double* prior) {
  with_edge_weights(c, [&](auto ew) {
    return for_blocks<count_t>(c.m, kItemChunk, threads, [&](count_t k) {
      curv[k] = bt_terms<false>(s[c.i[k]] - s[c.j[k]], 0.0, ew.total(k)).curv;
      return ItemTotals{};
    });
  });
  for_items(c.n, threads, [&](index_t a) {
    prior[a] = bt_prior_terms<false>(s[a], alpha).curv;
    return ItemTotals{};
  });
}

}  // namespace cpu
}  // namespace pycomp
