// PoE-BT by fixed-point iterations, one pass over the comparisons per sweep:
//   MM (Hunter 2004, Zermelo):  s_a <- s_a + log(W_a / E_a)
//   Newman (2023):              s_a <- s_a + omega * log(A_a / B_a)
// Both are evaluated in log space (bt_math.h). The pass that computes the update also
// yields the gradient at the current scores, so the stopping test is on ||grad F||_inf.
// Newman's simultaneous update can oscillate on sparse hard data; when the gradient
// norm grows, omega is halved (and slowly restored while it keeps shrinking).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bt_math.h"
#include "cpu/parallel.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
namespace {

// F at s (one pass).
template <class EW>
double bt_objective(const Comparisons& c, EW ew, double alpha, const double* s, int threads) {
  double edge = 0.0;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : edge)
#endif
  for (count_t k = 0; k < c.m; ++k) edge += bt_terms<true>(s[c.i[k]] - s[c.j[k]], ew.wins(k), ew.total(k)).loss;
  const double items =
      for_items(c.n, threads, [&](index_t a) { return ItemTotals{bt_prior_terms<true>(s[a], alpha).loss, 0.0}; }).sum;
  return edge + items;
}

}  // namespace

SolveResult bt_fixed_point(const Comparisons& c, const SolveOptions& opt, const GraphInfo& graph, BtMethod method) {
  const int threads = resolve_threads(opt.n_threads);
  const index_t n = c.n;
  const index_t* I = c.i;
  const index_t* J = c.j;
  const double alpha = opt.alpha;
  const bool centred = alpha == 0.0;
  SolveResult res;
  res.scores.assign(n, 0.0);
  double* s = res.scores.data();
  std::vector<double> step(n, 0.0);

  return with_edge_weights(c, [&](auto ew) {
    // MM needs each item's win mass W_a (plus alpha virtual wins), which does not change.
    std::vector<double> win_mass;
    if (method == BtMethod::MM) {
      win_mass.assign(n, 0.0);
      ScatterBuffers<1> buf(n, threads);
      buf.run(
          c.m,
          per_edge([&](count_t k, double* acc) {
            const double wins = ew.wins(k);
            acc[I[k]] += wins;
            acc[J[k]] += ew.total(k) - wins;
            return 0.0;
          }),
          [&](index_t a, const double* sums) {
            win_mass[a] = sums[0] + alpha;
            return ItemTotals{};
          });
    }
    ScatterBuffers<1> mm_buf(method == BtMethod::MM ? n : 0, threads);
    ScatterBuffers<2> newman_buf(method == BtMethod::Newman ? n : 0, threads);
    double omega = 1.0, prev_gnorm = INFINITY;
    int shrinking = 0;
    int it = 0;
    double gnorm = INFINITY;
    while (true) {
      // One pass: the update direction and the gradient at the current scores.
      ItemTotals tot;
      if (method == BtMethod::MM) {
        tot = mm_buf.run(
            c.m,
            [&](count_t k0, count_t k1, double* acc) {
              double sig[kEdgeBlock];
              const int len = static_cast<int>(k1 - k0);
              for (int t = 0; t < len; ++t) sig[t] = s[I[k0 + t]] - s[J[k0 + t]];
#pragma omp simd
              for (int t = 0; t < len; ++t) sig[t] = sigmoid_parts(sig[t]).pos;
              for (int t = 0; t < len; ++t) {
                const count_t k = k0 + t;
                const double total = ew.total(k);
                const double e = total * sig[t];
                acc[I[k]] += e;
                acc[J[k]] += total - e;
              }
              return 0.0;
            },
            [&](index_t a, const double* sums) {
              const double expected = sums[0] + 2.0 * alpha * sigmoid_parts(s[a]).pos;
              const double g = expected - win_mass[a];
              step[a] = (win_mass[a] > 0 && expected > 0) ? std::log(win_mass[a] / expected) : 0.0;
              return ItemTotals{0.0, std::fabs(g)};
            });
      } else {
        tot = newman_buf.run(
            c.m,
            [&](count_t k0, count_t k1, double* acc) {
              double sig[kEdgeBlock];
              const int len = static_cast<int>(k1 - k0);
              for (int t = 0; t < len; ++t) sig[t] = s[I[k0 + t]] - s[J[k0 + t]];
#pragma omp simd
              for (int t = 0; t < len; ++t) sig[t] = sigmoid_parts(sig[t]).pos;
              for (int t = 0; t < len; ++t) {
                const count_t k = k0 + t;
                const NewmanTerms nt = newman_terms_given_sigmoid(sig[t], ew.wins(k), ew.total(k));
                acc[2 * I[k]] += nt.up;
                acc[2 * I[k] + 1] += nt.down;
                acc[2 * J[k]] += nt.down;
                acc[2 * J[k] + 1] += nt.up;
              }
              return 0.0;
            },
            [&](index_t a, const double* sums) {
              const Sigmoid sp = sigmoid_parts(s[a]);
              const double A = sums[0] + alpha * sp.neg;
              const double B = sums[1] + alpha * sp.pos;
              step[a] = (A > 0 && B > 0) ? std::log(A / B) : 0.0;
              return ItemTotals{0.0, std::fabs(B - A)};
            });
      }
      gnorm = tot.max;
      if (gnorm <= opt.tol || it >= opt.max_iter) break;
      if (method == BtMethod::Newman) {
        if (gnorm > prev_gnorm) {
          omega = std::max(omega * 0.5, 1.0 / 1024);
          shrinking = 0;
        } else if (++shrinking >= 8 && omega < 1.0) {
          omega = std::min(1.0, omega * 1.25);
          shrinking = 0;
        }
        prev_gnorm = gnorm;
      }
      const double w = omega;
      for_items(n, threads, [&](index_t a) {
        s[a] += w * step[a];
        return ItemTotals{};
      });
      if (centred) center_components(res.scores, graph, threads);
      ++it;
    }
    res.n_iter = it;
    res.grad_norm = gnorm;
    res.converged = gnorm <= opt.tol;
    res.objective = bt_objective(c, ew, alpha, s, threads);
    return res;
  });
}

}  // namespace cpu
}  // namespace pycomp
