// Conversions shared by the binding files (bindings.cpp, bindings_devices.cpp).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <vector>

#include "cpu/solvers.h"

namespace pycomp {
namespace bindings {

namespace py = pybind11;

// A new numpy array holding a copy of v.
template <class T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

// A solve's result as the dict pycomp.solve reads.
inline py::dict to_dict(const SolveResult& r) {
  py::dict d;
  d["scores"] = to_numpy(r.scores);
  d["n_iter"] = r.n_iter;
  d["n_inner"] = r.n_inner;
  d["converged"] = r.converged;
  d["grad_norm"] = r.grad_norm;
  d["objective"] = r.objective;
  d["n_components"] = r.graph.n_components;
  d["labels"] = to_numpy(r.graph.labels);
  d["component_sizes"] = to_numpy(r.graph.sizes);
  return d;
}

}  // namespace bindings
}  // namespace pycomp
