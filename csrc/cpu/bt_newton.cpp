// PoE-BT by inexact Newton: a Jacobi-preconditioned conjugate-gradient solve of the
// Hessian (a weighted Laplacian plus the prior's diagonal, applied matrix-free from
// per-entry curvatures) and a safeguarded step. Each Newton step costs one gradient
// pass over the by-item graph (which also yields the curvatures at the new point)
// plus one Hessian-vector pass per CG step.
//
// The gradient pass needs no transcendental function per comparison: it forms
// exp(-(s_a - s_b)) from per-item exponentials. A full Newton step is accepted when
// it shrinks the gradient enough (no F needed); otherwise an Armijo backtracking
// search on F (a pass with log1p per entry) decides.

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bt_math.h"
#include "cpu/bt_objective.h"
#include "cpu/item_graph.h"
#include "cpu/parallel.h"
#include "cpu/pcg.h"
#include "cpu/row_kernels.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
PYCOMP_ISA_BEGIN
namespace {

struct Workspace {
  Workspace(const ItemGraph& graph)
      : curv(static_cast<size_t>(graph.nnz)), g(graph.n), diag(graph.n), prior(graph.n), up(graph.n), down(graph.n), weight(graph.n),
        dir(graph.n), trial(graph.n), cg(graph.n, true) {}
  big_vector<float> curv;  // [nnz] curvature of each entry (only steers the search direction)
  big_vector<double> g, diag, prior;
  big_vector<double> up, down;  // exp(s), exp(-s) of the gradient pass
  big_vector<double> weight;    // total weight of each item's comparisons
  big_vector<double> dir;
  std::vector<double> trial;    // swapped with the scores
  PcgScratch cg;
};

struct Eval {
  double F;      // NaN unless computed
  double gnorm;  // ||grad F||_inf
  double slope = NAN;  // grad F . dir when a direction was given to the pass, else NaN
};

// For the rows [a0, a1) of a chunk whose per-entry gradient and curvature terms (indexed
// from the chunk's first entry) are gr and cu: g, the Hessian diagonal and the prior
// curvature of each item, with the prior added. Returns the prior's loss (when WithLoss)
// and the largest |g|.
template <bool WithLoss>
ItemTotals sum_rows(const count_t* start, index_t a0, index_t a1, const double* gr, const double* cu, const double* s,
                    double alpha, double* g, double* diag, double* prior) {
  const count_t e0 = start[a0];
  ItemTotals out;
  for (index_t a = a0; a < a1; ++a) {
    double grad = 0.0, hess = 0.0;
    // Vector partial sums: a single running sum would wait on the add latency per entry.
#pragma omp simd reduction(+ : grad, hess)
    for (count_t e = start[a] - e0; e < start[a + 1] - e0; ++e) {
      grad += gr[e];
      hess += cu[e];
    }
    const BtTerms pr = bt_prior_terms<WithLoss>(s[a], alpha);
    g[a] = grad + pr.grad;
    prior[a] = pr.curv;
    diag[a] = hess + pr.curv;
    out.sum += pr.loss;
    out.max = max_or_nan(out.max, std::fabs(g[a]));
  }
  return out;
}

// Gradient, Hessian diagonal, prior curvature and per-entry curvature at s, and F when WithLoss.
template <bool WithLoss, class E>
Eval evaluate(const ItemGraph& graph, E en, double alpha, const double* s, Workspace& ws, int threads) {
  float* curv = ws.curv.data();
  double* g = ws.g.data();
  double* diag = ws.diag.data();
  double* prior = ws.prior.data();
  const count_t* start = graph.start.data();
  const ItemTotals tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
    const count_t e0 = start[a0], len = start[a1] - e0;
    double* d = scratch(0, len);
    double* gr = scratch(1, len);
    double* cu = scratch(2, len);
    gather_differences(graph, en, a0, a1, s, d);
    // Local copies: captured references would be reloaded every iteration (they might
    // alias the stores), which stops vectorisation.
    const E local = en.offset(e0);
    float* curv_out = curv + e0;
    double loss = 0.0;
#pragma omp simd reduction(+ : loss)
    for (count_t t = 0; t < len; ++t) {
      const BtTerms bt = bt_terms<WithLoss>(d[t], local.wins(t), local.total(t));
      gr[t] = bt.grad;
      cu[t] = bt.curv;
      curv_out[t] = static_cast<float>(bt.curv);
      loss += bt.loss;
    }
    // Each comparison's loss is seen from both of its rows.
    ItemTotals out = sum_rows<WithLoss>(start, a0, a1, gr, cu, s, alpha, g, diag, prior);
    out.sum += 0.5 * loss;
    return out;
  });
  return Eval{WithLoss ? tot.sum : NAN, tot.max};
}

// Scores up to this size in absolute value take the gradient pass by per-item
// exponentials: exp(s_b) * exp(-s_a) then stays a normal number for every pair.
constexpr double kRatioPathMaxScore = 300.0;

// Stores exp(x) and exp(-x) of an item's score x for the gradient pass (1 when |x| is
// too large: that pass is then not used) and returns |x|.
inline double store_exponentials(double x, double* up, double* down) {
  const double y = std::fabs(x) <= kRatioPathMaxScore ? x : 0.0;
  *up = exp_in_range(y);
  *down = exp_in_range(-y);
  return std::fabs(x);
}

// The gradient, Hessian diagonal, prior curvature and per-entry curvature from the
// per-item exponentials in ws.up and ws.down (see store_exponentials), like
// evaluate<false> but with no transcendental function per entry:
// exp(-(s_a - s_b)) = exp(s_b) * exp(-s_a). With `dir`, also returns grad F . dir.
template <class E>
Eval gradient_from_exponentials(const ItemGraph& graph, E en, double alpha, Workspace& ws, int threads,
                                const double* dir) {
  const double* up = ws.up.data();
  const double* down = ws.down.data();
  float* curv = ws.curv.data();
  double* g = ws.g.data();
  double* diag = ws.diag.data();
  double* prior = ws.prior.data();
  const count_t* start = graph.start.data();
  const bool prefetch = gathers_miss_l2(graph.n);
  const ItemTotals tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
    ItemTotals out;
    for (index_t a = a0; a < a1; ++a) {
      const RowSums row = prefetch ? row_gradient<true>(en, curv, start[a], start[a + 1], up, down[a])
                                   : row_gradient<false>(en, curv, start[a], start[a + 1], up, down[a]);
      // The prior is a comparison with d = s_a, wins = alpha, total = 2 alpha: r = exp(-s_a).
      const BtTerms pr = bt_terms_given_ratio(down[a], alpha, 2.0 * alpha);
      g[a] = row.grad + pr.grad;
      prior[a] = pr.curv;
      diag[a] = row.curv + pr.curv;
      out.max = max_or_nan(out.max, std::fabs(g[a]));
      if (dir) out.sum += g[a] * dir[a];
    }
    return out;
  });
  return Eval{NAN, tot.max, dir ? tot.sum : NAN};
}

// The same at s: the exponentials first, or evaluate<false> when some |s_a| is too large
// for their products.
template <class E>
Eval evaluate_gradient(const ItemGraph& graph, E en, double alpha, const double* s, Workspace& ws, int threads) {
  double* up = ws.up.data();
  double* down = ws.down.data();
  const double largest =
      for_items(graph.n, threads, [&](index_t a) { return ItemTotals{0.0, store_exponentials(s[a], up + a, down + a)}; })
          .max;
  if (!(largest <= kRatioPathMaxScore)) return evaluate<false>(graph, en, alpha, s, ws, threads);
  return gradient_from_exponentials(graph, en, alpha, ws, threads, nullptr);
}

// The same at s = 0, the starting point, where every ratio is 1: a pass with no gathers.
template <class E>
Eval evaluate_gradient_at_zero(const ItemGraph& graph, E en, double alpha, Workspace& ws, int threads) {
  float* curv = ws.curv.data();
  double* g = ws.g.data();
  double* diag = ws.diag.data();
  double* prior = ws.prior.data();
  const count_t* start = graph.start.data();
  const BtTerms pr = bt_terms_given_ratio(1.0, alpha, 2.0 * alpha);
  const ItemTotals tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
    // Local copies: captured references would be reloaded after every store (they
    // might alias it), which stops vectorisation.
    const E ent = en;
    float* cv = curv;
    ItemTotals out;
    for (index_t a = a0; a < a1; ++a) {
      // With r = 1: grad = total / 2 - wins and curv = total / 4 for every entry.
      double wins = 0.0, total = 0.0;
      const count_t end = start[a + 1];
#pragma omp simd reduction(+ : wins, total)
      for (count_t e = start[a]; e < end; ++e) {
        cv[e] = static_cast<float>(0.25 * ent.total(e));
        wins += ent.wins(e);
        total += ent.total(e);
      }
      const double grad = 0.5 * total - wins, hess = 0.25 * total;
      g[a] = grad + pr.grad;
      prior[a] = pr.curv;
      diag[a] = hess + pr.curv;
      out.max = max_or_nan(out.max, std::fabs(g[a]));
    }
    return out;
  });
  return Eval{NAN, tot.max};
}

// sqrt(3) / 18, the largest |third derivative| of log(1 + exp(-d)), over 12 (the trapezoid rule's error).
constexpr double kTrapezoidCoefficient = 0.0962250448649376 / 12.0;

// Solves H x = -g approximately into ws.dir, stopping when ||H x + g||_inf <= target.
// Returns the number of CG steps.
template <class E>
int newton_direction(const ItemGraph& graph, E en, Workspace& ws, double target, int max_steps, int threads) {
  const index_t n = graph.n;
  const count_t* start = graph.start.data();
  const float* curv = ws.curv.data();
  const double* prior = ws.prior.data();
  const bool prefetch = gathers_miss_l2(n);
  // The neighbours' values are gathered in float (the row's own in double): the
  // direction only steers the step, which the exact gradient then checks.
  auto hessian_times = [&](const double* v, const float* v_float, auto&& emit) {
    return for_chunks(graph, threads, [&](index_t a0, index_t a1) {
             // Local copies: captured references would be reloaded on every entry.
             const E ent = en;
             const float* cv = curv;
             const double* vv = v;
             const float* vf = v_float;
             const count_t* st = start;
             ItemTotals out;
             for (index_t a = a0; a < a1; ++a) {
               const double va = vv[a];
               const double acc = !vf        ? row_hessian_times<true>(ent, cv, st[a], st[a + 1], vv, va)
                                  : prefetch ? row_hessian_times<true>(ent, cv, st[a], st[a + 1], vf, va)
                                             : row_hessian_times<false>(ent, cv, st[a], st[a + 1], vf, va);
               out.sum += emit(a, acc + prior[a] * va);
             }
             return out;
           })
        .sum;
  };
  return pcg(n, threads, hessian_times, ws.diag.data(), ws.g.data(), ws.dir.data(), true, target, max_steps, ws.cg,
             nullptr, -1.0);
}

}  // namespace

SolveResult bt_newton(const ItemGraph& graph, const SolveOptions& opt, const GraphInfo& info) {
  const int threads = resolve_threads(opt.n_threads, graph.nnz / 2);
  const index_t n = graph.n;
  const bool centred = opt.alpha == 0.0;
  Workspace ws(graph);
  SolveResult res;
  res.scores.assign(n, 0.0);
  std::vector<double>& s = res.scores;

  return with_entries(graph, [&](auto en) {
    const count_t* start = graph.start.data();
    double* weight = ws.weight.data();
    for_items(n, threads, [&](index_t a) {
      double total = static_cast<double>(start[a + 1] - start[a]);  // weights of 1 unless Weighted
      if (graph.kind == EntryKind::Weighted) {
        total = 0.0;
        for (count_t e = start[a]; e < start[a + 1]; ++e) total += en.total(e);
      }
      weight[a] = total;
      return ItemTotals{};
    });
    Eval cur = evaluate_gradient_at_zero(graph, en, opt.alpha, ws, threads);  // s starts at 0
    // The largest conjugate-gradient effort worth spending on one Newton step.
    const int max_cg = static_cast<int>(std::min<long long>(2LL * n + 10, 2000));
    int it = 0;
    bool stalled = false;
    while (cur.gnorm > opt.tol && it < opt.max_iter && !stalled) {
      ++it;
      // Inexact Newton: solve to a relative accuracy that tightens as the gradient shrinks.
      // (quadratic forcing: measured 10% fewer passes than sqrt forcing on random graphs)
      const double eta = std::min(0.5, cur.gnorm);
      const double target = std::max(eta * cur.gnorm, 0.1 * opt.tol);
      res.n_inner += newton_direction(graph, en, ws, target, max_cg, threads);
      double* dir = ws.dir.data();
      const double* g = ws.g.data();
      const double* diag = ws.diag.data();
      double* trial = ws.trial.data();
      auto step_to = [&](double t) {
        for_items(n, threads, [&](index_t a) {
          trial[a] = s[a] + t * dir[a];
          return ItemTotals{};
        });
      };
      // phi'(0) = g . d, the full step s + d and its exponentials, in one pass.
      double* up = ws.up.data();
      double* down = ws.down.data();
      const ItemTotals stepped = for_items(n, threads, [&](index_t a) {
        trial[a] = s[a] + dir[a];
        return ItemTotals{g[a] * dir[a], store_exponentials(trial[a], up + a, down + a)};
      });
      double slope = stepped.sum;
      bool exponentials_ready = stepped.max <= kRatioPathMaxScore;
      if (!(slope < 0)) {
        // CG made no progress (e.g. curvature underflow): preconditioned steepest descent.
        slope = for_items(n, threads, [&](index_t a) {
                  dir[a] = diag[a] > 0 ? -g[a] / diag[a] : -g[a];
                  return ItemTotals{g[a] * dir[a], 0.0};
                }).sum;
        if (!(slope < 0)) break;
        step_to(1.0);
        exponentials_ready = false;
      }
      // The full step is taken without computing F when
      //  - it reaches the tolerance, or
      //  - the slope at its end, phi'(1) = g(s + d) . d, is <= 1e-4 * phi'(0): F is convex
      //    along the step, so F(s + d) <= F(s) + phi'(1), which is Armijo's condition, or
      //  - the trapezoid bound above certifies Armijo's condition (near the optimum the
      //    steps are short and the cubic term is negligible), or
      //  - it shrinks the gradient as an inexact Newton step should (Eisenstat & Walker
      //    1994: ||g+|| <= (1 - 1e-4 (1 - eta)) ||g||, in the norm of the CG target) and
      //    phi'(1) <= 0, so that F does not increase (near the optimum phi'(1) is tiny
      //    and of either sign; this takes half of those steps without computing F).
      // Otherwise an Armijo backtracking search on F decides, with slack for the
      // rounding of F itself.
      // Trapezoid bound of the change in F along the step: with |loss'''| <= total * sqrt(3) / 18
      // for every comparison and |d_a - d_b|^3 <= 4 (|d_a|^3 + |d_b|^3),
      //   F(s + d) - F(s) <= (phi'(0) + phi'(1)) / 2 + cubic.
      // (computed only when the first two tests fail).
      const double* weight = ws.weight.data();
      auto cubic = [&]() {
        return kTrapezoidCoefficient * for_items(n, threads, [&](index_t a) {
                                         const double x = std::fabs(dir[a]);
                                         return ItemTotals{(4.0 * weight[a] + 2.0 * opt.alpha) * x * x * x, 0.0};
                                       }).sum;
      };
      const Eval full = exponentials_ready ? gradient_from_exponentials(graph, en, opt.alpha, ws, threads, dir)
                                           : evaluate_gradient(graph, en, opt.alpha, trial, ws, threads);
      const double end_slope = std::isnan(full.slope)
                                   ? for_items(n, threads, [&](index_t a) { return ItemTotals{g[a] * dir[a], 0.0}; }).sum
                                   : full.slope;
      bool accepted = std::isfinite(end_slope) &&
                      (full.gnorm <= opt.tol || end_slope <= 1e-4 * slope ||
                       (full.gnorm <= (1.0 - 1e-4 * (1.0 - eta)) * cur.gnorm && end_slope <= 0.0) ||
                       0.5 * (slope + end_slope) + cubic() <= 1e-4 * slope);
      if (accepted) {
        s.swap(ws.trial);
        cur = full;
      } else {
        if (std::isnan(cur.F)) cur.F = bt_objective(graph, en, opt.alpha, s.data(), threads);
        const double slack = 1e-13 * (std::fabs(cur.F) + 1.0);
        double t = 1.0;
        for (int halvings = 0; halvings < 60 && !accepted; ++halvings, t *= 0.5) {
          if (halvings > 0) step_to(t);
          const Eval next = evaluate<true>(graph, en, opt.alpha, trial, ws, threads);
          if (std::isfinite(next.F) && next.F <= cur.F + 1e-4 * t * slope + slack) {
            s.swap(ws.trial);
            cur = next;
            accepted = true;
          }
        }
      }
      if (!accepted) {
        // No decrease is possible at this precision: restore the state at s and stop.
        cur = evaluate<true>(graph, en, opt.alpha, s.data(), ws, threads);
        stalled = true;
      }
      if (centred) center_components(s, info, threads);
    }
    res.n_iter = it;
    res.grad_norm = cur.gnorm;
    res.objective = !std::isnan(cur.F) ? cur.F : opt.objective ? bt_objective(graph, en, opt.alpha, s.data(), threads) : NAN;
    res.converged = cur.gnorm <= opt.tol;
    return res;
  });
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
