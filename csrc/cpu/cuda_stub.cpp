// Answers the CUDA queries in a build without the CUDA backend.
#ifndef PYCOMP_WITH_CUDA
#include "core/cuda_info.h"

namespace pycomp {
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "pycomp was built without CUDA (PYCOMP_CUDA=OFF or nvcc not found)"; }
}  // namespace pycomp
#endif
