// Picks the CPU kernels for the machine at hand, once. PYCOMP_CPU_KERNELS=base in the
// environment forces the baseline build (to test it on an AVX2 machine).
#include <cstdlib>
#include <cstring>

#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {

const CpuKernels& cpu_kernels() {
  static const CpuKernels kernels = []() {
#ifdef PYCOMP_WITH_AVX2_KERNELS
    __builtin_cpu_init();
    const char* forced = std::getenv("PYCOMP_CPU_KERNELS");
    const bool base_forced = forced && std::strcmp(forced, "base") == 0;
    if (!base_forced && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return CpuKernels{"avx2", &isa_avx2::bt_newton, &isa_avx2::bt_fixed_point, &isa_avx2::gaussian_cg};
    }
#endif
    return CpuKernels{"base", &isa_base::bt_newton, &isa_base::bt_fixed_point, &isa_base::gaussian_cg};
  }();
  return kernels;
}

}  // namespace cpu
}  // namespace pycomp
