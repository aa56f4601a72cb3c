// Kernel dispatch, all of it. The solver kernels (bt_newton.cpp, bt_fixed_point.cpp and
// gaussian_cg.cpp: PYCOMP_CPU_KERNELS in CMakeLists.txt) are compiled twice, for the
// x86-64 baseline into namespace pycomp::cpu::isa_base and for AVX2 + FMA
// (-march=x86-64-v3) into pycomp::cpu::isa_avx2 (PYCOMP_ISA_TAG, core/common.h). Every
// csrc function they inline sits inside that namespace (PYCOMP_ISA_BEGIN), so the two
// copies share no csrc symbol. The inline functions they use from the standard library
// (std::vector members...) do have one symbol for both copies: the linker keeps the first
// definition it meets, and CMakeLists.txt links the AVX2 copies as a static library after
// the baseline objects, so the definition kept is the baseline one, safe on any CPU.
// cpu_kernels() below is the only place that chooses: once, on first use, the AVX2 table
// when it was built and the CPU has AVX2 and FMA, unless PYCOMP_CPU_KERNELS=base is set
// (to test the baseline on an AVX2 machine); the bindings call the solvers through it,
// and build_info()["cpu_kernels"] reports the choice.
#include <cstdlib>
#include <cstring>

#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
namespace {

constexpr CpuKernels kBaseKernels{"base", &isa_base::bt_newton, &isa_base::bt_fixed_point, &isa_base::gaussian_cg};

#ifdef PYCOMP_WITH_AVX2_KERNELS
constexpr CpuKernels kAvx2Kernels{"avx2", &isa_avx2::bt_newton, &isa_avx2::bt_fixed_point, &isa_avx2::gaussian_cg};

bool use_avx2_kernels() {
  const char* forced = std::getenv("PYCOMP_CPU_KERNELS");
  if (forced && std::strcmp(forced, "base") == 0) return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

}  // namespace

const CpuKernels& cpu_kernels() {
#ifdef PYCOMP_WITH_AVX2_KERNELS
  static const CpuKernels& chosen = use_avx2_kernels() ? kAvx2Kernels : kBaseKernels;
  return chosen;
#else
  return kBaseKernels;
#endif
}

}  // namespace cpu
}  // namespace pycomp
