// Shared definitions for the CPU and CUDA backends: plain C++, no pybind11 or CUDA types.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PYCOMP_HD __host__ __device__ __forceinline__
#else
#define PYCOMP_HD inline __attribute__((always_inline))
#endif

// The CPU kernels are compiled twice, for the x86-64 baseline and for AVX2 + FMA, and
// picked at run time (cpu/dispatch.cpp). Every csrc function a kernel inlines lives in
// an inline namespace named after the instruction set, so that the two builds never
// share (and the linker never merges) a csrc function compiled for the other.
#ifndef PYCOMP_ISA_TAG
#define PYCOMP_ISA_TAG isa_base
#endif
#define PYCOMP_ISA_BEGIN inline namespace PYCOMP_ISA_TAG {
#define PYCOMP_ISA_END }

namespace pycomp {

using index_t = std::int32_t;  // item index; n_items < 2^31
using count_t = std::int64_t;  // comparison index; m may exceed 2^31

// A read-only view of m comparisons between n items.
//   i, j : [m] item indices in [0, n), i != j
//   p    : [m] probability that i beats j, in [0, 1]; nullptr means 1 (i won)
//   w    : [m] non-negative weight; nullptr means 1
struct Comparisons {
  index_t n = 0;
  count_t m = 0;
  const index_t* i = nullptr;
  const index_t* j = nullptr;
  const double* p = nullptr;
  const double* w = nullptr;
};

}  // namespace pycomp

namespace pycomp {
PYCOMP_ISA_BEGIN

// Per-comparison weights of a Comparisons view, with the absent arrays folded into
// the type so that the hot loops carry no branches for them.
//   wins(k)  = w_k * p_k  (weight of i_k beating j_k)
//   total(k) = w_k
template <bool HasP, bool HasW>
struct EdgeWeights {
  const double* p;
  const double* w;
  PYCOMP_HD double total(count_t k) const { return HasW ? w[k] : 1.0; }
  PYCOMP_HD double wins(count_t k) const {
    const double pk = HasP ? p[k] : 1.0;
    return HasW ? w[k] * pk : pk;
  }
};

// Calls f(EdgeWeights<HasP, HasW>{...}) with the instantiation matching which of p and w
// are present.
template <class F>
auto with_edge_weights(const Comparisons& c, F&& f) {
  if (c.p && c.w) return f(EdgeWeights<true, true>{c.p, c.w});
  if (c.p) return f(EdgeWeights<true, false>{c.p, nullptr});
  if (c.w) return f(EdgeWeights<false, true>{nullptr, c.w});
  return f(EdgeWeights<false, false>{nullptr, nullptr});
}

PYCOMP_ISA_END
}  // namespace pycomp
