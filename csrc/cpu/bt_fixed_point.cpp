// PoE-BT by fixed-point iterations, one pass over the by-item graph per sweep:
//   MM (Hunter 2004, Zermelo):  s_a <- s_a + log(W_a / E_a)
//   Newman (2023):              s_a <- s_a + omega * log(A_a / B_a)
// both in log space (bt_math.h). The pass that computes the update also yields the
// gradient at the current scores, so the stopping test is on ||grad F||_inf.
// Newman's simultaneous update can oscillate on sparse hard data; when the gradient
// norm grows, omega is halved (and slowly restored while it keeps shrinking).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bt_math.h"
#include "cpu/bt_objective.h"
#include "cpu/item_graph.h"
#include "cpu/parallel.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
PYCOMP_ISA_BEGIN

SolveResult bt_fixed_point(const ItemGraph& graph, const SolveOptions& opt, const GraphInfo& info, BtMethod method) {
  const int threads = resolve_threads(opt.n_threads, graph.nnz / 2);
  const index_t n = graph.n;
  const count_t* start = graph.start.data();
  const double alpha = opt.alpha;
  const bool centred = alpha == 0.0;
  SolveResult res;
  res.scores.assign(n, 0.0);
  double* s = res.scores.data();
  std::vector<double> step(n, 0.0);

  return with_entries(graph, [&](auto en) {
    // MM needs each item's win mass W_a (plus alpha virtual wins), which does not change.
    std::vector<double> win_mass;
    if (method == BtMethod::MM) {
      win_mass.resize(n);
      for_rows(graph, threads, [&](index_t a) {
        double w = alpha;
        for (count_t e = start[a]; e < start[a + 1]; ++e) w += en.wins(e);
        win_mass[a] = w;
        return ItemTotals{};
      });
    }
    double gnorm = INFINITY;
    NewmanDamping damping;
    int it = 0;
    while (true) {
      // One pass: the update direction and the gradient at the current scores.
      ItemTotals tot;
      if (method == BtMethod::MM) {
        tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
          const count_t e0 = start[a0], len = start[a1] - e0;
          double* d = scratch(0, len);
          gather_differences(graph, en, a0, a1, s, d);
#pragma omp simd
          for (count_t t = 0; t < len; ++t) d[t] = mm_expected_wins(d[t], en.total(e0 + t));
          ItemTotals out;
          for (index_t a = a0; a < a1; ++a) {
            double expected = mm_expected_wins(s[a], 2.0 * alpha);
            for (count_t e = start[a] - e0; e < start[a + 1] - e0; ++e) expected += d[e];
            step[a] = (win_mass[a] > 0 && expected > 0) ? std::log(win_mass[a] / expected) : 0.0;
            out.max = max_or_nan(out.max, std::fabs(expected - win_mass[a]));
          }
          return out;
        });
      } else {
        tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
          const count_t e0 = start[a0], len = start[a1] - e0;
          double* d = scratch(0, len);
          double* down = scratch(1, len);
          gather_differences(graph, en, a0, a1, s, d);
#pragma omp simd
          for (count_t t = 0; t < len; ++t) {
            const NewmanTerms nt = newman_terms(d[t], en.wins(e0 + t), en.total(e0 + t));
            d[t] = nt.up;
            down[t] = nt.down;
          }
          ItemTotals out;
          for (index_t a = a0; a < a1; ++a) {
            const Sigmoid own = sigmoid_parts(s[a]);
            double up_sum = alpha * own.neg, down_sum = alpha * own.pos;
            for (count_t e = start[a] - e0; e < start[a + 1] - e0; ++e) {
              up_sum += d[e];
              down_sum += down[e];
            }
            step[a] = (up_sum > 0 && down_sum > 0) ? std::log(up_sum / down_sum) : 0.0;
            out.max = max_or_nan(out.max, std::fabs(down_sum - up_sum));
          }
          return out;
        });
      }
      gnorm = tot.max;
      // A NaN gradient (an overflow) stays NaN: stop, unconverged.
      if (gnorm <= opt.tol || it >= opt.max_iter || std::isnan(gnorm)) break;
      if (method == BtMethod::Newman) damping.update(gnorm);
      const double w = damping.omega;
      for_items(n, threads, [&](index_t a) {
        s[a] += w * step[a];
        return ItemTotals{};
      });
      if (centred) center_components(res.scores, info, threads);
      ++it;
    }
    res.n_iter = it;
    res.grad_norm = gnorm;
    res.converged = gnorm <= opt.tol;
    res.objective = opt.objective ? bt_objective(graph, en, alpha, s, threads) : NAN;
    return res;
  });
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
