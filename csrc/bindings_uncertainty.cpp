// pybind11 bindings of the uncertainty core: collapsing repeated pairs (cpu/collapse.h)
// and the bootstrap (cpu/bootstrap.h). Registered into _core by register_uncertainty.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/validate.h"
#include "cpu/bootstrap.h"
#include "cpu/collapse.h"
#include "cpu/parallel.h"

namespace py = pybind11;
using namespace pycomp;

namespace {

template <class T>
py::array_t<T> copy_out(const std::vector<T>& v) {
  py::array_t<T> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

std::optional<F64> optional_values(const py::handle& obj, const char* field, py::ssize_t m) {
  if (obj.is_none()) return std::nullopt;
  F64 a = F64::ensure(obj);
  if (!a || a.ndim() != 1 || a.shape(0) != m) {
    throw std::invalid_argument(std::string(field) + " must be a 1-D float array of length " + std::to_string(m));
  }
  return a;
}

template <class Index>
cpu::Collapsed collapse_typed(const py::array& i_obj, const py::array& j_obj, const double* p, const double* w,
                              long long n_items, const std::int64_t* cluster, std::int64_t n_clusters, bool units,
                              int n_threads) {
  auto i = py::array_t<Index, py::array::c_style | py::array::forcecast>::ensure(i_obj);
  auto j = py::array_t<Index, py::array::c_style | py::array::forcecast>::ensure(j_obj);
  const count_t m = static_cast<count_t>(i.shape(0));
  if (j.shape(0) != m) {
    throw std::invalid_argument("j has length " + std::to_string(j.shape(0)) + " but i has length " + std::to_string(m));
  }
  const Index* a = i.data();
  const Index* b = j.data();
  py::gil_scoped_release release;
  validate_comparisons(a, b, p, w, m, n_items);
  if (cluster) {
    const count_t k = first_bad_row(m, [&](count_t r) { return cluster[r] < 0 || cluster[r] >= n_clusters; });
    if (k < m) {
      throw std::invalid_argument("cluster[" + std::to_string(k) + "] = " + std::to_string(cluster[k]) +
                                  " is outside [0, n_clusters=" + std::to_string(n_clusters) + ") " +
                                  comparison_row(k));
    }
  }
  return cpu::collapse_comparisons(a, b, p, w, m, static_cast<index_t>(n_items), cluster, n_clusters, units,
                                   cpu::resolve_threads(n_threads, m));
}

}  // namespace

void register_uncertainty(py::module_& m) {
  py::class_<cpu::Collapsed>(m, "Collapsed",
                             "Comparisons collapsed to unique pairs, with the bootstrap's resampling units.")
      .def_readonly("n_items", &cpu::Collapsed::n)
      .def_readonly("n_comparisons", &cpu::Collapsed::m)
      .def_readonly("draws", &cpu::Collapsed::draws)
      .def_readonly("categorical", &cpu::Collapsed::categorical)
      .def_property_readonly("n_pairs", [](const cpu::Collapsed& c) { return c.a.size(); })
      .def_property_readonly("n_units", [](const cpu::Collapsed& c) { return c.unit_count.size(); })
      .def_property_readonly("a", [](const cpu::Collapsed& c) { return copy_out(c.a); })
      .def_property_readonly("b", [](const cpu::Collapsed& c) { return copy_out(c.b); })
      .def_property_readonly("wins", [](const cpu::Collapsed& c) { return copy_out(c.wins); })
      .def_property_readonly("total", [](const cpu::Collapsed& c) { return copy_out(c.total); })
      .def_property_readonly("q0", [](const cpu::Collapsed& c) { return copy_out(c.q0); })
      .def_property_readonly("q1", [](const cpu::Collapsed& c) { return copy_out(c.q1); })
      .def_property_readonly("q2", [](const cpu::Collapsed& c) { return copy_out(c.q2); })
      .def_property_readonly("unit_count", [](const cpu::Collapsed& c) { return copy_out(c.unit_count); })
      .def_property_readonly("unit_start", [](const cpu::Collapsed& c) { return copy_out(c.unit_start); })
      .def_property_readonly("unit_pair", [](const cpu::Collapsed& c) { return copy_out(c.unit_pair); })
      .def_property_readonly("unit_wins", [](const cpu::Collapsed& c) { return copy_out(c.unit_wins); })
      .def_property_readonly("unit_total", [](const cpu::Collapsed& c) { return copy_out(c.unit_total); });

  m.def(
      "collapse",
      [](py::array i, py::array j, py::handle p, py::handle w, long long n_items, py::handle cluster,
         std::int64_t n_clusters, bool units, int n_threads) {
        const py::ssize_t m = i.shape(0);
        if (i.ndim() != 1 || j.ndim() != 1) throw std::invalid_argument("i and j must be 1-D");
        if (n_threads < 0) throw std::invalid_argument("n_threads = " + std::to_string(n_threads) + " must be >= 0");
        auto pv = optional_values(p, "p", m);
        auto wv = optional_values(w, "weights", m);
        std::optional<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>> cv;
        if (!cluster.is_none()) {
          cv = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(cluster);
          if (!*cv || cv->ndim() != 1 || cv->shape(0) != m) {
            throw std::invalid_argument("cluster must be a 1-D integer array of length " + std::to_string(m));
          }
        }
        const double* pd = pv ? pv->data() : nullptr;
        const double* wd = wv ? wv->data() : nullptr;
        const std::int64_t* cd = cv ? cv->data() : nullptr;
        const bool narrow = i.dtype().is(py::dtype::of<std::int32_t>()) && j.dtype().is(py::dtype::of<std::int32_t>());
        return narrow ? collapse_typed<std::int32_t>(i, j, pd, wd, n_items, cd, n_clusters, units, n_threads)
                      : collapse_typed<std::int64_t>(i, j, pd, wd, n_items, cd, n_clusters, units, n_threads);
      },
      py::arg("i"), py::arg("j"), py::arg("p") = py::none(), py::arg("w") = py::none(), py::arg("n_items"),
      py::arg("cluster") = py::none(), py::arg("n_clusters") = 0, py::arg("units") = true, py::arg("n_threads") = 0,
      R"doc(Collapse comparisons into unique pairs (a < b, p oriented as a beats b).

Returns a Collapsed: per-pair sums wins = sum w p, total = sum w and the second
moments q0, q1, q2 = sum w^2, sum w^2 p, sum w^2 p^2; with units=True also the
bootstrap's resampling units (identical comparisons, or clusters when cluster is given).)doc");

  m.def(
      "bootstrap_counts",
      [](const cpu::Collapsed& c, std::int64_t replicates, std::uint64_t seed) {
        if (replicates <= 0) throw std::invalid_argument("replicates = " + std::to_string(replicates) + " must be >= 1");
        const py::ssize_t U = static_cast<py::ssize_t>(c.unit_count.size());
        py::array_t<std::int64_t> out({static_cast<py::ssize_t>(replicates), U});
        std::int64_t* d = out.mutable_data();
        py::gil_scoped_release release;
        const cpu::UnitSampler sampler(c);
        for (std::int64_t r = 0; r < replicates; ++r) sampler.draw(seed, r, d + r * U);
        return out;
      },
      py::arg("collapsed"), py::arg("replicates"), py::arg("seed"),
      "The multinomial unit counts of replicates 0..replicates-1 (replicates x n_units), as bootstrap draws them.");

  m.def(
      "bootstrap",
      [](const cpu::Collapsed& c, py::handle scores, const std::string& model, double alpha, double beta, double tol,
         int max_iter, std::int64_t replicates, std::uint64_t seed, int n_threads, py::handle counts,
         int dense_limit) {
        if (model != "bt" && model != "gaussian") {
          throw std::invalid_argument("model = '" + model + "' is not allowed: use 'bt' or 'gaussian'");
        }
        if (replicates <= 0) throw std::invalid_argument("replicates = " + std::to_string(replicates) + " must be >= 1");
        if (n_threads < 0) throw std::invalid_argument("n_threads = " + std::to_string(n_threads) + " must be >= 0");
        F64 s0 = F64::ensure(scores);
        if (!s0 || s0.ndim() != 1 || s0.shape(0) != c.n) {
          throw std::invalid_argument("scores must be a float array of length n_items = " + std::to_string(c.n));
        }
        std::optional<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>> given;
        if (!counts.is_none()) {
          given = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(counts);
          const py::ssize_t U = static_cast<py::ssize_t>(c.unit_count.size());
          if (!*given || given->ndim() != 2 || given->shape(0) != replicates || given->shape(1) != U) {
            throw std::invalid_argument("counts must be an integer array of shape (replicates, n_units) = (" +
                                        std::to_string(replicates) + ", " + std::to_string(U) + ")");
          }
        }
        cpu::BootstrapOptions opt;
        opt.gaussian = model == "gaussian";
        opt.alpha = alpha;
        opt.beta = beta;
        opt.tol = tol;
        opt.max_iter = max_iter;
        opt.n_threads = n_threads;
        opt.replicates = replicates;
        opt.seed = seed;
        opt.dense_limit = dense_limit;
        cpu::BootstrapResult r;
        {
          py::gil_scoped_release release;
          r = cpu::bootstrap_scores(c, s0.data(), opt, given ? given->data() : nullptr);
        }
        py::array_t<double> out({static_cast<py::ssize_t>(replicates), static_cast<py::ssize_t>(c.n)});
        std::copy(r.scores.begin(), r.scores.end(), out.mutable_data());
        std::vector<bool> ok(r.converged.begin(), r.converged.end());
        return py::make_tuple(out, copy_out(r.n_iter), py::array_t<bool>(py::cast(ok)));
      },
      py::arg("collapsed"), py::arg("scores"), py::arg("model") = "bt", py::arg("alpha") = 1.0,
      py::arg("beta") = 0.5, py::arg("tol") = 1e-8, py::arg("max_iter") = 100, py::arg("replicates"),
      py::arg("seed") = 0, py::arg("n_threads") = 0, py::arg("counts") = py::none(), py::arg("dense_limit") = 1500,
      R"doc(Bootstrap replicates of the scores: (scores [replicates x n], n_iter, converged).

Each replicate draws the resampling units of `collapsed` with replacement from its
own random stream (seed, replicate), or takes them from `counts`, and re-solves
from `scores` (the full solution).)doc");
}
