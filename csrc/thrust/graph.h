// The comparison graph on the device: one entry per side of each comparison, sorted by
// item (a CSR whose row index is kept per entry), and the per-item sums of the solvers as
// segmented reductions (reduce_by_key) over that flat entry array. The work of a
// reduce_by_key is split by entries, not by rows, so an item with a million comparisons
// is summed by as many threads as a million items with one each (see README).
#pragma once

#include "core/solver_types.h"
#include "thrust/primitives.h"

namespace pycomp {
namespace PYCOMP_THRUST_NS {

// Device views of validated comparisons (i, j int32; p, w may be nullptr).
struct CompView {
  index_t n = 0;
  count_t m = 0;
  const index_t* i = nullptr;
  const index_t* j = nullptr;
  const double* p = nullptr;
  const double* w = nullptr;
};

struct DeviceGraph {
  index_t n = 0;
  count_t nnz = 0;            // entries: 2 x (comparisons of positive weight)
  dvec<index_t> row;          // [nnz] the entry's item, ascending
  dvec<index_t> nbr;          // [nnz] the other item of the comparison
  dvec<double> wins;          // [nnz] the row item's win mass (Gaussian: its target, see build_graph)
  dvec<double> total;         // [nnz] the comparison's weight; empty when every weight is 1
  dvec<index_t> occupied;     // the items with at least one entry, ascending
  bool all_occupied = false;  // every item has an entry
};

// Read-only entry data for the per-entry functors.
struct EntryView {
  const index_t* row;
  const index_t* nbr;
  const double* wins;
  const double* total;  // nullptr: 1
  PYCOMP_HD double total_of(count_t e) const { return total ? total[e] : 1.0; }
};
inline EntryView entries(const DeviceGraph& g) {
  return EntryView{raw(g.row), raw(g.nbr), raw(g.wins), g.total.empty() ? nullptr : raw(g.total)};
}

struct PositiveWeight {
  const double* w;
  PYCOMP_HD bool operator()(count_t k) const { return w[k] > 0.0; }
};

// Entry e of the unsorted list: side e & 1 of comparison kept[e >> 1] (side 0: row i).
struct EntryRow {
  const count_t* kept;  // nullptr: every comparison
  const index_t *i, *j;
  PYCOMP_HD index_t operator()(count_t e) const {
    const count_t k = kept ? kept[e >> 1] : (e >> 1);
    return (e & 1) ? j[k] : i[k];
  }
};

// Fills the sorted entries' data from `from`, the unsorted entry each came from.
// Gaussian (gaussian = true): wins holds w (p - beta) on side i and w (1 - p) - w (1 - beta)
// = -w (p - beta) on side j, so that sum over a row is the right-hand side of the normal
// equations and gaussian_loss(d, wins, total, 0) the comparison's loss from either side.
struct EntryData {
  const count_t* from;
  const count_t* kept;
  const index_t *i, *j;
  const double *p, *w;
  bool gaussian;
  double beta;
  index_t* nbr;
  double* wins;
  double* total;  // nullptr when every weight is 1
  PYCOMP_HD void operator()(count_t e) const {
    const count_t u = from[e];
    const count_t k = kept ? kept[u >> 1] : (u >> 1);
    const bool side_j = (u & 1) != 0;
    const double wk = w ? w[k] : 1.0;
    const double pk = p ? p[k] : 1.0;
    const double own = side_j ? 1.0 - pk : pk;
    nbr[e] = side_j ? i[k] : j[k];
    wins[e] = wk * own - (gaussian ? wk * (side_j ? 1.0 - beta : beta) : 0.0);
    if (total) total[e] = wk;
  }
};

// Builds the graph of c. Comparisons of zero weight are dropped; the entries of a row keep
// comparison order (a stable sort by item).
inline DeviceGraph build_graph(const CompView& c, bool gaussian, double beta, Progress& progress) {
  progress.step = "graph build";
  DeviceGraph g;
  g.n = c.n;
  dvec<count_t> kept;
  count_t m_kept = c.m;
  if (c.w) {
    kept.resize(c.m);
    auto end = thr::copy_if(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(c.m),
                            kept.begin(), PositiveWeight{c.w});
    m_kept = static_cast<count_t>(end - kept.begin());
    kept.resize(m_kept);
  }
  const count_t* kept_ptr = c.w ? raw(kept) : nullptr;
  g.nnz = 2 * m_kept;
  g.row.resize(g.nnz);
  {
    dvec<count_t> from(g.nnz);
    thr::sequence(thr::device, from.begin(), from.end());
    thr::transform(thr::device, thr::counting_iterator<count_t>(0), thr::counting_iterator<count_t>(g.nnz),
                   g.row.begin(), EntryRow{kept_ptr, c.i, c.j});
    thr::stable_sort_by_key(thr::device, g.row.begin(), g.row.end(), from.begin());
    g.nbr.resize(g.nnz);
    g.wins.resize(g.nnz);
    if (c.w) g.total.resize(g.nnz);
    for_each_index(g.nnz, EntryData{raw(from), kept_ptr, c.i, c.j, c.p, c.w, gaussian, beta, raw(g.nbr), raw(g.wins),
                                    c.w ? raw(g.total) : nullptr});
  }
  g.occupied.resize(g.nnz < static_cast<count_t>(g.n) ? g.nnz : static_cast<count_t>(g.n));
  auto end = thr::unique_copy(thr::device, g.row.begin(), g.row.end(), g.occupied.begin());
  g.occupied.resize(static_cast<size_t>(end - g.occupied.begin()));
  g.all_occupied = static_cast<index_t>(g.occupied.size()) == g.n;
  return g;
}

// out[a] = op-reduction of f(e) over the entries e of row a, for every item a; items
// without entries get `empty`. f maps an entry index to T.
template <class T, class F, class Op>
void row_reduce(const DeviceGraph& g, F f, Op op, T empty, dvec<T>& out) {
  out.resize(g.n);
  if (!g.all_occupied) thr::fill(thr::device, out.begin(), out.end(), empty);
  if (g.nnz == 0) return;
  auto values = thr::make_transform_iterator(thr::counting_iterator<count_t>(0), f);
  thr::reduce_by_key(thr::device, g.row.begin(), g.row.end(), values, thr::make_discard_iterator(),
                     thr::make_permutation_iterator(out.begin(), g.occupied.begin()), thr::equal_to<index_t>(), op);
}

// ---------------------------------------------------------------------------------------
// Connected components, by minimum-label propagation with pointer jumping: each round
// gives every item the smallest label among itself and its neighbours, then replaces
// each label l by the label of item l until nothing changes. Labels only decrease and
// stay inside the component, so they end at the component's smallest item.

struct NeighbourLabel {
  const index_t* nbr;
  const index_t* label;
  PYCOMP_HD index_t operator()(count_t e) const { return label[nbr[e]]; }
};
struct MinIndex {
  PYCOMP_HD index_t operator()(index_t x, index_t y) const { return x < y ? x : y; }
};
struct Smaller {
  const index_t* nbr_min;
  const index_t* label;
  PYCOMP_HD SumMax operator()(count_t a) const { return SumMax{nbr_min[a] < label[a] ? 1.0 : 0.0, 0.0}; }
};
struct TakeSmaller {
  const index_t* nbr_min;
  index_t* label;
  PYCOMP_HD void operator()(count_t a) const {
    if (nbr_min[a] < label[a]) label[a] = nbr_min[a];
  }
};
struct Jump {
  const index_t* from;
  index_t* to;
  PYCOMP_HD SumMax operator()(count_t a) const {
    const index_t l = from[from[a]];
    to[a] = l;
    return SumMax{l != from[a] ? 1.0 : 0.0, 0.0};
  }
};
struct IsRoot {
  const index_t* label;
  PYCOMP_HD index_t operator()(count_t a) const { return label[a] == static_cast<index_t>(a) ? 1 : 0; }
};
struct Renumber {
  const index_t* root_label;
  const index_t* number;  // [n] exclusive scan of IsRoot
  index_t* out;
  PYCOMP_HD void operator()(count_t a) const { out[a] = number[root_label[a]]; }
};

// The components on the device: labels (numbered by first item) stay on the device for
// the centring; GraphInfo gets host copies.
struct DeviceComponents {
  dvec<index_t> labels;     // [n]
  dvec<index_t> order;      // [n] items sorted by component (stable); empty when one component
  dvec<index_t> sorted;     // [n] labels[order]
  dvec<double> inv_size;    // [n_components] 1 / size
  GraphInfo info;
};

inline DeviceComponents components(const DeviceGraph& g, Progress& progress) {
  progress.step = "connected components";
  const count_t n = g.n;
  DeviceComponents out;
  dvec<index_t> label(n), other(n), nbr_min;
  thr::sequence(thr::device, label.begin(), label.end());
  while (true) {
    row_reduce(g, NeighbourLabel{raw(g.nbr), raw(label)}, MinIndex(), static_cast<index_t>(g.n), nbr_min);
    const double changed = over_items(n, Smaller{raw(nbr_min), raw(label)}).sum;
    for_each_index(n, TakeSmaller{raw(nbr_min), raw(label)});
    while (over_items(n, Jump{raw(label), raw(other)}).sum > 0) label.swap(other);
    if (changed == 0) break;
  }
  dvec<index_t> number(n);
  auto roots = thr::make_transform_iterator(thr::counting_iterator<count_t>(0), IsRoot{raw(label)});
  thr::exclusive_scan(thr::device, roots, roots + n, number.begin());
  out.labels.resize(n);
  for_each_index(n, Renumber{raw(label), raw(number), raw(out.labels)});
  thr::host_vector<index_t> host = out.labels;
  out.info.labels.assign(host.begin(), host.end());
  for (index_t a = 0; a < g.n; ++a) {
    const index_t l = out.info.labels[a];
    if (l == out.info.n_components) {
      out.info.n_components++;
      out.info.sizes.push_back(0);
    }
    out.info.sizes[l]++;
  }
  return out;
}

struct CentreItems {
  const index_t* label;
  const double* mean;  // [n_components]
  double* s;
  PYCOMP_HD void operator()(count_t a) const { s[a] -= mean[label[a]]; }
};
struct ScaleBy {
  const double* factor;
  double* x;
  PYCOMP_HD void operator()(count_t c) const { x[c] *= factor[c]; }
};
struct SubtractConstant {
  double c;
  double* s;
  PYCOMP_HD void operator()(count_t a) const { s[a] -= c; }
};

// Prepares the per-component sums of centre_components (once per solve).
inline void prepare_centring(DeviceComponents& comp) {
  if (comp.info.n_components <= 1) return;
  const count_t n = static_cast<count_t>(comp.labels.size());
  comp.order.resize(n);
  thr::sequence(thr::device, comp.order.begin(), comp.order.end());
  comp.sorted = comp.labels;
  thr::stable_sort_by_key(thr::device, comp.sorted.begin(), comp.sorted.end(), comp.order.begin());
  thr::host_vector<double> inv(comp.info.n_components);
  for (index_t c = 0; c < comp.info.n_components; ++c) inv[c] = 1.0 / comp.info.sizes[c];
  comp.inv_size = inv;
}

// Shifts every component of s to mean 0.
inline void centre_components(const DeviceComponents& comp, dvec<double>& s) {
  const count_t n = static_cast<count_t>(s.size());
  if (comp.info.n_components <= 1) {
    const double mean = thr::reduce(thr::device, s.begin(), s.end(), 0.0) / static_cast<double>(n);
    for_each_index(n, SubtractConstant{mean, raw(s)});
    return;
  }
  dvec<double> mean(comp.info.n_components);
  thr::reduce_by_key(thr::device, comp.sorted.begin(), comp.sorted.end(),
                     thr::make_permutation_iterator(s.begin(), comp.order.begin()), thr::make_discard_iterator(),
                     mean.begin());
  for_each_index(comp.info.n_components, ScaleBy{raw(comp.inv_size), raw(mean)});
  for_each_index(n, CentreItems{raw(comp.labels), raw(mean), raw(s)});
}

}  // namespace PYCOMP_THRUST_NS
}  // namespace pycomp
