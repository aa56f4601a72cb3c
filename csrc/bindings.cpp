// pybind11 bindings: convert and validate numpy buffers, release the GIL, call the core.
// Every function here validates its input itself (the core is callable directly), and
// bad input raises TypeError or ValueError naming the field and the first bad row.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef PYCOMP_WITH_OPENMP
#include <omp.h>
#endif

#include "core/cuda_info.h"
#include "bindings_common.h"
#include "core/validate.h"
#include "cpu/memory.h"
#include "cpu/parallel.h"
#include "cpu/solvers.h"

namespace py = pybind11;
using namespace pycomp;

namespace {

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

py::array as_array(const py::handle& obj, const char* field) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(field) + " must be a numpy array, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (a.ndim() != 1) {
    throw std::invalid_argument(std::string(field) + " must be 1-D, got " + std::to_string(a.ndim()) +
                                "-D array of shape " + py::str(py::tuple(a.attr("shape"))).cast<std::string>());
  }
  return a;
}

// Item indices as int32 (a view when already int32, otherwise a checked copy).
struct Indices {
  py::array_t<std::int32_t> i32;   // owns the int32 data when the input was int32
  py::array_t<std::int64_t> i64;   // owns the data when the input had another integer type
  std::vector<index_t> converted;  // filled after validation when the input was not int32
  const index_t* data = nullptr;
  count_t size = 0;
  bool is_int32 = false;
};

Indices read_indices(const py::handle& obj, const char* field) {
  py::array a = as_array(obj, field);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw py::type_error(std::string(field) + " must be an integer array of item indices, got dtype " + dtype_name(a));
  }
  Indices idx;
  idx.size = static_cast<count_t>(a.shape(0));
  if (a.dtype().is(py::dtype::of<std::int32_t>())) {
    idx.i32 = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>::ensure(a);
    idx.is_int32 = true;
  } else {
    if (kind == 'u' && a.dtype().itemsize() == 8) {
      // uint64 values above 2^63 would wrap; cast through numpy's checked view instead.
      py::object max = a.attr("max")();
      if (a.size() > 0 && max.cast<unsigned long long>() > static_cast<unsigned long long>(INT64_MAX)) {
        throw std::invalid_argument(std::string(field) + " holds an index above 2^63");
      }
    }
    idx.i64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  }
  return idx;
}

std::optional<py::array_t<double>> read_values(const py::handle& obj, const char* field) {
  if (obj.is_none()) return std::nullopt;
  py::array a = as_array(obj, field);
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
    throw py::type_error(std::string(field) + " must be a numeric array, got dtype " + dtype_name(a));
  }
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
}

// Validated comparisons with their owning buffers kept alive.
struct Input {
  Indices i, j;
  std::optional<py::array_t<double>> p, w;
  Comparisons view;
};

// w_field names the per-comparison weights in messages ("curv" for local_variance).
Input read_input(const py::handle& i, const py::handle& j, const py::handle& p, const py::handle& w,
                 std::optional<long long> n_items, const char* w_field = "weights") {
  Input in;
  in.i = read_indices(i, "i");
  in.j = read_indices(j, "j");
  in.p = read_values(p, "p");
  in.w = read_values(w, w_field);
  const count_t m = in.i.size;
  if (in.j.size != m) {
    throw std::invalid_argument("j has length " + std::to_string(in.j.size) + " but i has length " + std::to_string(m));
  }
  if (in.p && in.p->shape(0) != m) {
    throw std::invalid_argument("p has length " + std::to_string(in.p->shape(0)) + " but i has length " + std::to_string(m));
  }
  if (in.w && in.w->shape(0) != m) {
    throw std::invalid_argument(std::string(w_field) + " has length " + std::to_string(in.w->shape(0)) +
                                " but i has length " + std::to_string(m));
  }
  const double* pd = in.p ? in.p->data() : nullptr;
  const double* wd = in.w ? in.w->data() : nullptr;
  const bool narrow = in.i.is_int32 && in.j.is_int32;
  long long n = 0;
  {
    py::gil_scoped_release release;
    auto largest = [&](auto* a, auto* b) {
      long long mx = -1;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for schedule(static) reduction(max : mx) if (m >= 20000)
#endif
      for (count_t k = 0; k < m; ++k) mx = std::max<long long>(mx, std::max<long long>(a[k], b[k]));
      return mx;
    };
    if (narrow) {
      const std::int32_t *a = in.i.i32.data(), *b = in.j.i32.data();
      n = n_items ? *n_items : (m > 0 ? largest(a, b) + 1 : 0);
      validate_comparisons(a, b, pd, wd, m, n, w_field);
      in.i.data = a;
      in.j.data = b;
    } else {
      // Mixed or wide integer types: validate in int64, then narrow.
      std::vector<std::int64_t> wide_i, wide_j;
      auto wide = [&](Indices& x, std::vector<std::int64_t>& store) -> const std::int64_t* {
        if (!x.is_int32) return x.i64.data();
        store.assign(x.i32.data(), x.i32.data() + m);
        return store.data();
      };
      const std::int64_t* a = wide(in.i, wide_i);
      const std::int64_t* b = wide(in.j, wide_j);
      n = n_items ? *n_items : (m > 0 ? largest(a, b) + 1 : 0);
      validate_comparisons(a, b, pd, wd, m, n, w_field);
      in.i.converted.assign(a, a + m);
      in.j.converted.assign(b, b + m);
      in.i.data = in.i.converted.data();
      in.j.data = in.j.converted.data();
    }
  }
  in.view.n = static_cast<index_t>(n);
  in.view.m = m;
  in.view.i = in.i.data;
  in.view.j = in.j.data;
  in.view.p = pd;
  in.view.w = wd;
  return in;
}

// n_threads >= 0 (0: the default); more than the processors are capped by resolve_threads.
void check_threads(int n_threads) {
  if (n_threads < 0) {
    throw std::invalid_argument("n_threads = " + std::to_string(n_threads) +
                                " is not allowed: use 0 (the default) or a positive thread count");
  }
}

SolveOptions read_options(double alpha, double beta, double tol, int max_iter, int n_threads, bool objective) {
  if (!(alpha >= 0.0) || !std::isfinite(alpha)) {
    throw std::invalid_argument("alpha = " + format_double(alpha) + " is not allowed: alpha must be finite and >= 0");
  }
  if (!std::isfinite(beta)) throw std::invalid_argument("beta = " + format_double(beta) + " must be finite");
  if (!(tol > 0.0)) throw std::invalid_argument("tol = " + format_double(tol) + " is not allowed: tol must be > 0");
  if (max_iter < 0) throw std::invalid_argument("max_iter = " + std::to_string(max_iter) + " must be >= 0");
  check_threads(n_threads);
  SolveOptions opt;
  opt.alpha = alpha;
  opt.beta = beta;
  opt.tol = tol;
  opt.max_iter = max_iter;
  opt.n_threads = n_threads;
  opt.objective = objective;
  return opt;
}

using bindings::to_dict;
using bindings::to_numpy;

// Raises pycomp.exceptions.NoOptimumError (a ValueError) carrying the offending group.
void translate_no_optimum(std::exception_ptr error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const cpu::NoOptimum& e) {
    std::vector<std::int64_t> items(e.items.begin(), e.items.end());
    try {
      py::object cls = py::module_::import("pycomp.exceptions").attr("NoOptimumError");
      py::object exc = cls(e.what(), to_numpy(items), e.component, e.direction);
      PyErr_SetObject(cls.ptr(), exc.ptr());
    } catch (py::error_already_set&) {
      PyErr_SetString(PyExc_ValueError, e.what());  // pycomp.exceptions could not be imported
    }
  }
}

BtMethod parse_method(const std::string& method) {
  if (method == "newton") return BtMethod::Newton;
  if (method == "mm") return BtMethod::MM;
  if (method == "newman") return BtMethod::Newman;
  throw std::invalid_argument("method = '" + method + "' is not a PoE-BT method: use 'newton', 'mm' or 'newman'");
}

}  // namespace

void register_uncertainty(py::module_& m);  // csrc/bindings_uncertainty.cpp

PYBIND11_MODULE(_core, m) {
  register_uncertainty(m);
  m.doc() = "pycomp compiled core: product-of-experts Bradley-Terry and Gaussian solvers (CPU/OpenMP)";
  py::register_exception_translator(&translate_no_optimum);
  { void register_device_solvers(py::module_&); register_device_solvers(m); }  // csrc/bindings_devices.cpp

  m.def(
      "solve_bt",
      [](py::handle i, py::handle j, py::handle p, py::handle w, std::optional<long long> n_items,
         const std::string& method, double alpha, double tol, int max_iter, int n_threads, bool objective) {
        const BtMethod meth = parse_method(method);
        const SolveOptions opt = read_options(alpha, 0.5, tol, max_iter, n_threads, objective);
        Input in = read_input(i, j, p, w, n_items);
        SolveResult res;
        {
          py::gil_scoped_release release;
          GraphInfo graph = cpu::connected_components(in.view);
          if (alpha == 0.0) cpu::require_bt_optimum_exists(in.view, graph);
          const cpu::ItemGraph items = cpu::build_item_graph(in.view, cpu::resolve_threads(n_threads, in.view.m));
          const cpu::CpuKernels& kernels = cpu::cpu_kernels();
          res = meth == BtMethod::Newton ? kernels.bt_newton(items, opt, graph)
                                         : kernels.bt_fixed_point(items, opt, graph, meth);
          res.graph = std::move(graph);
        }
        return to_dict(res);
      },
      py::arg("i"), py::arg("j"), py::arg("p") = py::none(), py::arg("w") = py::none(),
      py::arg("n_items") = py::none(), py::arg("method") = "newton", py::arg("alpha") = 1.0, py::arg("tol") = 1e-8,
      py::arg("max_iter") = 100, py::arg("n_threads") = 0, py::arg("objective") = true,
      R"doc(Minimise the PoE-BT objective on the CPU.

i, j: 1-D integer arrays (int32 used in place); p, w: 1-D float arrays or None.
Returns a dict: scores, n_iter, n_inner, converged, grad_norm, objective (NaN
when objective=False: the final pass that computes it is skipped),
n_components, labels, component_sizes.)doc");

  m.def(
      "solve_gaussian",
      [](py::handle i, py::handle j, py::handle p, py::handle w, std::optional<long long> n_items, double alpha,
         double beta, double tol, int max_iter, int n_threads, bool objective) {
        const SolveOptions opt = read_options(alpha, beta, tol, max_iter, n_threads, objective);
        Input in = read_input(i, j, p, w, n_items);
        SolveResult res;
        {
          py::gil_scoped_release release;
          GraphInfo graph = cpu::connected_components(in.view);
          // PoE-Gaussian only needs the weights: a graph without p.
          Comparisons weights_only = in.view;
          weights_only.p = nullptr;
          const cpu::ItemGraph items = cpu::build_item_graph(weights_only, cpu::resolve_threads(n_threads, in.view.m));
          res = cpu::cpu_kernels().gaussian_cg(in.view, items, opt, graph);
          res.graph = std::move(graph);
        }
        return to_dict(res);
      },
      py::arg("i"), py::arg("j"), py::arg("p") = py::none(), py::arg("w") = py::none(),
      py::arg("n_items") = py::none(), py::arg("alpha") = 1.0, py::arg("beta") = 0.5, py::arg("tol") = 1e-8,
      py::arg("max_iter") = 1000, py::arg("n_threads") = 0, py::arg("objective") = true,
      "Minimise the PoE-Gaussian objective by PCG on the CPU (objective=False: NaN, its pass skipped).");

  m.def(
      "objective",
      [](py::handle i, py::handle j, py::handle p, py::handle w, py::handle scores, std::optional<long long> n_items,
         const std::string& model, double alpha, double beta, int n_threads) {
        if (model != "bt" && model != "gaussian") {
          throw std::invalid_argument("model = '" + model + "' is not allowed: use 'bt' or 'gaussian'");
        }
        read_options(alpha, beta, 1.0, 0, n_threads, true);
        Input in = read_input(i, j, p, w, n_items);
        auto s = read_values(scores, "scores");
        if (!s || s->ndim() != 1 || s->shape(0) != in.view.n) {
          throw std::invalid_argument("scores must be a float array of length n_items = " + std::to_string(in.view.n));
        }
        py::gil_scoped_release release;
        const int threads = cpu::resolve_threads(n_threads, in.view.m);
        return model == "bt" ? cpu::bt_objective_of(in.view, s->data(), alpha, threads)
                             : cpu::gaussian_objective_of(in.view, s->data(), alpha, beta, threads);
      },
      py::arg("i"), py::arg("j"), py::arg("p") = py::none(), py::arg("w") = py::none(), py::arg("scores"),
      py::arg("n_items") = py::none(), py::arg("model") = "bt", py::arg("alpha") = 1.0, py::arg("beta") = 0.5,
      py::arg("n_threads") = 0, "The PoE-BT or PoE-Gaussian objective F at the given scores.");

  m.def(
      "components",
      [](py::handle i, py::handle j, py::handle w, std::optional<long long> n_items) {
        Input in = read_input(i, j, py::none(), w, n_items);
        GraphInfo graph;
        {
          py::gil_scoped_release release;
          graph = cpu::connected_components(in.view);
        }
        return py::make_tuple(to_numpy(graph.labels), graph.n_components);
      },
      py::arg("i"), py::arg("j"), py::arg("w") = py::none(), py::arg("n_items") = py::none(),
      "Connected components of the comparison graph: (labels, n_components).");

  m.def(
      "local_variance",
      [](py::handle i, py::handle j, py::handle curv, py::handle prior, std::optional<long long> n_items,
         int n_threads) {
        // curv = None would leave the core reading curvatures from a null pointer.
        if (curv.is_none()) {
          throw py::type_error("curv must be a float array with one curvature per comparison, got None");
        }
        check_threads(n_threads);
        Input in = read_input(i, j, py::none(), curv, n_items, "curv");
        auto pr = read_values(prior, "prior");
        if (!pr || pr->shape(0) != in.view.n) {
          throw std::invalid_argument("prior must be a float array of length n_items = " + std::to_string(in.view.n));
        }
        std::vector<double> var;
        {
          py::gil_scoped_release release;
          var = cpu::local_variance(in.view, in.view.w, pr->data(), cpu::resolve_threads(n_threads, in.view.m));
        }
        return to_numpy(var);
      },
      py::arg("i"), py::arg("j"), py::arg("curv"), py::arg("prior"), py::arg("n_items") = py::none(),
      py::arg("n_threads") = 0,
      "Local approximation of diag(H^-1), H = Laplacian with edge weights curv + diag(prior).");

  m.def(
      "bt_curvature",
      [](py::handle i, py::handle j, py::handle scores, py::handle w, double alpha, int n_threads) {
        read_options(alpha, 0.5, 1.0, 0, n_threads, true);
        auto s = read_values(scores, "scores");
        if (!s) throw py::type_error("scores must be a float array, got None");
        Input in = read_input(i, j, py::none(), w, static_cast<long long>(s->shape(0)));
        py::array_t<double> curv(static_cast<py::ssize_t>(in.view.m)), prior(static_cast<py::ssize_t>(in.view.n));
        double* curv_out = curv.mutable_data();
        double* prior_out = prior.mutable_data();
        {
          py::gil_scoped_release release;
          cpu::bt_curvature(in.view, s->data(), alpha, cpu::resolve_threads(n_threads, in.view.m), curv_out, prior_out);
        }
        return py::make_tuple(curv, prior);
      },
      py::arg("i"), py::arg("j"), py::arg("scores"), py::arg("weights") = py::none(), py::arg("alpha") = 1.0,
      py::arg("n_threads") = 0,
      R"doc(The parts of the PoE-BT Hessian at the given scores: (curv, prior).

curv[k] = w_k sig(d) sig(-d) with d = scores[i[k]] - scores[j[k]] (the Hessian is the
Laplacian with these edge weights plus diag(prior)); prior[a] = 2 alpha sig(s_a) sig(-s_a).)doc");

  m.def(
      "release_memory", []() { return cpu::BlockCache::instance().release_cached(); },
      "Free the large work arrays kept from earlier solves for reuse; returns the bytes freed.");
  m.def(
      "cached_memory", []() { return cpu::BlockCache::instance().cached_bytes(); },
      "Bytes of large work arrays kept from earlier solves for reuse (at most 1 GiB).");

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
    info["cpu_kernels"] = pycomp::cpu::cpu_kernels().isa;
    return info;
  });
}
