// PoE-Gaussian by Jacobi-preconditioned CG on (L_w + alpha I) s = b (the scheme of
// csrc/cpu/gaussian_cg.cpp: restarted from the true residual when the recurrence
// drifted), and the standard-error parts: the PoE-BT curvatures and the local
// approximation of diag(H^-1) (csrc/cpu/local_variance.cpp's formula).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/solver_types.h"
#include "thrust/bt_solvers.h"
#include "thrust/graph.h"
#include "thrust/pcg.h"

namespace pycomp {
namespace PYCOMP_THRUST_NS {

struct EntryTotal {
  EntryView en;
  PYCOMP_HD double operator()(count_t e) const { return en.total_of(e); }
};
struct AddScalar {
  double c;
  double* x;
  PYCOMP_HD void operator()(count_t a) const { x[a] += c; }
};
struct ResidualNorm {
  const double *as, *rhs;
  PYCOMP_HD SumMax operator()(count_t a) const { return SumMax{0.0, fabs(as[a] - rhs[a])}; }
};
// Half the loss of an entry's comparison (wins holds the entry's target, see EntryData).
struct GaussianEntryLoss {
  EntryView en;
  const double* s;
  PYCOMP_HD double operator()(count_t e) const {
    return 0.5 * gaussian_loss(s[en.row[e]] - s[en.nbr[e]], en.wins[e], en.total_of(e), 0.0);
  }
};
struct SquareNorm {
  const double* s;
  double half_alpha;
  PYCOMP_HD SumMax operator()(count_t a) const { return SumMax{half_alpha * s[a] * s[a], 0.0}; }
};

// `graph` must be built with gaussian = true (its wins are the targets w (p - beta)).
inline SolveResult gaussian_cg(const DeviceGraph& graph, const DeviceComponents& comp, const SolveOptions& opt,
                               Progress& progress) {
  const index_t n = graph.n;
  const double alpha = opt.alpha;
  const EntryView en = entries(graph);
  progress.step = "Gaussian: right-hand side";
  dvec<double> rhs, diag, s(n, 0.0), as(n), rows;
  row_reduce(graph, EntryWins{en.wins}, thr::plus<double>(), 0.0, rhs);
  row_reduce(graph, EntryTotal{en}, thr::plus<double>(), 0.0, diag);
  for_each_index(n, AddScalar{alpha, raw(diag)});
  const LaplacianPlusDiagonal system{&graph, nullptr, nullptr, alpha, &rows};
  PcgScratch ws(n);
  auto gradient_norm = [&]() {
    system(s, as);
    return over_items(n, ResidualNorm{raw(as), raw(rhs)}).max;
  };
  progress.step = "Gaussian: conjugate gradients";
  int steps = 0;
  double gnorm = INFINITY;
  for (int restart = 0; restart < 5 && steps < opt.max_iter; ++restart) {
    steps += pcg(n, system, diag, rhs, 1.0, s, restart == 0, 0.5 * opt.tol, opt.max_iter - steps, ws);
    if (alpha == 0.0) centre_components(comp, s);
    gnorm = gradient_norm();
    if (gnorm <= opt.tol || std::isnan(gnorm)) break;
  }
  if (!std::isfinite(gnorm)) gnorm = gradient_norm();
  SolveResult res;
  progress.step = "objective";
  if (opt.objective) {
    const double data = thr::transform_reduce(thr::device, thr::counting_iterator<count_t>(0),
                                              thr::counting_iterator<count_t>(graph.nnz),
                                              GaussianEntryLoss{en, raw(s)}, 0.0, thr::plus<double>());
    res.objective = data + over_items(n, SquareNorm{raw(s), 0.5 * alpha}).sum;
  } else {
    res.objective = NAN;
  }
  res.n_iter = steps;
  res.n_inner = steps;
  res.grad_norm = gnorm;
  res.converged = gnorm <= opt.tol;
  thr::host_vector<double> host = s;
  res.scores.assign(host.begin(), host.end());
  return res;
}

// ---------------------------------------------------------------------------------------
// Standard-error parts.

struct ComparisonCurvature {
  CompView c;
  const double* s;
  PYCOMP_HD double operator()(count_t k) const {
    return bt_terms<false>(s[c.i[k]] - s[c.j[k]], 0.0, c.w ? c.w[k] : 1.0).curv;
  }
};
struct PriorCurvature {
  double alpha;
  PYCOMP_HD double operator()(double s) const { return bt_prior_terms<false>(s, alpha).curv; }
};

inline void bt_curvature(const CompView& c, const dvec<double>& s, double alpha, dvec<double>& curv,
                         dvec<double>& prior) {
  curv.resize(c.m);
  prior.resize(c.n);
  thr::transform(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(c.m), curv.begin(),
                 ComparisonCurvature{c, raw(s)});
  thr::transform(thr::device, s.begin(), s.end(), prior.begin(), PriorCurvature{alpha});
}

struct PairKey {
  const index_t *i, *j;
  PYCOMP_HD std::uint64_t operator()(count_t k) const {
    const std::uint64_t lo = static_cast<std::uint64_t>(i[k] < j[k] ? i[k] : j[k]);
    const std::uint64_t hi = static_cast<std::uint64_t>(i[k] < j[k] ? j[k] : i[k]);
    return (lo << 32) | hi;
  }
};
// Side e & 1 of distinct pair e >> 1: its row, other item and summed curvature.
struct PairSide {
  const std::uint64_t* key;
  const double* c;
  index_t *row, *other;
  double* value;
  PYCOMP_HD void operator()(count_t e) const {
    const std::uint64_t k = key[e >> 1];
    const index_t lo = static_cast<index_t>(k >> 32), hi = static_cast<index_t>(k & 0xffffffffu);
    row[e] = (e & 1) ? hi : lo;
    other[e] = (e & 1) ? lo : hi;
    value[e] = c[e >> 1];
  }
};
struct GatherPermuted {
  const count_t* from;
  const index_t* other_in;
  const double* value_in;
  index_t* other;
  double* value;
  PYCOMP_HD void operator()(count_t e) const {
    other[e] = other_in[from[e]];
    value[e] = value_in[from[e]];
  }
};
struct Leak {
  const index_t* other;
  const double* c;
  const double* diag;
  PYCOMP_HD double operator()(count_t e) const {
    const double d = diag[other[e]];
    return d > 0 ? c[e] * c[e] / d : 0.0;
  }
};
struct LocalVariance {
  const double *diag_rows, *prior, *leak;
  double* diag;
  double* var;
  PYCOMP_HD void operator()(count_t a) const {
    const double d = diag_rows[a] + prior[a];
    const double schur = d - leak[a];
    var[a] = schur > 1e-12 * d ? 1.0 / schur : (d > 0 ? 1.0 / d : INFINITY);
  }
};
struct DiagPlusPrior {
  const double *rows, *prior;
  double* out;
  PYCOMP_HD void operator()(count_t a) const { out[a] = rows[a] + prior[a]; }
};

// var_a ~= 1 / (H_aa - sum_b C_ab^2 / H_bb), C_ab the summed curvature c.w of all
// comparisons of a and b, H = Laplacian(C) + diag(prior).
inline std::vector<double> local_variance(const CompView& c, const dvec<double>& prior, Progress& progress) {
  progress.step = "local variance: distinct pairs";
  const count_t m = c.m;
  const index_t n = c.n;
  dvec<std::uint64_t> key(m), unique_key(m);
  dvec<double> curv(thr::device_pointer_cast(c.w), thr::device_pointer_cast(c.w) + m), pair_c(m);
  thr::transform(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(m), key.begin(),
                 PairKey{c.i, c.j});
  thr::sort_by_key(thr::device, key.begin(), key.end(), curv.begin());
  auto ends = thr::reduce_by_key(thr::device, key.begin(), key.end(), curv.begin(), unique_key.begin(), pair_c.begin());
  const count_t u = static_cast<count_t>(ends.first - unique_key.begin());
  key.clear();
  key.shrink_to_fit();
  curv.clear();
  curv.shrink_to_fit();
  // Both sides of every distinct pair, sorted by item: a graph whose weights are C.
  progress.step = "local variance: graph";
  DeviceGraph g;
  g.n = n;
  g.nnz = 2 * u;
  g.row.resize(g.nnz);
  {
    dvec<index_t> other(g.nnz);
    dvec<double> value(g.nnz);
    for_each_index(g.nnz, PairSide{raw(unique_key), raw(pair_c), raw(g.row), raw(other), raw(value)});
    dvec<count_t> from(g.nnz);
    thr::sequence(thr::device, from.begin(), from.end());
    thr::stable_sort_by_key(thr::device, g.row.begin(), g.row.end(), from.begin());
    g.nbr.resize(g.nnz);
    g.wins.resize(g.nnz);
    for_each_index(g.nnz, GatherPermuted{raw(from), raw(other), raw(value), raw(g.nbr), raw(g.wins)});
  }
  g.occupied.resize(std::min<count_t>(g.nnz, n));
  auto occ_end = thr::unique_copy(thr::device, g.row.begin(), g.row.end(), g.occupied.begin());
  g.occupied.resize(static_cast<size_t>(occ_end - g.occupied.begin()));
  g.all_occupied = static_cast<index_t>(g.occupied.size()) == n;
  progress.step = "local variance: sums";
  dvec<double> rows, diag(n), leak, var(n);
  row_reduce(g, EntryWins{raw(g.wins)}, thr::plus<double>(), 0.0, rows);
  for_each_index(n, DiagPlusPrior{raw(rows), raw(prior), raw(diag)});
  row_reduce(g, Leak{raw(g.nbr), raw(g.wins), raw(diag)}, thr::plus<double>(), 0.0, leak);
  for_each_index(n, LocalVariance{raw(rows), raw(prior), raw(leak), raw(diag), raw(var)});
  thr::host_vector<double> host = var;
  return std::vector<double>(host.begin(), host.end());
}

}  // namespace PYCOMP_THRUST_NS
}  // namespace pycomp
