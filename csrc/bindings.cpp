// pybind11 bindings: convert and validate numpy buffers, release the GIL, call the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef PYCOMP_WITH_OPENMP
#include <omp.h>
#endif

#include "core/cuda_info.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "pycomp compiled core: product-of-experts Bradley-Terry and Gaussian solvers";

  m.def("build_info", []() {
    py::dict info;
    info["version"] = PYCOMP_VERSION;
#ifdef PYCOMP_WITH_OPENMP
    info["openmp"] = true;
    info["max_threads"] = omp_get_max_threads();
#else
    info["openmp"] = false;
    info["max_threads"] = 1;
#endif
    info["cuda_compiled"] = pycomp::cuda_compiled();
    info["cuda_device_count"] = pycomp::cuda_device_count();
    info["cuda_unavailable_reason"] = pycomp::cuda_unavailable_reason();
    info["compiler"] = __VERSION__;
    return info;
  });
}
