// device="thrust": the Thrust solvers (csrc/thrust/*.h) built by the host compiler with
// Thrust's OpenMP device system. Not a performance path: it runs the GPU backend's logic
// on every CPU test run. CMake compiles this file with
//   THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP
//   THRUST_CUB_WRAPPED_NAMESPACE=pycomp_thrust_omp  (Thrust's own symbols)
//   PYCOMP_ISA_TAG=isa_thrust_omp                  (core/ functions inlined here)
// so that nothing it instantiates can be merged with the CUDA build's in one _core.
#define PYCOMP_THRUST_NS thrust_omp
#define PYCOMP_THRUST_NAME "thrust"
#define PYCOMP_THRUST_SYSTEM "OpenMP"
#define PYCOMP_THRUST_HOST_IS_DEVICE 1
#define PYCOMP_THRUST_CLEAR_ERROR() ((void)0)

#include "thrust/backend_impl.h"

#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_OMP
#error "omp_backend.cpp must be compiled with THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP"
#endif

namespace pycomp {
namespace devices {
const Backend* omp_backend() { return thrust_omp::backend_table(); }
}  // namespace devices
}  // namespace pycomp
