// PoE-BT by inexact Newton: a Jacobi-preconditioned conjugate-gradient solve of the
// Hessian (a weighted Laplacian plus the prior's diagonal, applied matrix-free from
// per-entry curvatures) and a safeguarded step.
//
// Every pass below is a function whose inputs are const and whose outputs are named
// parameters; the solver loop (bt_newton, at the end) decides from the values the
// passes return. One Newton step is:
//   newton_direction   dir ~= -H^-1 g, from the Derivatives at s        (CG passes)
//   full_step          trial = s + dir, phi'(0) = g . dir, exp(+-trial)  (one item pass)
//   gradient_at_trial  the Derivatives at trial, phi'(1) = g(trial) . dir (one graph pass)
//   full_step_certified / line_search   accept trial, or backtrack on F
// A gradient pass needs no transcendental function per comparison: it forms
// exp(-(s_a - s_b)) from per-item exponentials (gradient_from_exponentials).

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

// The derivatives of F at one point. A gradient pass writes all four arrays; the
// solver keeps one set, which holds the derivatives at s whenever a direction is
// computed (a pass at a trial point overwrites it, and the trial becomes s or the
// next pass overwrites it again).
struct Derivatives {
  // curv first: after a Hard graph's build it reuses the build's freed staging block.
  explicit Derivatives(const ItemGraph& graph)
      : curv(static_cast<size_t>(graph.nnz)), g(graph.n), diag(graph.n), prior(graph.n) {}
  big_vector<float> curv;    // [nnz] each entry's curvature (only steers the direction)
  big_vector<double> g;      // [n] grad F
  big_vector<double> diag;   // [n] diagonal of the Hessian
  big_vector<double> prior;  // [n] the prior's curvature (the Hessian's diagonal part)
};

// The per-item arrays of a Derivatives, as the passes write them.
struct ItemRows {
  explicit ItemRows(Derivatives& d) : g(d.g.data()), diag(d.diag.data()), prior(d.prior.data()) {}
  double* g;
  double* diag;
  double* prior;
  // Item a's entries from its row's summed gradient and curvature terms and its prior's
  // terms; returns |g_a|.
  double finish(index_t a, double grad, double curv, const BtTerms& pr) const {
    g[a] = grad + pr.grad;
    prior[a] = pr.curv;
    diag[a] = curv + pr.curv;
    return std::fabs(g[a]);
  }
};

// exp(s_a) and exp(-s_a) of a point's scores (see store_exponentials).
struct Exponentials {
  explicit Exponentials(index_t n) : up(n), down(n) {}
  big_vector<double> up, down;
};

// What a gradient pass returns.
struct PassResult {
  double F = NAN;      // F at the point, NaN unless the pass computed it
  double gnorm = NAN;  // ||grad F||_inf
  double slope = NAN;  // grad F . dir when the pass was given a direction
};

// Scores up to this size in absolute value take the gradient pass by per-item
// exponentials: exp(s_b) * exp(-s_a) then stays a normal number for every pair.
constexpr double kRatioPathMaxScore = 300.0;

// Stores exp(x) and exp(-x) of an item's score x (1 when |x| is too large for the
// ratio path, which is then not used) and returns |x|.
inline double store_exponentials(double x, double* up, double* down) {
  const double y = std::fabs(x) <= kRatioPathMaxScore ? x : 0.0;
  *up = exp_in_range(y);
  *down = exp_in_range(-y);
  return std::fabs(x);
}

// sum_a x_a y_a, in for_items' fixed block order.
double dot(index_t n, int threads, const double* x, const double* y) {
  return for_items(n, threads, [&](index_t a) { return ItemTotals{x[a] * y[a], 0.0}; }).sum;
}

// For the rows [a0, a1) of a chunk whose per-entry gradient and curvature terms
// (indexed from the chunk's first entry) are gr and cu: each item's row of `out`.
// Returns the prior's loss (when WithLoss) and the largest |g|.
template <bool WithLoss>
ItemTotals sum_rows(const count_t* start, index_t a0, index_t a1, const double* gr, const double* cu, const double* s,
                    double alpha, const ItemRows& out) {
  const count_t e0 = start[a0];
  ItemTotals tot;
  for (index_t a = a0; a < a1; ++a) {
    double grad = 0.0, hess = 0.0;
    // Vector partial sums: a single running sum would wait on the add latency per entry
    // (and with the pragmas of derivatives_at: 0.2M fewer instructions per pass at 20k/200k).
#pragma omp simd reduction(+ : grad, hess)
    for (count_t e = start[a] - e0; e < start[a + 1] - e0; ++e) {
      grad += gr[e];
      hess += cu[e];
    }
    const BtTerms pr = bt_prior_terms<WithLoss>(s[a], alpha);
    tot.sum += pr.loss;
    tot.max = max_or_nan(tot.max, out.finish(a, grad, hess, pr));
  }
  return tot;
}

// Pass: the Derivatives at s into `out`, with exp and log1p per entry; F too when WithLoss.
template <bool WithLoss, class E>
PassResult derivatives_at(const ItemGraph& graph, E en, double alpha, const double* s, int threads,
                          Derivatives& out) {
  float* curv = out.curv.data();
  const ItemRows rows_out(out);
  const count_t* start = graph.start.data();
  const ItemTotals tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
    const count_t e0 = start[a0], len = start[a1] - e0;
    double* d = scratch(0, len);
    double* gr = scratch(1, len);
    double* cu = scratch(2, len);
    gather_differences(graph, en, a0, a1, s, d);
    float* curv_out = curv + e0;
    double loss = 0.0;
#pragma omp simd reduction(+ : loss)
    for (count_t t = 0; t < len; ++t) {
      const BtTerms bt = bt_terms<WithLoss>(d[t], en.wins(e0 + t), en.total(e0 + t));
      gr[t] = bt.grad;
      cu[t] = bt.curv;
      curv_out[t] = static_cast<float>(bt.curv);
      loss += bt.loss;
    }
    ItemTotals rows = sum_rows<WithLoss>(start, a0, a1, gr, cu, s, alpha, rows_out);
    rows.sum += 0.5 * loss;  // each comparison's loss is seen from both of its rows
    return rows;
  });
  PassResult r;
  r.F = WithLoss ? tot.sum : NAN;
  r.gnorm = tot.max;
  return r;
}

// Pass: the Derivatives (no F) into `out` from a point's exponentials `ex`, with no
// transcendental function per entry: exp(-(s_a - s_b)) = exp(s_b) * exp(-s_a)
// (callgrind, Newton 20k/200k: 192M instructions hard and 117M soft, 258M and 164M with
// derivatives_at<false> instead). With a direction `dir` (else nullptr), also returns
// grad F . dir.
template <class E>
PassResult gradient_from_exponentials(const ItemGraph& graph, E en, double alpha, const Exponentials& ex,
                                      const double* dir, int threads, Derivatives& out) {
  const double* up = ex.up.data();
  const double* down = ex.down.data();
  float* curv = out.curv.data();
  const ItemRows rows_out(out);
  const count_t* start = graph.start.data();
  const bool prefetch = gathers_miss_l2(graph.n);
  const ItemTotals tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
    ItemTotals rows;
    for (index_t a = a0; a < a1; ++a) {
      const RowSums row = prefetch ? row_gradient<true>(en, curv, start[a], start[a + 1], up, down[a])
                                   : row_gradient<false>(en, curv, start[a], start[a + 1], up, down[a]);
      // The prior is a comparison with d = s_a, wins = alpha, total = 2 alpha: r = exp(-s_a).
      const BtTerms pr = bt_terms_given_ratio(down[a], alpha, 2.0 * alpha);
      rows.max = max_or_nan(rows.max, rows_out.finish(a, row.grad, row.curv, pr));
      if (dir) rows.sum += rows_out.g[a] * dir[a];
    }
    return rows;
  });
  PassResult r;
  r.gnorm = tot.max;
  r.slope = dir ? tot.sum : NAN;
  return r;
}

// Pass: the Derivatives (no F) at s = 0, the starting point, where every ratio is 1
// and no neighbour is gathered (callgrind, Newton 20k/200k: 192M instructions hard and
// 117M soft, 203M and 126M with derivatives_at<false> instead).
template <class E>
PassResult gradient_at_zero(const ItemGraph& graph, E en, double alpha, int threads, Derivatives& out) {
  float* curv = out.curv.data();
  const ItemRows rows_out(out);
  const count_t* start = graph.start.data();
  const BtTerms pr = bt_terms_given_ratio(1.0, alpha, 2.0 * alpha);
  const ItemTotals tot = for_chunks(graph, threads, [&](index_t a0, index_t a1) {
    // Local copies: captured references would be reloaded after every store (they
    // might alias it), which stops vectorisation. (Callgrind, Newton 20k/200k hard: with
    // references here and in newton_direction 193.0M instructions instead of 192.1M;
    // without the simd reduction below 192.7M.)
    const E ent = en;
    float* cv = curv;
    ItemTotals rows;
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
      rows.max = max_or_nan(rows.max, rows_out.finish(a, 0.5 * total - wins, 0.25 * total, pr));
    }
    return rows;
  });
  PassResult r;
  r.gnorm = tot.max;
  return r;
}

// Pass: the Derivatives at `trial` into `out` and grad F(trial) . dir. `ex` holds the
// trial's exponentials when `exponentials_ready`; otherwise they are computed here
// (into ex), or, when some |trial_a| is too large for their products, the pass takes
// exp per entry (derivatives_at).
template <class E>
PassResult gradient_at_trial(const ItemGraph& graph, E en, double alpha, const double* trial, const double* dir,
                             bool exponentials_ready, int threads, Exponentials& ex, Derivatives& out) {
  if (exponentials_ready) return gradient_from_exponentials(graph, en, alpha, ex, dir, threads, out);
  double* up = ex.up.data();
  double* down = ex.down.data();
  const double largest =
      for_items(graph.n, threads, [&](index_t a) {
        return ItemTotals{0.0, store_exponentials(trial[a], up + a, down + a)};
      }).max;
  PassResult r = largest <= kRatioPathMaxScore ? gradient_from_exponentials(graph, en, alpha, ex, nullptr, threads, out)
                                               : derivatives_at<false>(graph, en, alpha, trial, threads, out);
  r.slope = dot(graph.n, threads, out.g.data(), dir);
  return r;
}

// Passes: dir ~= -H^-1 g for the Hessian H given by `at`, by CG stopped when
// ||H dir + g||_inf <= target. Returns the number of CG steps.
template <class E>
int newton_direction(const ItemGraph& graph, E en, const Derivatives& at, double target, int max_steps, int threads,
                     PcgScratch& cg, double* dir) {
  const index_t n = graph.n;
  const count_t* start = graph.start.data();
  const float* curv = at.curv.data();
  const double* prior = at.prior.data();
  const bool prefetch = gathers_miss_l2(n);
  // The neighbours' values are gathered in float (the row's own in double): the
  // direction only steers the step, which the exact gradient then checks.
  auto hessian_times = [&](const double* v, const float* v_float, auto&& emit) {
    return for_chunks(graph, threads, [&](index_t a0, index_t a1) {
             // Local copies: captured references would be reloaded on every entry (see
             // gradient_at_zero for the count).
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
  return pcg(n, threads, hessian_times, at.diag.data(), at.g.data(), dir, true, target, max_steps, cg, nullptr, -1.0);
}

// What full_step returns.
struct StepStart {
  double slope;    // phi'(0) = g . dir
  double largest;  // max_a |trial_a|
};

// Pass: trial = s + dir, its exponentials into ex, and phi'(0) = g . dir.
StepStart full_step(index_t n, int threads, const double* s, const double* g, const double* dir, double* trial,
                    Exponentials& ex) {
  double* up = ex.up.data();
  double* down = ex.down.data();
  const ItemTotals t = for_items(n, threads, [&](index_t a) {
    trial[a] = s[a] + dir[a];
    return ItemTotals{g[a] * dir[a], store_exponentials(trial[a], up + a, down + a)};
  });
  return StepStart{t.sum, t.max};
}

// Pass: trial = s + t dir.
void step_to(index_t n, int threads, const double* s, const double* dir, double t, double* trial) {
  for_items(n, threads, [&](index_t a) {
    trial[a] = s[a] + t * dir[a];
    return ItemTotals{};
  });
}

// Pass: the Jacobi-preconditioned steepest-descent direction -g / diag of `at` into
// dir; returns g . dir.
double steepest_descent(index_t n, int threads, const Derivatives& at, double* dir) {
  const double* g = at.g.data();
  const double* diag = at.diag.data();
  return for_items(n, threads, [&](index_t a) {
           dir[a] = diag[a] > 0 ? -g[a] / diag[a] : -g[a];
           return ItemTotals{g[a] * dir[a], 0.0};
         })
      .sum;
}

// Pass: the total weight of each item's comparisons into weight.
template <class E>
void item_weights(const ItemGraph& graph, E en, int threads, double* weight) {
  const count_t* start = graph.start.data();
  for_items(graph.n, threads, [&](index_t a) {
    double total = static_cast<double>(start[a + 1] - start[a]);  // weights of 1 unless Weighted
    if (graph.kind == EntryKind::Weighted) {
      total = 0.0;
      for (count_t e = start[a]; e < start[a + 1]; ++e) total += en.total(e);
    }
    weight[a] = total;
    return ItemTotals{};
  });
}

// sqrt(3) / 18, the largest |third derivative| of log(1 + exp(-d)), over 12 (the trapezoid rule's error).
constexpr double kTrapezoidCoefficient = 0.0962250448649376 / 12.0;

// Pass: the cubic term of the trapezoid bound on F(s + dir) - F(s). With
// |loss'''| <= total * sqrt(3) / 18 for every comparison and
// |d_a - d_b|^3 <= 4 (|d_a|^3 + |d_b|^3):
//   F(s + dir) - F(s) <= (phi'(0) + phi'(1)) / 2 + cubic_bound.
double cubic_bound(index_t n, int threads, const double* weight, double alpha, const double* dir) {
  return kTrapezoidCoefficient * for_items(n, threads, [&](index_t a) {
                                   const double x = std::fabs(dir[a]);
                                   return ItemTotals{(4.0 * weight[a] + 2.0 * alpha) * x * x * x, 0.0};
                                 }).sum;
}

// Whether the full step can be taken without computing F: when
//  - it reaches the tolerance, or
//  - the slope at its end, phi'(1) = g(s + d) . d, is <= 1e-4 * phi'(0): F is convex
//    along the step, so F(s + d) <= F(s) + phi'(1), which is Armijo's condition, or
//  - it shrinks the gradient as an inexact Newton step should (Eisenstat & Walker
//    1994: ||g+|| <= (1 - 1e-4 (1 - eta)) ||g||, in the norm of the CG target) and
//    phi'(1) <= 0, so that F does not increase (near the optimum phi'(1) is tiny and
//    of either sign; this takes half of those steps without computing F), or
//  - the trapezoid bound (cubic_bound) certifies Armijo's condition (near the optimum
//    the steps are short and the cubic term is negligible). `cubic` is called only
//    when the other tests fail.
template <class Cubic>
bool full_step_certified(const PassResult& cur, const PassResult& full, double slope, double eta, double tol,
                         Cubic&& cubic) {
  const double end_slope = full.slope;
  return std::isfinite(end_slope) &&
         (full.gnorm <= tol || end_slope <= 1e-4 * slope ||
          (full.gnorm <= (1.0 - 1e-4 * (1.0 - eta)) * cur.gnorm && end_slope <= 0.0) ||
          0.5 * (slope + end_slope) + cubic() <= 1e-4 * slope);
}

// What line_search returns.
struct LineSearch {
  bool accepted = false;
  PassResult at;  // at the accepted point (valid when accepted)
};

// Armijo backtracking on F from s (where F = F_s) along dir, t = 1, 1/2, ... (60 halvings),
// with slack for the rounding of F itself. trial holds s + dir on entry and the accepted
// point on return; `out` receives the Derivatives at each point tried.
template <class E>
LineSearch line_search(const ItemGraph& graph, E en, double alpha, const double* s, double F_s, const double* dir,
                       double slope, int threads, double* trial, Derivatives& out) {
  const double slack = 1e-13 * (std::fabs(F_s) + 1.0);
  double t = 1.0;
  for (int halvings = 0; halvings < 60; ++halvings, t *= 0.5) {
    if (halvings > 0) step_to(graph.n, threads, s, dir, t, trial);
    const PassResult next = derivatives_at<true>(graph, en, alpha, trial, threads, out);
    if (std::isfinite(next.F) && next.F <= F_s + 1e-4 * t * slope + slack) return LineSearch{true, next};
  }
  return LineSearch{};
}

}  // namespace

SolveResult bt_newton(const ItemGraph& graph, const SolveOptions& opt, const GraphInfo& info) {
  const int threads = resolve_threads(opt.n_threads, graph.nnz / 2);
  const index_t n = graph.n;
  const double alpha = opt.alpha;
  const bool centred = alpha == 0.0;
  Derivatives at(graph);  // at s, whenever newton_direction runs
  Exponentials ex(n);
  big_vector<double> weight(n), dir(n);
  std::vector<double> trial(n);  // swapped with the scores when accepted
  PcgScratch cg(n, true);
  SolveResult res;
  res.scores.assign(n, 0.0);
  std::vector<double>& s = res.scores;

  return with_entries(graph, [&](auto en) {
    item_weights(graph, en, threads, weight.data());
    PassResult cur = gradient_at_zero(graph, en, alpha, threads, at);  // s starts at 0
    // The largest conjugate-gradient effort worth spending on one Newton step.
    const int max_cg = static_cast<int>(std::min<long long>(2LL * n + 10, 2000));
    int it = 0;
    bool stalled = false;
    while (cur.gnorm > opt.tol && it < opt.max_iter && !stalled) {
      ++it;
      // Inexact Newton: solve to a relative accuracy that tightens as the gradient shrinks
      // (quadratic forcing; callgrind, 20k/200k: soft 117M instructions in 6 steps, sqrt
      // forcing 137M in 8; hard 192M in 7, sqrt forcing 188M in 8).
      const double eta = std::min(0.5, cur.gnorm);
      const double target = std::max(eta * cur.gnorm, 0.1 * opt.tol);
      res.n_inner += newton_direction(graph, en, at, target, max_cg, threads, cg, dir.data());
      const StepStart step = full_step(n, threads, s.data(), at.g.data(), dir.data(), trial.data(), ex);
      double slope = step.slope;
      bool exponentials_ready = step.largest <= kRatioPathMaxScore;
      if (!(slope < 0)) {
        // CG made no progress (e.g. curvature underflow): preconditioned steepest descent.
        slope = steepest_descent(n, threads, at, dir.data());
        if (!(slope < 0)) break;
        step_to(n, threads, s.data(), dir.data(), 1.0, trial.data());
        exponentials_ready = false;
      }
      // From here on `at` holds the derivatives of the points tried, not of s.
      const PassResult full =
          gradient_at_trial(graph, en, alpha, trial.data(), dir.data(), exponentials_ready, threads, ex, at);
      bool accepted = full_step_certified(cur, full, slope, eta, opt.tol,
                                          [&]() { return cubic_bound(n, threads, weight.data(), alpha, dir.data()); });
      if (accepted) {
        cur = full;
      } else {
        if (std::isnan(cur.F)) cur.F = bt_objective(graph, en, alpha, s.data(), threads);
        const LineSearch ls = line_search(graph, en, alpha, s.data(), cur.F, dir.data(), slope, threads, trial.data(), at);
        accepted = ls.accepted;
        if (accepted) cur = ls.at;
      }
      if (accepted) {
        s.swap(trial);
      } else {
        // No decrease is possible at this precision: the derivatives at s again, and stop.
        cur = derivatives_at<true>(graph, en, alpha, s.data(), threads, at);
        stalled = true;
      }
      if (centred) center_components(s, info, threads);
    }
    res.n_iter = it;
    res.grad_norm = cur.gnorm;
    res.objective = !std::isnan(cur.F) ? cur.F : opt.objective ? bt_objective(graph, en, alpha, s.data(), threads) : NAN;
    res.converged = cur.gnorm <= opt.tol;
    return res;
  });
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
