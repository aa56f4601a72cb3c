// Jacobi-preconditioned conjugate gradients on the device (the recurrence of
// csrc/cpu/pcg.h), with the matrix applied by a caller-supplied pass.
#pragma once

#include "thrust/primitives.h"

namespace pycomp {
namespace PYCOMP_THRUST_NS {

struct PcgScratch {
  explicit PcgScratch(count_t n) : r(n), z(n), p(n), q(n) {}
  dvec<double> r, z, p, q;
};

PYCOMP_HD double precondition(const double* diag, count_t a, double v) { return diag[a] > 0 ? v / diag[a] : 0.0; }

struct PcgStart {
  const double *diag, *rhs, *hx;  // hx: H x, or nullptr when x = 0
  double sign;
  double *x, *r, *z;
  PYCOMP_HD SumMax operator()(count_t a) const {
    if (!hx) x[a] = 0.0;
    r[a] = hx ? sign * rhs[a] - hx[a] : sign * rhs[a];
    z[a] = precondition(diag, a, r[a]);
    return SumMax{r[a] * z[a], fabs(r[a])};
  }
};
struct PcgDirection {
  const double* z;
  double beta;
  bool first;
  double* p;
  PYCOMP_HD void operator()(count_t a) const { p[a] = first ? z[a] : z[a] + beta * p[a]; }
};
// Not idempotent (x += ...), so a for_each: a reduction may evaluate an element twice
// (Thrust's OpenMP reduce does, for the first element of each thread's range).
struct PcgUpdate {
  const double *diag, *p, *q;
  double len;
  double *x, *r, *z;
  PYCOMP_HD void operator()(count_t a) const {
    x[a] += len * p[a];
    r[a] -= len * q[a];
    z[a] = precondition(diag, a, r[a]);
  }
};
struct ResidualSums {
  const double *r, *z;
  PYCOMP_HD SumMax operator()(count_t a) const { return SumMax{r[a] * z[a], fabs(r[a])}; }
};

// Solves H x = sign * rhs from the x given (or from 0 when x_is_zero), stopping when
// ||sign * rhs - H x||_inf <= target (as tracked by the recurrence) or after max_steps
// steps. apply(v, y) writes y = H v. Returns the number of steps.
template <class Apply>
int pcg(count_t n, const Apply& apply, const dvec<double>& diag, const dvec<double>& rhs, double sign, dvec<double>& x,
        bool x_is_zero, double target, int max_steps, PcgScratch& ws) {
  if (!x_is_zero) apply(x, ws.q);
  const SumMax init = over_items(n, PcgStart{raw(diag), raw(rhs), x_is_zero ? nullptr : raw(ws.q), sign, raw(x),
                                             raw(ws.r), raw(ws.z)});
  double rz = init.sum, rnorm = init.max, beta = 0.0;
  int step = 0;
  while (rnorm > target && step < max_steps && rz > 0) {
    for_each_index(n, PcgDirection{raw(ws.z), beta, step == 0, raw(ws.p)});
    apply(ws.p, ws.q);
    const double pq = dot(n, raw(ws.p), raw(ws.q));
    if (!(pq > 0)) break;
    for_each_index(n, PcgUpdate{raw(diag), raw(ws.p), raw(ws.q), rz / pq, raw(x), raw(ws.r), raw(ws.z)});
    const SumMax upd = over_items(n, ResidualSums{raw(ws.r), raw(ws.z)});
    ++step;
    rnorm = upd.max;
    beta = upd.sum / rz;
    rz = upd.sum;
  }
  return step;
}

}  // namespace PYCOMP_THRUST_NS
}  // namespace pycomp
