// Facts about the CUDA backend, answered by csrc/cuda/*.cu when it is compiled
// and by csrc/cpu/cuda_stub.cpp otherwise.
#pragma once

#include <string>

namespace pycomp {

// Whether this build contains the CUDA backend.
bool cuda_compiled();
// Number of usable CUDA devices (0 when none or no driver); never throws.
int cuda_device_count();
// Why the CUDA backend cannot be used ("" when it can).
std::string cuda_unavailable_reason();

}  // namespace pycomp
