// The Thrust backends: the same solver source (csrc/thrust/*.h) built twice, by the host
// compiler with Thrust's OpenMP device system (device="thrust", omp_backend.cpp) and by
// nvcc for CUDA (device="cuda", csrc/cuda/solvers.cu). This header is the interface the
// bindings see: plain C++, no Thrust or CUDA types.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/solver_types.h"

namespace pycomp {
namespace devices {

// Where the arrays of a DeviceComparisons live.
enum class Memory {
  Host,    // host memory: the CUDA backend copies each array to the device once
  Device,  // the backend's own memory (CUDA: a device pointer, e.g. a torch CUDA tensor)
};

// m comparisons between n items as the backend receives them. Host arrays have been
// validated by the caller (core/validate.h); device arrays are validated by the backend,
// on the device, before any solve, with the same messages.
struct DeviceComparisons {
  Memory memory = Memory::Host;
  long long n = -1;                 // -1: the largest index + 1
  count_t m = 0;
  const void* i = nullptr;          // [m] int32 or int64 (index_bytes)
  const void* j = nullptr;
  int index_bytes = 4;              // 4 or 8; host arrays are always int32
  const double* p = nullptr;        // [m] or nullptr
  const double* w = nullptr;        // [m] or nullptr
  const char* w_field = "weights";  // the name of w in error messages
};

// A failure of the device itself (out of memory, no device, driver too old, a kernel
// error), with the step and the sizes in its message. Device memory is freed when it is
// thrown: every buffer is a thrust vector.
struct DeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct DeviceOutOfMemory : DeviceError {
  using DeviceError::DeviceError;
};

// The solvers of one device system.
//   components     connected components (comparisons of zero weight ignored)
//   solve_bt       PoE-BT by Newton-PCG, MM or Newman; host_check(graph, comparisons, state),
//                  when given, runs once the components are known and before the solve (the
//                  alpha = 0 existence check of the CPU backend; the comparisons are the
//                  caller's host arrays, or host copies of device ones)
//   solve_gaussian PoE-Gaussian by Jacobi-preconditioned CG
//   bt_curvature   per-comparison curvature [m] and per-item prior curvature [n]
//   local_variance the local approximation of diag(H^-1) (cpu/local_variance.cpp's formula)
// Each returns host vectors.
struct Backend {
  const char* name;  // "thrust" or "cuda"
  GraphInfo (*components)(const DeviceComparisons& c);
  SolveResult (*solve_bt)(const DeviceComparisons& c, const SolveOptions& opt, BtMethod method,
                          void (*host_check)(const GraphInfo&, const Comparisons&, void*), void* check_state);
  SolveResult (*solve_gaussian)(const DeviceComparisons& c, const SolveOptions& opt);
  void (*bt_curvature)(const DeviceComparisons& c, const double* scores, double alpha, std::vector<double>& curv,
                       std::vector<double>& prior);
  std::vector<double> (*local_variance)(const DeviceComparisons& c, const double* prior);
  std::string (*version)();  // the Thrust version and device system
};

// The OpenMP build (nullptr when the CCCL headers were not found at build time).
const Backend* omp_backend();
// The CUDA build (nullptr without PYCOMP_WITH_CUDA).
const Backend* cuda_backend();

}  // namespace devices
}  // namespace pycomp
