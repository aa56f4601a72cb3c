// Device discovery for the CUDA backend. The runtime is linked statically, so this
// works (and reports no device) on machines without a driver.
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_info.h"

namespace pycomp {

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later queries start clean
    return 0;
  }
  return count;
}

std::string cuda_unavailable_reason() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("CUDA runtime reports: ") + cudaGetErrorString(err);
  }
  if (count == 0) return "no CUDA device is visible";
  return "";
}

}  // namespace pycomp
