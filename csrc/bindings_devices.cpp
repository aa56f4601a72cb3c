// pybind11 bindings of the Thrust backends (csrc/thrust/backend.h): device="thrust" (the
// OpenMP build) and device="cuda" (the nvcc build). Numpy arrays are validated here, on
// the host, with core/validate.h exactly as the CPU backend's bindings do, before anything
// reaches the device; arrays already in device memory (torch CUDA tensors, passed as
// pointers) are validated by the backend on the device with the same messages.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings_common.h"
#include "core/validate.h"
#include "cpu/solvers.h"
#include "thrust/backend.h"

namespace py = pybind11;
using namespace pycomp;
using devices::Backend;
using devices::DeviceComparisons;

namespace pycomp {
namespace devices {
#ifndef PYCOMP_WITH_THRUST_OMP
const Backend* omp_backend() { return nullptr; }
#endif
#ifndef PYCOMP_WITH_CUDA
const Backend* cuda_backend() { return nullptr; }
#endif
}  // namespace devices
}  // namespace pycomp

namespace {

const Backend& backend_for(const std::string& device) {
  if (device == "thrust") {
    if (const Backend* b = devices::omp_backend()) return *b;
    throw std::runtime_error(
        "device='thrust' is not part of this build: the CCCL (Thrust) headers were not found when pycomp was "
        "compiled (set PYCOMP_CCCL_INCLUDE_DIR to the folder holding thrust/version.h)");
  }
  if (device == "cuda") {
    if (const Backend* b = devices::cuda_backend()) return *b;
    throw std::runtime_error("device='cuda' is not part of this build: pycomp was built without CUDA "
                             "(PYCOMP_CUDA=OFF or nvcc not found)");
  }
  throw std::invalid_argument("device = '" + device + "' is not a device backend: use 'thrust' or 'cuda'");
}

// Numpy comparisons validated on the host, with int32 indices (a view or a checked copy).
struct HostInput {
  py::array i_arr, j_arr;
  std::optional<py::array_t<double>> p, w;
  std::vector<index_t> i32, j32;
  DeviceComparisons dc;
  Comparisons view;
};

py::array index_array(const py::handle& obj, const char* field) {
  if (!py::isinstance<py::array>(obj)) throw py::type_error(std::string(field) + " must be a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const char kind = a.dtype().kind();
  if (a.ndim() != 1 || (kind != 'i' && kind != 'u')) {
    throw py::type_error(std::string(field) + " must be a 1-D integer array of item indices, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  }
  if (a.dtype().is(py::dtype::of<std::int32_t>())) {
    return py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>::ensure(a);
  }
  return py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
}

std::optional<py::array_t<double>> value_array(const py::handle& obj, const char* field, count_t m) {
  if (obj.is_none()) return std::nullopt;
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a || a.ndim() != 1) throw py::type_error(std::string(field) + " must be a 1-D numeric array");
  if (a.shape(0) != m) {
    throw std::invalid_argument(std::string(field) + " has length " + std::to_string(a.shape(0)) +
                                " but i has length " + std::to_string(m));
  }
  return a;
}

template <class T>
long long largest_index(const T* a, const T* b, count_t m) {
  long long mx = -1;
  for (count_t k = 0; k < m; ++k) mx = std::max<long long>(mx, std::max<long long>(a[k], b[k]));
  return mx;
}

void read_host(HostInput& in, const py::handle& i, const py::handle& j, const py::handle& p, const py::handle& w,
               std::optional<long long> n_items, const char* w_field = "weights") {
  in.i_arr = index_array(i, "i");
  in.j_arr = index_array(j, "j");
  const count_t m = in.i_arr.shape(0);
  if (in.j_arr.shape(0) != m) {
    throw std::invalid_argument("j has length " + std::to_string(in.j_arr.shape(0)) + " but i has length " +
                                std::to_string(m));
  }
  in.p = value_array(p, "p", m);
  in.w = value_array(w, w_field, m);
  const double* pd = in.p ? in.p->data() : nullptr;
  const double* wd = in.w ? in.w->data() : nullptr;
  long long n = 0;
  const index_t *iv = nullptr, *jv = nullptr;
  {
    py::gil_scoped_release release;
    auto check = [&](auto* a, auto* b) {
      n = n_items ? *n_items : (m > 0 ? largest_index(a, b, m) + 1 : 0);
      validate_comparisons(a, b, pd, wd, m, n, w_field);
    };
    const bool narrow = in.i_arr.dtype().is(py::dtype::of<std::int32_t>()) &&
                        in.j_arr.dtype().is(py::dtype::of<std::int32_t>());
    if (narrow) {
      iv = static_cast<const index_t*>(in.i_arr.data());
      jv = static_cast<const index_t*>(in.j_arr.data());
      check(iv, jv);
    } else {
      // Mixed or wide: validate in int64, then narrow.
      auto widen = [&](const py::array& a, std::vector<std::int64_t>& store) -> const std::int64_t* {
        if (!a.dtype().is(py::dtype::of<std::int32_t>())) return static_cast<const std::int64_t*>(a.data());
        const auto* src = static_cast<const std::int32_t*>(a.data());
        store.assign(src, src + m);
        return store.data();
      };
      std::vector<std::int64_t> wi, wj;
      const std::int64_t* a = widen(in.i_arr, wi);
      const std::int64_t* b = widen(in.j_arr, wj);
      check(a, b);
      in.i32.assign(a, a + m);
      in.j32.assign(b, b + m);
      iv = in.i32.data();
      jv = in.j32.data();
    }
  }
  in.dc.memory = devices::Memory::Host;
  in.dc.n = n;
  in.dc.m = m;
  in.dc.i = iv;
  in.dc.j = jv;
  in.dc.index_bytes = 4;
  in.dc.p = pd;
  in.dc.w = wd;
  in.dc.w_field = w_field;
  in.view = Comparisons{static_cast<index_t>(n), m, iv, jv, pd, wd};
}

SolveOptions read_options(double alpha, double beta, double tol, int max_iter, bool objective) {
  if (!(alpha >= 0.0) || !std::isfinite(alpha)) {
    throw std::invalid_argument("alpha = " + format_double(alpha) + " is not allowed: alpha must be finite and >= 0");
  }
  if (!std::isfinite(beta)) throw std::invalid_argument("beta = " + format_double(beta) + " must be finite");
  if (!(tol > 0.0)) throw std::invalid_argument("tol = " + format_double(tol) + " is not allowed: tol must be > 0");
  if (max_iter < 0) throw std::invalid_argument("max_iter = " + std::to_string(max_iter) + " must be >= 0");
  SolveOptions opt;
  opt.alpha = alpha;
  opt.beta = beta;
  opt.tol = tol;
  opt.max_iter = max_iter;
  opt.objective = objective;
  return opt;
}

BtMethod parse_method(const std::string& method) {
  if (method == "newton") return BtMethod::Newton;
  if (method == "mm") return BtMethod::MM;
  if (method == "newman") return BtMethod::Newman;
  throw std::invalid_argument("method = '" + method + "' is not a PoE-BT method: use 'newton', 'mm' or 'newman'");
}

using bindings::to_dict;
using bindings::to_numpy;

// The alpha = 0 existence check of the CPU backend, on the host comparisons.
void require_optimum(const GraphInfo& graph, const Comparisons& c, void*) { cpu::require_bt_optimum_exists(c, graph); }

py::dict solve_with(const Backend& backend, const DeviceComparisons& dc, const std::string& model,
                    const std::string& method, const SolveOptions& opt) {
  SolveResult res;
  if (model == "bt") {
    const BtMethod meth = parse_method(method);
    py::gil_scoped_release release;
    res = backend.solve_bt(dc, opt, meth, opt.alpha == 0.0 ? &require_optimum : nullptr, nullptr);
  } else if (model == "gaussian") {
    py::gil_scoped_release release;
    res = backend.solve_gaussian(dc, opt);
  } else {
    throw std::invalid_argument("model = '" + model + "' is not allowed: use 'bt' or 'gaussian'");
  }
  return to_dict(res);
}

}  // namespace

void register_device_solvers(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const devices::DeviceOutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });

  m.def(
      "device_solve",
      [](const std::string& device, const std::string& model, py::handle i, py::handle j, py::handle p, py::handle w,
         std::optional<long long> n_items, const std::string& method, double alpha, double beta, double tol,
         int max_iter, bool objective) {
        const Backend& backend = backend_for(device);
        const SolveOptions opt = read_options(alpha, beta, tol, max_iter, objective);
        HostInput in;
        read_host(in, i, j, p, w, n_items);
        return solve_with(backend, in.dc, model, method, opt);
      },
      py::arg("device"), py::arg("model"), py::arg("i"), py::arg("j"), py::arg("p") = py::none(),
      py::arg("w") = py::none(), py::arg("n_items") = py::none(), py::arg("method") = "newton",
      py::arg("alpha") = 1.0, py::arg("beta") = 0.5, py::arg("tol") = 1e-8, py::arg("max_iter") = 100,
      py::arg("objective") = true,
      R"doc(Solve PoE-BT (model="bt") or PoE-Gaussian on a Thrust backend (device "thrust" or "cuda").

Numpy arrays, validated on the host (the messages of the CPU backend); the CUDA backend
copies each once to the device. Returns the dict of solve_bt.)doc");

  m.def(
      "device_solve_pointers",
      [](const std::string& device, const std::string& model, std::uintptr_t i, std::uintptr_t j, std::uintptr_t p,
         std::uintptr_t w, long long m_count, int index_bytes, std::optional<long long> n_items,
         const std::string& method, double alpha, double beta, double tol, int max_iter, bool objective) {
        const Backend& backend = backend_for(device);
        const SolveOptions opt = read_options(alpha, beta, tol, max_iter, objective);
        if (index_bytes != 4 && index_bytes != 8) {
          throw std::invalid_argument("index_bytes = " + std::to_string(index_bytes) + " must be 4 or 8");
        }
        if (m_count > 0 && (!i || !j)) throw std::invalid_argument("i and j must be non-null device pointers");
        DeviceComparisons dc;
        dc.memory = devices::Memory::Device;
        dc.n = n_items ? *n_items : -1;
        dc.m = m_count;
        dc.i = reinterpret_cast<const void*>(i);
        dc.j = reinterpret_cast<const void*>(j);
        dc.index_bytes = index_bytes;
        dc.p = reinterpret_cast<const double*>(p);
        dc.w = reinterpret_cast<const double*>(w);
        return solve_with(backend, dc, model, method, opt);
      },
      py::arg("device"), py::arg("model"), py::arg("i"), py::arg("j"), py::arg("p"), py::arg("w"), py::arg("m"),
      py::arg("index_bytes"), py::arg("n_items") = py::none(), py::arg("method") = "newton", py::arg("alpha") = 1.0,
      py::arg("beta") = 0.5, py::arg("tol") = 1e-8, py::arg("max_iter") = 100, py::arg("objective") = true,
      R"doc(Solve from arrays already in the backend's memory, given by address (0 for an absent p or w).

i, j: int32 (index_bytes=4) or int64 (8) item indices; p, w: float64. For device="cuda"
these are device pointers (torch CUDA tensors, used in place; the caller keeps them alive
and the stream synchronised); for device="thrust" host pointers. Validated by the backend,
on the device, with the CPU backend's messages.)doc");

  m.def(
      "device_components",
      [](const std::string& device, py::handle i, py::handle j, py::handle w, std::optional<long long> n_items) {
        const Backend& backend = backend_for(device);
        HostInput in;
        read_host(in, i, j, py::none(), w, n_items);
        GraphInfo graph;
        {
          py::gil_scoped_release release;
          graph = backend.components(in.dc);
        }
        return py::make_tuple(to_numpy(graph.labels), graph.n_components);
      },
      py::arg("device"), py::arg("i"), py::arg("j"), py::arg("w") = py::none(), py::arg("n_items") = py::none(),
      "Connected components on a Thrust backend: (labels, n_components).");

  m.def(
      "device_bt_curvature",
      [](const std::string& device, py::handle i, py::handle j, py::handle scores, py::handle w, double alpha) {
        const Backend& backend = backend_for(device);
        read_options(alpha, 0.5, 1.0, 0, true);
        auto s = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(scores);
        if (!s || s.ndim() != 1) throw py::type_error("scores must be a 1-D float array");
        HostInput in;
        read_host(in, i, j, py::none(), w, static_cast<long long>(s.shape(0)));
        std::vector<double> curv, prior;
        {
          py::gil_scoped_release release;
          backend.bt_curvature(in.dc, s.data(), alpha, curv, prior);
        }
        return py::make_tuple(to_numpy(curv), to_numpy(prior));
      },
      py::arg("device"), py::arg("i"), py::arg("j"), py::arg("scores"), py::arg("weights") = py::none(),
      py::arg("alpha") = 1.0, "bt_curvature on a Thrust backend: (curv, prior).");

  m.def(
      "device_local_variance",
      [](const std::string& device, py::handle i, py::handle j, py::handle curv, py::handle prior,
         std::optional<long long> n_items) {
        const Backend& backend = backend_for(device);
        if (curv.is_none()) {
          throw py::type_error("curv must be a float array with one curvature per comparison, got None");
        }
        HostInput in;
        read_host(in, i, j, py::none(), curv, n_items, "curv");
        auto pr = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(prior);
        if (!pr || pr.ndim() != 1 || pr.shape(0) != in.dc.n) {
          throw std::invalid_argument("prior must be a float array of length n_items = " + std::to_string(in.dc.n));
        }
        std::vector<double> var;
        {
          py::gil_scoped_release release;
          var = backend.local_variance(in.dc, pr.data());
        }
        return to_numpy(var);
      },
      py::arg("device"), py::arg("i"), py::arg("j"), py::arg("curv"), py::arg("prior"), py::arg("n_items") = py::none(),
      "local_variance on a Thrust backend.");

  m.def(
      "device_build_info",
      []() {
        py::dict info;
        const Backend* omp = devices::omp_backend();
        const Backend* cuda = devices::cuda_backend();
        info["thrust"] = omp != nullptr;
        info["thrust_version"] = omp ? omp->version() : std::string();
        info["cuda_solvers"] = cuda != nullptr;
        info["cuda_thrust_version"] = cuda ? cuda->version() : std::string();
        return info;
      },
      "Which Thrust backends this build holds: thrust (OpenMP), cuda_solvers, and their Thrust versions.");
}
