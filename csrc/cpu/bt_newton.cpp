// PoE-BT by inexact Newton: a Jacobi-preconditioned conjugate-gradient solve of the
// Hessian (a weighted Laplacian plus the prior's diagonal, applied matrix-free from
// per-comparison curvatures) and a safeguarded step. Each Newton step costs one
// gradient pass (which also yields the curvatures at the new point) plus one
// Hessian-vector pass per CG step.
//
// Step acceptance: a full Newton step is kept when it lowers ||grad F||_inf, which
// needs no evaluation of F (whose log1p per comparison costs as much as the rest of
// the pass). Otherwise the step is decided by an Armijo backtracking search on F.
// F is convex, so any accepted sequence whose gradient reaches tol ends at the optimum.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bt_math.h"
#include "cpu/parallel.h"
#include "cpu/pcg.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
namespace {

struct Workspace {
  Workspace(const Comparisons& c, int threads)
      : grad_buf(c.n, threads), hv_buf(c.n, threads), curv(static_cast<size_t>(c.m)), g(c.n), diag(c.n), prior(c.n),
        dir(c.n), rhs(c.n), trial(c.n), cg(c.n) {}
  ScatterBuffers<2> grad_buf;
  ScatterBuffers<1> hv_buf;
  std::vector<float> curv;  // [m] curvature of each comparison (only steers the search direction)
  std::vector<double> g, diag, prior;
  std::vector<double> dir, rhs, trial;
  PcgScratch cg;
};

struct Eval {
  double F;      // NaN unless computed
  double gnorm;  // ||grad F||_inf
};

// Gradient, Hessian diagonal, prior curvature and per-comparison curvature at s, and F
// when WithLoss.
template <bool WithLoss, class EW>
Eval evaluate(const Comparisons& c, EW ew, double alpha, const double* s, Workspace& ws) {
  const index_t* I = c.i;
  const index_t* J = c.j;
  float* curv = ws.curv.data();
  double* g = ws.g.data();
  double* diag = ws.diag.data();
  double* prior = ws.prior.data();
  double edge_loss = 0.0;
  const ItemTotals items = ws.grad_buf.run(
      c.m,
      [&](count_t k0, count_t k1, double* acc) {
        double d[kEdgeBlock], e[kEdgeBlock];
        const int len = static_cast<int>(k1 - k0);
        for (int t = 0; t < len; ++t) d[t] = s[I[k0 + t]] - s[J[k0 + t]];
#pragma omp simd
        for (int t = 0; t < len; ++t) e[t] = exp_nonpositive(-std::fabs(d[t]));
        double loss = 0.0;
        for (int t = 0; t < len; ++t) {
          const count_t k = k0 + t;
          const BtTerms bt = bt_terms_given_exp<WithLoss>(d[t], e[t], ew.wins(k), ew.total(k));
          const index_t a = I[k], b = J[k];
          acc[2 * a] += bt.grad;
          acc[2 * a + 1] += bt.curv;
          acc[2 * b] -= bt.grad;
          acc[2 * b + 1] += bt.curv;
          curv[k] = static_cast<float>(bt.curv);
          loss += bt.loss;
        }
        return loss;
      },
      [&](index_t a, const double* sums) {
        const BtTerms pr = bt_prior_terms<WithLoss>(s[a], alpha);
        g[a] = sums[0] + pr.grad;
        prior[a] = pr.curv;
        diag[a] = sums[1] + pr.curv;
        return ItemTotals{pr.loss, std::fabs(g[a])};
      },
      &edge_loss);
  return Eval{WithLoss ? edge_loss + items.sum : NAN, items.max};
}

// F at s, without touching the workspace.
template <class EW>
double objective(const Comparisons& c, EW ew, double alpha, const double* s, int threads) {
  double edge = 0.0;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : edge)
#endif
  for (count_t k = 0; k < c.m; ++k) edge += bt_terms<true>(s[c.i[k]] - s[c.j[k]], ew.wins(k), ew.total(k)).loss;
  return edge +
         for_items(c.n, threads, [&](index_t a) { return ItemTotals{bt_prior_terms<true>(s[a], alpha).loss, 0.0}; }).sum;
}

// Solves H x = -g approximately into ws.dir, stopping when ||H x + g||_inf <= target.
// Returns the number of CG steps.
int newton_direction(const Comparisons& c, Workspace& ws, double target, int max_steps, int threads) {
  const index_t n = c.n;
  const index_t* I = c.i;
  const index_t* J = c.j;
  const float* curv = ws.curv.data();
  const double* prior = ws.prior.data();
  const double* g = ws.g.data();
  double* rhs = ws.rhs.data();
  double* dir = ws.dir.data();
  for_items(n, threads, [&](index_t a) {
    rhs[a] = -g[a];
    dir[a] = 0.0;
    return ItemTotals{};
  });
  auto hessian_times = [&](const double* v, double* out) {
    return ws.hv_buf
        .run(
            c.m,
            [&](count_t k0, count_t k1, double* acc) {
              for (count_t k = k0; k < k1; ++k) {
                const index_t a = I[k], b = J[k];
                const double x = static_cast<double>(curv[k]) * (v[a] - v[b]);
                acc[a] += x;
                acc[b] -= x;
              }
              return 0.0;
            },
            [&](index_t a, const double* sums) {
              out[a] = sums[0] + prior[a] * v[a];
              return ItemTotals{v[a] * out[a], 0.0};
            })
        .sum;
  };
  return pcg(n, threads, hessian_times, ws.diag.data(), rhs, dir, true, target, max_steps, ws.cg);
}

}  // namespace

SolveResult bt_newton(const Comparisons& c, const SolveOptions& opt, const GraphInfo& graph) {
  const int threads = resolve_threads(opt.n_threads);
  const index_t n = c.n;
  const bool centred = opt.alpha == 0.0;
  Workspace ws(c, threads);
  SolveResult res;
  res.scores.assign(n, 0.0);
  std::vector<double>& s = res.scores;

  return with_edge_weights(c, [&](auto ew) {
    Eval cur = evaluate<false>(c, ew, opt.alpha, s.data(), ws);
    // The largest conjugate-gradient effort worth spending on one Newton step.
    const int max_cg = static_cast<int>(std::min<long long>(2LL * n + 10, 2000));
    int it = 0;
    bool stalled = false;
    while (cur.gnorm > opt.tol && it < opt.max_iter && !stalled) {
      ++it;
      // Inexact Newton: solve to a relative accuracy that tightens as the gradient shrinks.
      const double eta = std::min(0.5, std::sqrt(cur.gnorm));
      const double target = std::max(eta * cur.gnorm, 0.1 * opt.tol);
      res.n_inner += newton_direction(c, ws, target, max_cg, threads);
      double* dir = ws.dir.data();
      const double* g = ws.g.data();
      const double* diag = ws.diag.data();
      double slope = for_items(n, threads, [&](index_t a) { return ItemTotals{g[a] * dir[a], 0.0}; }).sum;
      if (!(slope < 0)) {
        // CG made no progress (e.g. curvature underflow): preconditioned steepest descent.
        slope = for_items(n, threads, [&](index_t a) {
                  dir[a] = diag[a] > 0 ? -g[a] / diag[a] : -g[a];
                  return ItemTotals{g[a] * dir[a], 0.0};
                }).sum;
        if (!(slope < 0)) break;
      }
      double* trial = ws.trial.data();
      auto step_to = [&](double t) {
        for_items(n, threads, [&](index_t a) {
          trial[a] = s[a] + t * dir[a];
          return ItemTotals{};
        });
      };
      step_to(1.0);
      const Eval full = evaluate<false>(c, ew, opt.alpha, trial, ws);
      if (full.gnorm < cur.gnorm) {
        s.swap(ws.trial);
        cur = full;
      } else {
        // Armijo backtracking on F, with slack for the rounding of F itself.
        const double F0 = objective(c, ew, opt.alpha, s.data(), threads);
        const double slack = 1e-13 * (std::fabs(F0) + 1.0);
        bool accepted = false;
        double t = 1.0;
        for (int halvings = 0; halvings < 40 && !accepted; ++halvings, t *= 0.5) {
          step_to(t);
          const Eval next = evaluate<true>(c, ew, opt.alpha, trial, ws);
          if (std::isfinite(next.F) && next.F <= F0 + 1e-4 * t * slope + slack) {
            s.swap(ws.trial);
            cur = next;
            accepted = true;
          }
        }
        if (!accepted) {
          // No decrease is possible at this precision: restore the state at s and stop.
          cur = evaluate<false>(c, ew, opt.alpha, s.data(), ws);
          stalled = true;
        }
      }
      if (centred) center_components(s, graph, threads);
    }
    res.n_iter = it;
    res.grad_norm = cur.gnorm;
    res.objective = objective(c, ew, opt.alpha, s.data(), threads);
    res.converged = cur.gnorm <= opt.tol;
    return res;
  });
}

}  // namespace cpu
}  // namespace pycomp
