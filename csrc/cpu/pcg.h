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
  // With `float_copy`, the search direction p is also kept in float for the matrix pass
  // to gather from: half the bytes per random access, and half the cache footprint.
  explicit PcgScratch(index_t n, bool float_copy = false) : r(n), z(n), p(n), q(n), p_float(float_copy ? n : 0) {}
  // Huge-page backed: p is gathered at random by every Hessian-vector pass, and 4 KiB
  // pages would make those gathers TLB misses once n reaches about a million.
  big_vector<double> r, z, p, q;  // written before they are read
  big_vector<float> p_float;      // [n] or empty
};

// Solves H x = rhs from the x given, stopping when ||rhs - H x||_inf <= target (as
// tracked by the CG recurrence) or after max_steps steps.
//   apply(v, v_float, out) : out = H v for [n] vectors, returning v . out; v_float is
//                  v rounded to float (for the gathers of other rows) or nullptr
//   diag          : [n] the diagonal of H (items with diag <= 0 are left unpreconditioned at 0)
// Returns the number of steps; `residual_norm` receives the final ||r||_inf.
template <class Apply>
int pcg(index_t n, int threads, Apply&& apply, const double* diag, const double* rhs, double* x, bool x_is_zero,
        double target, int max_steps, PcgScratch& ws, double* residual_norm = nullptr) {
  double *r = ws.r.data(), *z = ws.z.data(), *p = ws.p.data(), *q = ws.q.data();
  float* p_float = ws.p_float.empty() ? nullptr : ws.p_float.data();
  auto precond = [&](index_t a, double v) { return diag[a] > 0 ? v / diag[a] : 0.0; };
  if (!x_is_zero) apply(x, nullptr, q);
  const ItemTotals init = for_items(n, threads, [&](index_t a) {
    r[a] = x_is_zero ? rhs[a] : rhs[a] - q[a];
    z[a] = precond(a, r[a]);
    p[a] = z[a];
    if (p_float) p_float[a] = static_cast<float>(p[a]);
    return ItemTotals{r[a] * z[a], std::fabs(r[a])};
  });
  double rz = init.sum, rnorm = init.max;
  int step = 0;
  while (rnorm > target && step < max_steps && rz > 0) {
    const double pq = apply(p, p_float, q);
    if (!(pq > 0)) break;
    const double len = rz / pq;
    const ItemTotals upd = for_items(n, threads, [&](index_t a) {
      x[a] += len * p[a];
      r[a] -= len * q[a];
      z[a] = precond(a, r[a]);
      return ItemTotals{r[a] * z[a], std::fabs(r[a])};
    });
    ++step;
    rnorm = upd.max;
    const double beta = upd.sum / rz;
    rz = upd.sum;
    for_items(n, threads, [&](index_t a) {
      p[a] = z[a] + beta * p[a];
      if (p_float) p_float[a] = static_cast<float>(p[a]);
      return ItemTotals{};
    });
  }
  if (residual_norm) *residual_norm = rnorm;
  return step;
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
