// The data-parallel building blocks of the Thrust solvers. Included by one translation
// unit per device system, which defines PYCOMP_THRUST_NS (thrust_omp or thrust_cuda) and
// compiles Thrust inside its own THRUST_CUB_WRAPPED_NAMESPACE, so that the two builds
// share no symbol in the one _core library.
#pragma once

#ifndef PYCOMP_THRUST_NS
#error "define PYCOMP_THRUST_NS before including csrc/thrust headers"
#endif

#include <thrust/binary_search.h>
#include <thrust/copy.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/extrema.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/host_vector.h>
#include <thrust/iterator/constant_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/discard_iterator.h>
#include <thrust/iterator/permutation_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/transform.h>
#include <thrust/transform_reduce.h>
#include <thrust/unique.h>
#include <thrust/version.h>

#include <cmath>

#include "core/bt_math.h"
#include "core/common.h"

namespace pycomp {
namespace PYCOMP_THRUST_NS {

namespace thr = THRUST_NS_QUALIFIER;

template <class T>
using dvec = thr::device_vector<T>;

template <class T>
T* raw(dvec<T>& v) {
  return thr::raw_pointer_cast(v.data());
}
template <class T>
const T* raw(const dvec<T>& v) {
  return thr::raw_pointer_cast(v.data());
}

// The step a solve is in, for the message of a device error.
struct Progress {
  const char* step = "start";
};

// Two sums carried through one reduction.
struct Sum2 {
  double a, b;
};
struct Plus2 {
  PYCOMP_HD Sum2 operator()(const Sum2& x, const Sum2& y) const { return Sum2{x.a + y.a, x.b + y.b}; }
};

// A sum and a maximum (NaN wins, as in the CPU backend's max_or_nan) through one reduction.
struct SumMax {
  double sum, max;
};
PYCOMP_HD double max_or_nan(double x, double y) { return (x != x || y != y) ? NAN : (x > y ? x : y); }
struct PlusMax {
  PYCOMP_HD SumMax operator()(const SumMax& x, const SumMax& y) const {
    return SumMax{x.sum + y.sum, max_or_nan(x.max, y.max)};
  }
};

// Runs f(a) -> SumMax for every a in [0, n) and reduces. f may also write per-item
// outputs, but only idempotent ones (y[a] = ..., never y[a] += ...): a reduction may
// evaluate an element more than once.
template <class F>
SumMax over_items(count_t n, F f) {
  return thr::transform_reduce(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(n),
                               f, SumMax{0.0, 0.0}, PlusMax());
}

// Runs f(a) for every a in [0, n).
template <class F>
void for_each_index(count_t n, F f) {
  thr::for_each(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(n), f);
}

struct DotOp {
  const double *x, *y;
  PYCOMP_HD SumMax operator()(count_t a) const { return SumMax{x[a] * y[a], 0.0}; }
};
inline double dot(count_t n, const double* x, const double* y) { return over_items(n, DotOp{x, y}).sum; }

}  // namespace PYCOMP_THRUST_NS
}  // namespace pycomp
