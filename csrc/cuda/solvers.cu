// device="cuda": the Thrust solvers (csrc/thrust/*.h) built by nvcc for the CUDA device
// system, the same source the OpenMP build (csrc/thrust/omp_backend.cpp) runs in every
// CPU test. CMake compiles this file with THRUST_CUB_WRAPPED_NAMESPACE=pycomp_thrust_cuda
// and PYCOMP_ISA_TAG=isa_thrust_cuda, so that nothing it instantiates can be merged with
// the OpenMP build's in one _core.
#include <cuda_runtime.h>

#define PYCOMP_THRUST_NS thrust_cuda
#define PYCOMP_THRUST_NAME "cuda"
#define PYCOMP_THRUST_SYSTEM "CUDA"
#define PYCOMP_THRUST_HOST_IS_DEVICE 0
// A failed allocation or launch leaves a (non-sticky) error behind; clear it so that the
// next call starts clean.
#define PYCOMP_THRUST_CLEAR_ERROR() ((void)cudaGetLastError())

#include "thrust/backend_impl.h"

namespace pycomp {
namespace devices {
const Backend* cuda_backend() { return thrust_cuda::backend_table(); }
}  // namespace devices
}  // namespace pycomp
