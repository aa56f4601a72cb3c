// Jacobi-preconditioned conjugate gradients for the Laplacian-like systems of the
// PoE solvers, with the matrix applied by a caller-supplied pass.
#pragma once

#include <cmath>
#include <vector>

#include "cpu/memory.h"
#include "cpu/parallel.h"

namespace pycomp {
namespace cpu {
PYCOMP_ISA_BEGIN

struct PcgScratch {
  // With `float_copy`, z is also kept in float for the matrix pass to gather from:
  // half the bytes per random access, and half the cache footprint (Newton 1M/10M 11%
  // faster, wall clock, bench_solve at 1ec80e4, README).
  explicit PcgScratch(index_t n, bool float_copy = false) : r(n), z(n), p(n), q(n), z_float(float_copy ? n : 0) {}
  // Huge-page backed: z is gathered at random by every matrix pass, and 4 KiB pages
  // would make those gathers TLB misses once n reaches about a million.
  big_vector<double> r, z, p, q;  // written before they are read
  big_vector<float> z_float;      // [n] or empty
};

// Solves H x = sign * rhs (sign = 1 or -1) from the x given (or from 0, written here,
// when x_is_zero), stopping when ||sign * rhs - H x||_inf <= target (as tracked by the
// CG recurrence) or after max_steps steps.
//   apply(v, v_float, emit) : for every row a, y_a = (H v)_a; calls emit(a, y_a), which
//                             returns a number, and returns the sum of those. v_float is
//                             v rounded to float (for the gathers) or nullptr.
//   diag                    : [n] the diagonal of H (items with diag <= 0 are left
//                             unpreconditioned at 0)
// Each step is two passes: the matrix pass applies H to z (not to p), and forms
// p = z + beta p and H p = H z + beta H p row by row as it goes; then x, r and z are
// updated. Returns the number of steps; `residual_norm` receives the final ||r||_inf.
template <class Apply>
int pcg(index_t n, int threads, Apply&& apply, const double* diag, const double* rhs, double* x, bool x_is_zero,
        double target, int max_steps, PcgScratch& ws, double* residual_norm = nullptr, double sign = 1.0) {
  double *r = ws.r.data(), *z = ws.z.data(), *p = ws.p.data(), *q = ws.q.data();
  float* z_float = ws.z_float.empty() ? nullptr : ws.z_float.data();
  auto precond = [&](index_t a, double v) { return diag[a] > 0 ? v / diag[a] : 0.0; };
  if (!x_is_zero) apply(x, nullptr, [&](index_t a, double y) {
    q[a] = y;
    return 0.0;
  });
  const ItemTotals init = for_items(n, threads, [&](index_t a) {
    if (x_is_zero) x[a] = 0.0;
    r[a] = x_is_zero ? sign * rhs[a] : sign * rhs[a] - q[a];
    z[a] = precond(a, r[a]);
    if (z_float) z_float[a] = static_cast<float>(z[a]);
    return ItemTotals{r[a] * z[a], std::fabs(r[a])};
  });
  double rz = init.sum, rnorm = init.max, beta = 0.0;
  int step = 0;
  while (rnorm > target && step < max_steps && rz > 0) {
    const bool first = step == 0;
    const double pq = apply(z, z_float, [&](index_t a, double hz) {
      const double pa = first ? z[a] : z[a] + beta * p[a];
      const double qa = first ? hz : hz + beta * q[a];
      p[a] = pa;
      q[a] = qa;
      return pa * qa;
    });
    if (!(pq > 0)) break;
    const double len = rz / pq;
    const ItemTotals upd = for_items(n, threads, [&](index_t a) {
      x[a] += len * p[a];
      r[a] -= len * q[a];
      z[a] = precond(a, r[a]);
      if (z_float) z_float[a] = static_cast<float>(z[a]);
      return ItemTotals{r[a] * z[a], std::fabs(r[a])};
    });
    ++step;
    rnorm = upd.max;
    beta = upd.sum / rz;
    rz = upd.sum;
  }
  if (residual_norm) *residual_norm = rnorm;
  return step;
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
