// The entry points of one device system (backend.h's Backend table): staging the
// comparisons on the device, validating arrays that arrive in device memory, and turning
// device failures into DeviceError with the step and the sizes. Included once by
// omp_backend.cpp and once by csrc/cuda/solvers.cu.
//
// The including file defines PYCOMP_THRUST_NS, PYCOMP_THRUST_NAME ("thrust" or "cuda"),
// PYCOMP_THRUST_SYSTEM ("OpenMP" or "CUDA"),
// PYCOMP_THRUST_HOST_IS_DEVICE (1 when host memory is the device's, the OpenMP system)
// and PYCOMP_THRUST_CLEAR_ERROR() (clears a non-sticky CUDA error after a failure).
#pragma once

#include <cfloat>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "core/validate.h"
#include "thrust/backend.h"
#include "thrust/bt_solvers.h"
#include "thrust/gaussian_and_se.h"
#include "thrust/graph.h"

namespace pycomp {
namespace PYCOMP_THRUST_NS {

using devices::DeviceComparisons;
using devices::Memory;

// ---------------------------------------------------------------------------------------
// Validation of arrays in device memory: the first bad row of each check of
// core/validate.h, found on the device, then the same message.

template <class Bad>
struct FirstBad {
  Bad bad;
  count_t none;
  PYCOMP_HD count_t operator()(count_t r) const { return bad(r) ? r : none; }
};
struct MinCount {
  PYCOMP_HD count_t operator()(count_t x, count_t y) const { return x < y ? x : y; }
};
template <class Bad>
count_t first_bad_row_on_device(count_t m, Bad bad) {
  return thr::transform_reduce(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(m),
                               FirstBad<Bad>{bad, m}, m, MinCount());
}
template <class T>
struct OutsideRange {
  const T* a;
  long long n;
  PYCOMP_HD bool operator()(count_t r) const { return a[r] < 0 || static_cast<long long>(a[r]) >= n; }
};
template <class T>
struct SameItem {
  const T *i, *j;
  PYCOMP_HD bool operator()(count_t r) const { return i[r] == j[r]; }
};
struct NotProbability {
  const double* p;
  PYCOMP_HD bool operator()(count_t r) const { return !(p[r] >= 0.0 && p[r] <= 1.0); }
};
struct NotWeight {
  const double* w;
  PYCOMP_HD bool operator()(count_t r) const { return !(w[r] >= 0.0 && w[r] <= DBL_MAX); }
};
template <class T>
struct LargestIndex {
  const T *i, *j;
  PYCOMP_HD long long operator()(count_t r) const {
    return static_cast<long long>(i[r] > j[r] ? i[r] : j[r]);
  }
};
struct MaxLong {
  PYCOMP_HD long long operator()(long long x, long long y) const { return x > y ? x : y; }
};
template <class T>
struct Narrow {
  PYCOMP_HD index_t operator()(T x) const { return static_cast<index_t>(x); }
};

template <class T>
T read_one(const T* a, count_t k) {
  return thr::device_pointer_cast(a)[k];
}

// Validates comparisons in device memory; returns n_items.
template <class T>
long long validate_on_device(const T* i, const T* j, const double* p, const double* w, count_t m, long long n_items,
                             const char* w_field) {
  if (m == 0) check_comparison_sizes(0, n_items < 0 ? 0 : n_items);
  if (n_items < 0) {
    n_items = thr::transform_reduce(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(m),
                                    LargestIndex<T>{i, j}, -1LL, MaxLong()) +
              1;
  }
  check_comparison_sizes(m, n_items);
  const char* names[2] = {"i", "j"};
  const T* idx[2] = {i, j};
  for (int f = 0; f < 2; ++f) {
    const count_t k = first_bad_row_on_device(m, OutsideRange<T>{idx[f], n_items});
    if (k < m) throw_bad_index(names[f], k, static_cast<long long>(read_one(idx[f], k)), n_items);
  }
  count_t k = first_bad_row_on_device(m, SameItem<T>{i, j});
  if (k < m) throw_self_comparison(k, static_cast<long long>(read_one(i, k)));
  if (p) {
    k = first_bad_row_on_device(m, NotProbability{p});
    if (k < m) throw_bad_probability(k, read_one(p, k));
  }
  if (w) {
    k = first_bad_row_on_device(m, NotWeight{w});
    if (k < m) throw_bad_weight(w_field, k, read_one(w, k));
  }
  return n_items;
}

// ---------------------------------------------------------------------------------------
// The comparisons on the device, and on the host when a host check needs them.

struct Staged {
  dvec<index_t> i, j;
  dvec<double> p, w;
  CompView view;
  thr::host_vector<index_t> host_i, host_j;
  thr::host_vector<double> host_p, host_w;
  Comparisons host;  // the host view (empty until host_view())
  const DeviceComparisons* source = nullptr;

  // The comparisons on the host: the caller's arrays, or copies of the device's.
  const Comparisons& host_view() {
    if (host.m == view.m && host.i) return host;
    host.n = view.n;
    host.m = view.m;
    if (source->memory == Memory::Host) {
      host.i = static_cast<const index_t*>(source->i);
      host.j = static_cast<const index_t*>(source->j);
      host.p = source->p;
      host.w = source->w;
      return host;
    }
    host_i.assign(thr::device_pointer_cast(view.i), thr::device_pointer_cast(view.i) + view.m);
    host_j.assign(thr::device_pointer_cast(view.j), thr::device_pointer_cast(view.j) + view.m);
    host.i = host_i.data();
    host.j = host_j.data();
    if (view.p) {
      host_p.assign(thr::device_pointer_cast(view.p), thr::device_pointer_cast(view.p) + view.m);
      host.p = host_p.data();
    }
    if (view.w) {
      host_w.assign(thr::device_pointer_cast(view.w), thr::device_pointer_cast(view.w) + view.m);
      host.w = host_w.data();
    }
    return host;
  }
};

template <class T>
void narrow_indices(const T* from, count_t m, dvec<index_t>& to) {
  to.resize(m);
  thr::transform(thr::device, thr::device_pointer_cast(from), thr::device_pointer_cast(from) + m, to.begin(),
                 Narrow<T>());
}

inline void stage(const DeviceComparisons& dc, Staged& st, Progress& progress) {
  st.source = &dc;
  const count_t m = dc.m;
  st.view.m = m;
  if (dc.memory == Memory::Host) {
    // Validated by the caller (core/validate.h), int32, n known.
    st.view.n = static_cast<index_t>(dc.n);
    const index_t* hi = static_cast<const index_t*>(dc.i);
    const index_t* hj = static_cast<const index_t*>(dc.j);
#if PYCOMP_THRUST_HOST_IS_DEVICE
    st.view.i = hi;
    st.view.j = hj;
    st.view.p = dc.p;
    st.view.w = dc.w;
#else
    progress.step = "copy to device";
    st.i.assign(hi, hi + m);
    st.j.assign(hj, hj + m);
    if (dc.p) st.p.assign(dc.p, dc.p + m);
    if (dc.w) st.w.assign(dc.w, dc.w + m);
    st.view.i = raw(st.i);
    st.view.j = raw(st.j);
    st.view.p = dc.p ? raw(st.p) : nullptr;
    st.view.w = dc.w ? raw(st.w) : nullptr;
#endif
    return;
  }
  progress.step = "validation on the device";
  long long n;
  if (dc.index_bytes == 8) {
    const auto* i64 = static_cast<const long long*>(dc.i);
    const auto* j64 = static_cast<const long long*>(dc.j);
    n = validate_on_device(i64, j64, dc.p, dc.w, m, dc.n, dc.w_field);
    narrow_indices(i64, m, st.i);
    narrow_indices(j64, m, st.j);
    st.view.i = raw(st.i);
    st.view.j = raw(st.j);
  } else {
    const auto* i32 = static_cast<const index_t*>(dc.i);
    const auto* j32 = static_cast<const index_t*>(dc.j);
    n = validate_on_device(i32, j32, dc.p, dc.w, m, dc.n, dc.w_field);
    st.view.i = i32;
    st.view.j = j32;
  }
  st.view.n = static_cast<index_t>(n);
  st.view.p = dc.p;
  st.view.w = dc.w;
}

// ---------------------------------------------------------------------------------------
// Failures of the device system become DeviceError naming the step and the sizes;
// validation errors (std::invalid_argument, NoOptimum among them) pass unchanged.

inline std::string where(const Progress& progress, const DeviceComparisons& dc) {
  std::string n = dc.n >= 0 ? std::to_string(dc.n) : std::string("from the indices");
  return std::string(" in step '") + progress.step + "' (n_items = " + n + ", comparisons = " + std::to_string(dc.m) +
         ")";
}

template <class F>
auto guarded(const DeviceComparisons& dc, Progress& progress, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::bad_alloc& e) {
    PYCOMP_THRUST_CLEAR_ERROR();
    throw devices::DeviceOutOfMemory(std::string("device='") + PYCOMP_THRUST_NAME + "' ran out of memory" +
                                     where(progress, dc) + ": " + e.what() +
                                     "; free device memory, or solve with device='cpu'");
  } catch (const std::exception& e) {
    PYCOMP_THRUST_CLEAR_ERROR();
    throw devices::DeviceError(std::string("device='") + PYCOMP_THRUST_NAME + "' failed" + where(progress, dc) + ": " +
                               e.what());
  }
}

// ---------------------------------------------------------------------------------------
// The Backend functions.

inline GraphInfo components_entry(const DeviceComparisons& dc) {
  Progress progress;
  return guarded(dc, progress, [&] {
    Staged st;
    stage(dc, st, progress);
    const DeviceGraph graph = build_graph(st.view, false, 0.5, progress);
    return components(graph, progress).info;
  });
}

inline SolveResult solve_bt_entry(const DeviceComparisons& dc, const SolveOptions& opt, BtMethod method,
                                  void (*host_check)(const GraphInfo&, const Comparisons&, void*), void* state) {
  Progress progress;
  return guarded(dc, progress, [&] {
    Staged st;
    stage(dc, st, progress);
    const DeviceGraph graph = build_graph(st.view, false, 0.5, progress);
    DeviceComponents comp = components(graph, progress);
    if (host_check) {
      progress.step = "existence check (host)";
      host_check(comp.info, st.host_view(), state);
    }
    if (opt.alpha == 0.0) prepare_centring(comp);
    SolveResult res = method == BtMethod::Newton ? bt_newton(graph, comp, opt, progress)
                                                 : bt_fixed_point(graph, comp, opt, method, progress);
    res.graph = std::move(comp.info);
    return res;
  });
}

inline SolveResult solve_gaussian_entry(const DeviceComparisons& dc, const SolveOptions& opt) {
  Progress progress;
  return guarded(dc, progress, [&] {
    Staged st;
    stage(dc, st, progress);
    const DeviceGraph graph = build_graph(st.view, true, opt.beta, progress);
    DeviceComponents comp = components(graph, progress);
    if (opt.alpha == 0.0) prepare_centring(comp);
    SolveResult res = gaussian_cg(graph, comp, opt, progress);
    res.graph = std::move(comp.info);
    return res;
  });
}

inline void bt_curvature_entry(const DeviceComparisons& dc, const double* scores, double alpha,
                               std::vector<double>& curv, std::vector<double>& prior) {
  Progress progress;
  guarded(dc, progress, [&] {
    Staged st;
    stage(dc, st, progress);
    progress.step = "curvature";
    const dvec<double> s(scores, scores + st.view.n);
    dvec<double> c, pr;
    bt_curvature(st.view, s, alpha, c, pr);
    thr::host_vector<double> hc = c, hp = pr;
    curv.assign(hc.begin(), hc.end());
    prior.assign(hp.begin(), hp.end());
    return 0;
  });
}

inline std::vector<double> local_variance_entry(const DeviceComparisons& dc, const double* prior) {
  Progress progress;
  return guarded(dc, progress, [&] {
    Staged st;
    stage(dc, st, progress);
    const dvec<double> pr(prior, prior + st.view.n);
    return local_variance(st.view, pr, progress);
  });
}

inline std::string version_entry() {
  return std::string("Thrust ") + std::to_string(THRUST_MAJOR_VERSION) + "." + std::to_string(THRUST_MINOR_VERSION) +
         "." + std::to_string(THRUST_SUBMINOR_VERSION) + ", " + PYCOMP_THRUST_SYSTEM + " device system";
}

inline const devices::Backend* backend_table() {
  static const devices::Backend table{PYCOMP_THRUST_NAME,    components_entry,     solve_bt_entry,
                                      solve_gaussian_entry,  bt_curvature_entry,   local_variance_entry,
                                      version_entry};
  return &table;
}

}  // namespace PYCOMP_THRUST_NS
}  // namespace pycomp
