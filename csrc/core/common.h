// Shared definitions for the CPU and CUDA backends: plain C++, no pybind11 or CUDA types.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PYCOMP_HD __host__ __device__ __forceinline__
#else
#define PYCOMP_HD inline
#endif

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
