// PoE-BT on the device: Newton with a Jacobi-preconditioned CG solve of the Hessian (a
// weighted Laplacian plus the prior's diagonal, applied matrix-free from per-entry
// curvatures) and Armijo backtracking; Hunter's MM and Newman's fixed point. The
// per-comparison and per-item terms are bt_math.h's, as in the CPU backend
// (csrc/cpu/bt_newton.cpp, bt_fixed_point.cpp), whose stopping rules these follow.
#pragma once

#include <algorithm>
#include <cmath>

#include "core/solver_types.h"
#include "thrust/graph.h"
#include "thrust/pcg.h"

namespace pycomp {
namespace PYCOMP_THRUST_NS {

// Per entry: the gradient and curvature of its comparison seen from its row, and half
// its loss (each comparison is seen from both of its rows); writes the curvature.
struct Sum3 {
  double grad, curv, loss;
};
struct Plus3 {
  PYCOMP_HD Sum3 operator()(const Sum3& x, const Sum3& y) const {
    return Sum3{x.grad + y.grad, x.curv + y.curv, x.loss + y.loss};
  }
};
struct BtEntryTerms {
  EntryView en;
  const double* s;
  double* curv;
  PYCOMP_HD Sum3 operator()(count_t e) const {
    const BtTerms t = bt_terms<true>(s[en.row[e]] - s[en.nbr[e]], en.wins[e], en.total_of(e));
    curv[e] = t.curv;
    return Sum3{t.grad, t.curv, 0.5 * t.loss};
  }
};
struct BtEntryLoss {
  EntryView en;
  const double* s;
  PYCOMP_HD double operator()(count_t e) const {
    return 0.5 * bt_terms<true>(s[en.row[e]] - s[en.nbr[e]], en.wins[e], en.total_of(e)).loss;
  }
};
struct PlusPair {
  PYCOMP_HD SumMax operator()(const SumMax& x, const SumMax& y) const { return SumMax{x.sum + y.sum, x.max + y.max}; }
};

// The derivatives of F at one point.
struct Derivatives {
  dvec<double> curv;   // [nnz] each entry's curvature
  dvec<double> g;      // [n] grad F
  dvec<double> diag;   // [n] the Hessian's diagonal
  dvec<double> prior;  // [n] the prior's curvature
  dvec<Sum3> rows;     // [n] scratch: per-row sums
};

struct FinishItem {
  const Sum3* rows;
  const double* s;
  double alpha;
  double *g, *diag, *prior;
  PYCOMP_HD SumMax operator()(count_t a) const {
    const BtTerms pr = bt_prior_terms<true>(s[a], alpha);
    g[a] = rows[a].grad + pr.grad;
    diag[a] = rows[a].curv + pr.curv;
    prior[a] = pr.curv;
    return SumMax{rows[a].loss + pr.loss, fabs(g[a])};
  }
};

struct PointValues {
  double F = NAN;
  double gnorm = NAN;
};

// Pass: the derivatives and F at s.
inline PointValues derivatives_at(const DeviceGraph& graph, double alpha, const dvec<double>& s, Derivatives& out) {
  const EntryView en = entries(graph);
  out.curv.resize(graph.nnz);
  out.g.resize(graph.n);
  out.diag.resize(graph.n);
  out.prior.resize(graph.n);
  row_reduce(graph, BtEntryTerms{en, raw(s), raw(out.curv)}, Plus3(), Sum3{0.0, 0.0, 0.0}, out.rows);
  const SumMax t = over_items(graph.n, FinishItem{raw(out.rows), raw(s), alpha, raw(out.g),
                                                  raw(out.diag), raw(out.prior)});
  return PointValues{t.sum, t.max};
}

struct CurvTimes {
  EntryView en;
  const double* curv;
  const double* v;
  PYCOMP_HD double operator()(count_t e) const { return (curv ? curv[e] : 1.0) * (v[en.row[e]] - v[en.nbr[e]]); }
};
struct AddDiagonal {
  const double* rows;
  const double* diag_part;  // per item (the prior's curvature, or alpha)
  double diag_scalar;       // used when diag_part is nullptr
  const double* v;
  double* y;
  PYCOMP_HD void operator()(count_t a) const { y[a] = rows[a] + (diag_part ? diag_part[a] : diag_scalar) * v[a]; }
};

// y = (L_c + D) v with L_c the Laplacian of edge weights c (per entry; nullptr: the
// graph's weights) and D = diag(diag_part) or diag_scalar * I.
struct LaplacianPlusDiagonal {
  const DeviceGraph* graph;
  const double* curv;  // [nnz] or nullptr
  const double* diag_part;
  double diag_scalar;
  dvec<double>* rows;
  void operator()(const dvec<double>& v, dvec<double>& y) const {
    const EntryView en = entries(*graph);
    row_reduce(*graph, CurvTimes{en, curv ? curv : en.total, raw(v)}, thr::plus<double>(), 0.0, *rows);
    for_each_index(graph->n, AddDiagonal{raw(*rows), diag_part, diag_scalar, raw(v), raw(y)});
  }
};

struct TrialPoint {
  const double *s, *dir;
  double t;
  double* trial;
  PYCOMP_HD void operator()(count_t a) const { trial[a] = s[a] + t * dir[a]; }
};
struct SteepestDescent {
  const double *g, *diag;
  double* dir;
  PYCOMP_HD SumMax operator()(count_t a) const {
    dir[a] = diag[a] > 0 ? -g[a] / diag[a] : -g[a];
    return SumMax{g[a] * dir[a], 0.0};
  }
};

inline SolveResult bt_newton(const DeviceGraph& graph, const DeviceComponents& comp, const SolveOptions& opt,
                             Progress& progress) {
  progress.step = "Newton: allocation";
  const index_t n = graph.n;
  const double alpha = opt.alpha;
  const bool centred = alpha == 0.0;
  Derivatives at;
  dvec<double> s(n, 0.0), trial(n), dir(n), hv_rows;
  PcgScratch cg(n);
  SolveResult res;
  progress.step = "Newton: gradient";
  PointValues cur = derivatives_at(graph, alpha, s, at);
  const int max_cg = static_cast<int>(std::min<long long>(2LL * n + 10, 2000));
  int it = 0;
  bool stalled = false;
  while (cur.gnorm > opt.tol && it < opt.max_iter && !stalled) {
    ++it;
    const double eta = std::min(0.5, cur.gnorm);
    const double target = std::max(eta * cur.gnorm, 0.1 * opt.tol);
    progress.step = "Newton: conjugate gradients";
    const LaplacianPlusDiagonal hessian{&graph, raw(at.curv), raw(at.prior), 0.0, &hv_rows};
    res.n_inner += pcg(n, hessian, at.diag, at.g, -1.0, dir, true, target, max_cg, cg);
    // With alpha = 0 the Hessian is singular along each component's constant vector, and
    // a CG asked for more than the rounding of g allows grows dir along it: drop that part.
    if (centred) centre_components(comp, dir);
    double slope = dot(n, raw(at.g), raw(dir));
    if (!(slope < 0)) {
      slope = over_items(n, SteepestDescent{raw(at.g), raw(at.diag), raw(dir)}).sum;
      if (!(slope < 0)) break;
    }
    progress.step = "Newton: line search";
    const double slack = 1e-13 * (std::fabs(cur.F) + 1.0);
    const double F_s = cur.F;
    bool accepted = false;
    double t = 1.0;
    for (int halvings = 0; halvings < 60 && !accepted; ++halvings, t *= 0.5) {
      for_each_index(n, TrialPoint{raw(s), raw(dir), t, raw(trial)});
      const PointValues next = derivatives_at(graph, alpha, trial, at);
      if (std::isfinite(next.F) && next.F <= F_s + 1e-4 * t * slope + slack) {
        accepted = true;
        cur = next;
      }
    }
    if (accepted) {
      s.swap(trial);
    } else {
      cur = derivatives_at(graph, alpha, s, at);  // no decrease at this precision: stop
      stalled = true;
    }
    if (centred) centre_components(comp, s);
  }
  res.n_iter = it;
  res.grad_norm = cur.gnorm;
  res.objective = cur.F;
  res.converged = cur.gnorm <= opt.tol;
  thr::host_vector<double> host = s;
  res.scores.assign(host.begin(), host.end());
  return res;
}

// ---------------------------------------------------------------------------------------
// Fixed points (bt_math.h): MM  s_a += log(W_a / E_a); Newman  s_a += omega log(A_a / B_a).

struct EntryWins {
  const double* wins;
  PYCOMP_HD double operator()(count_t e) const { return wins[e]; }
};
struct MMEntry {
  EntryView en;
  const double* s;
  PYCOMP_HD double operator()(count_t e) const { return mm_expected_wins(s[en.row[e]] - s[en.nbr[e]], en.total_of(e)); }
};
struct MMItem {
  const double *expected_rows, *win_rows, *s;
  double alpha;
  double* step;
  PYCOMP_HD SumMax operator()(count_t a) const {
    const double expected = expected_rows[a] + mm_expected_wins(s[a], 2.0 * alpha);
    const double win_mass = win_rows[a] + alpha;
    step[a] = (win_mass > 0 && expected > 0) ? log(win_mass / expected) : 0.0;
    return SumMax{0.0, fabs(expected - win_mass)};
  }
};
struct NewmanEntry {
  EntryView en;
  const double* s;
  PYCOMP_HD SumMax operator()(count_t e) const {
    const NewmanTerms t = newman_terms(s[en.row[e]] - s[en.nbr[e]], en.wins[e], en.total_of(e));
    return SumMax{t.up, t.down};
  }
};
struct NewmanItem {
  const SumMax* rows;
  const double* s;
  double alpha;
  double* step;
  PYCOMP_HD SumMax operator()(count_t a) const {
    const Sigmoid own = sigmoid_parts(s[a]);
    const double up = rows[a].sum + alpha * own.neg, down = rows[a].max + alpha * own.pos;
    step[a] = (up > 0 && down > 0) ? log(up / down) : 0.0;
    return SumMax{0.0, fabs(down - up)};
  }
};
struct TakeStep {
  const double* step;
  double omega;
  double* s;
  PYCOMP_HD void operator()(count_t a) const { s[a] += omega * step[a]; }
};

// F at s (one pass with the loss per entry).
struct PriorLoss {
  const double* s;
  double alpha;
  PYCOMP_HD SumMax operator()(count_t a) const { return SumMax{bt_prior_terms<true>(s[a], alpha).loss, 0.0}; }
};
inline double bt_objective(const DeviceGraph& graph, double alpha, const dvec<double>& s) {
  const EntryView en = entries(graph);
  const double data = thr::transform_reduce(thr::device, thr::counting_iterator<count_t>(0),
                                            thr::counting_iterator<count_t>(graph.nnz), BtEntryLoss{en, raw(s)}, 0.0,
                                            thr::plus<double>());
  return data + over_items(graph.n, PriorLoss{raw(s), alpha}).sum;
}

inline SolveResult bt_fixed_point(const DeviceGraph& graph, const DeviceComponents& comp, const SolveOptions& opt,
                                  BtMethod method, Progress& progress) {
  const index_t n = graph.n;
  const double alpha = opt.alpha;
  const bool centred = alpha == 0.0;
  progress.step = "fixed point: allocation";
  const EntryView en = entries(graph);
  dvec<double> s(n, 0.0), step(n), win_rows, expected_rows;
  dvec<SumMax> newman_rows;
  if (method == BtMethod::MM) {
    progress.step = "MM: win mass";
    row_reduce(graph, EntryWins{en.wins}, thr::plus<double>(), 0.0, win_rows);
  }
  progress.step = method == BtMethod::MM ? "MM: sweep" : "Newman: sweep";
  double gnorm = INFINITY;
  NewmanDamping damping;
  int it = 0;
  while (true) {
    if (method == BtMethod::MM) {
      row_reduce(graph, MMEntry{en, raw(s)}, thr::plus<double>(), 0.0, expected_rows);
      gnorm = over_items(n, MMItem{raw(expected_rows), raw(win_rows), raw(s), alpha, raw(step)}).max;
    } else {
      row_reduce(graph, NewmanEntry{en, raw(s)}, PlusPair(), SumMax{0.0, 0.0}, newman_rows);
      gnorm = over_items(n, NewmanItem{raw(newman_rows), raw(s), alpha, raw(step)}).max;
    }
    if (gnorm <= opt.tol || it >= opt.max_iter || std::isnan(gnorm)) break;
    if (method == BtMethod::Newman) damping.update(gnorm);
    for_each_index(n, TakeStep{raw(step), damping.omega, raw(s)});
    if (centred) centre_components(comp, s);
    ++it;
  }
  SolveResult res;
  res.n_iter = it;
  res.grad_norm = gnorm;
  res.converged = gnorm <= opt.tol;
  progress.step = "objective";
  res.objective = opt.objective ? bt_objective(graph, alpha, s) : NAN;
  thr::host_vector<double> host = s;
  res.scores.assign(host.begin(), host.end());
  return res;
}

}  // namespace PYCOMP_THRUST_NS
}  // namespace pycomp
