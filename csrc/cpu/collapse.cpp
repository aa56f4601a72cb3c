// Collapsing repeated pairs (collapse.h): one pass over the comparisons into per-pair
// sums, and the bootstrap's resampling units.
//
// Categorical outcomes (no weights, p in {0, 1/2, 1}: win, tie, loss) are counted per
// (pair, outcome) in a dense array, in parallel (integer counts: the result does not
// depend on the thread count). Any other input is sorted by (pair, p, w): identical
// comparisons then form one unit, so that resampling units is exactly resampling rows
// whatever p and w are (with continuous p nearly every row is its own unit, and only
// the pair sums shrink).
#include "cpu/collapse.h"

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

#ifdef PYCOMP_WITH_OPENMP
#include <omp.h>
#endif

namespace pycomp {
namespace cpu {
namespace {

// Dense per-pair arrays are used while n (n - 1) / 2 stays below this many slots.
constexpr std::int64_t kDenseSlots = std::int64_t{1} << 24;

// Slot of the pair a < b among the n (n - 1) / 2 pairs, in increasing (a, b) order.
inline std::int64_t tri_slot(std::int64_t a, std::int64_t b, std::int64_t n) {
  return a * n - a * (a + 1) / 2 + (b - a - 1);
}

// Comparison k oriented as a < b, with p' = P(a beats b).
template <class Index>
inline void oriented(const Index* i, const Index* j, const double* p, count_t k, std::int64_t& a, std::int64_t& b,
                     double& po) {
  const std::int64_t x = i[k], y = j[k];
  const double pk = p ? p[k] : 1.0;
  if (x < y) {
    a = x, b = y, po = pk;
  } else {
    a = y, b = x, po = 1.0 - pk;
  }
}

void add_pair(Collapsed& c, std::int64_t a, std::int64_t b, double wins, double total, double q0, double q1,
              double q2) {
  c.a.push_back(static_cast<index_t>(a));
  c.b.push_back(static_cast<index_t>(b));
  c.wins.push_back(wins);
  c.total.push_back(total);
  c.q0.push_back(q0);
  c.q1.push_back(q1);
  c.q2.push_back(q2);
}

void add_unit(Collapsed& c, count_t copies) {
  c.unit_count.push_back(copies);
  c.unit_start.push_back(static_cast<count_t>(c.unit_pair.size()));
  c.draws += copies;
}

void add_entry(Collapsed& c, count_t pair, double wins, double total) {
  c.unit_pair.push_back(pair);
  c.unit_wins.push_back(wins);
  c.unit_total.push_back(total);
}

// Returns false (and leaves c alone) when some p is not 0, 1/2 or 1.
template <class Index>
bool collapse_categorical(const Index* i, const Index* j, const double* p, count_t m, index_t n, bool with_units,
                          int threads, Collapsed& c) {
  bool not_categorical = false;
  const std::int64_t slots = std::int64_t{n} * (n - 1) / 2;
  // Per-thread counts of 3 outcomes per slot, while they fit in 256 MiB.
  const std::int64_t per_thread = 3 * slots;
  int t_used = std::max(1, threads);
  while (t_used > 1 && per_thread * 8 * t_used > (std::int64_t{256} << 20)) --t_used;
  if (m < 200000) t_used = 1;
  std::vector<std::vector<std::int64_t>> counts(t_used);
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel num_threads(t_used)
#endif
  {
#ifdef PYCOMP_WITH_OPENMP
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
#else
    const int t = 0, nt = 1;
#endif
    std::vector<std::int64_t>& cnt = counts[t];
    cnt.assign(static_cast<size_t>(per_thread), 0);
    const count_t lo = m * t / nt, hi = m * (t + 1) / nt;
    // Branch-free: the orientation and the outcome are random, and mispredicted branches
    // would cost more than the count itself.
    bool other = false;
    std::int64_t* slots_of = cnt.data();
    for (count_t k = lo; k < hi; ++k) {
      const std::int64_t x = i[k], y = j[k];
      const bool swap = x > y;
      const std::int64_t a = swap ? y : x, b = swap ? x : y;
      const double twice = 2.0 * (p ? p[k] : 1.0);
      const std::int64_t outcome = static_cast<std::int64_t>(twice);
      other |= static_cast<double>(outcome) != twice;
      slots_of[3 * tri_slot(a, b, n) + (swap ? 2 - outcome : outcome) % 3] += 1;
    }
    if (other) {
#ifdef PYCOMP_WITH_OPENMP
#pragma omp atomic write
#endif
      not_categorical = true;
    }
  }
  if (not_categorical) return false;
  std::vector<std::int64_t>& total = counts[0];
  for (int t = 1; t < t_used; ++t) {
    const std::vector<std::int64_t>& cnt = counts[t];
    for (std::int64_t s = 0; s < per_thread; ++s) total[s] += cnt[s];
  }
  c.n = n;
  c.m = m;
  c.categorical = true;
  std::int64_t slot = 0;
  for (std::int64_t a = 0; a < n; ++a) {
    for (std::int64_t b = a + 1; b < n; ++b, ++slot) {
      const std::int64_t* o = &total[3 * slot];  // losses, ties, wins of a against b
      if (o[0] + o[1] + o[2] == 0) continue;
      const double wins = 0.5 * o[1] + o[2];
      add_pair(c, a, b, wins, static_cast<double>(o[0] + o[1] + o[2]), static_cast<double>(o[0] + o[1] + o[2]),
               wins, 0.25 * o[1] + o[2]);
      if (!with_units) continue;
      const count_t pair = static_cast<count_t>(c.a.size()) - 1;
      for (int out = 0; out < 3; ++out) {
        if (o[out] == 0) continue;
        add_unit(c, o[out]);
        add_entry(c, pair, 0.5 * out, 1.0);
      }
    }
  }
  c.unit_start.push_back(static_cast<count_t>(c.unit_pair.size()));
  return true;
}

// Weighted or soft comparisons, dense pair slots, pair sums only: one serial pass in
// comparison order (the floating-point sums then do not depend on the thread count).
template <class Index>
Collapsed collapse_dense_sums(const Index* i, const Index* j, const double* p, const double* w, count_t m, index_t n) {
  const std::int64_t slots = std::int64_t{n} * (n - 1) / 2;
  std::vector<double> acc(static_cast<size_t>(5 * slots), 0.0);
  std::vector<unsigned char> seen(static_cast<size_t>(slots), 0);
  for (count_t k = 0; k < m; ++k) {
    std::int64_t a, b;
    double po;
    oriented(i, j, p, k, a, b, po);
    const double wk = w ? w[k] : 1.0;
    const std::int64_t s = tri_slot(a, b, n);
    double* x = &acc[5 * s];
    x[0] += wk * po;
    x[1] += wk;
    x[2] += wk * wk;
    x[3] += wk * wk * po;
    x[4] += wk * wk * po * po;
    seen[s] = 1;
  }
  Collapsed c;
  c.n = n;
  c.m = m;
  std::int64_t s = 0;
  for (std::int64_t a = 0; a < n; ++a) {
    for (std::int64_t b = a + 1; b < n; ++b, ++s) {
      if (!seen[s]) continue;
      const double* x = &acc[5 * s];
      add_pair(c, a, b, x[0], x[1], x[2], x[3], x[4]);
    }
  }
  c.unit_start.push_back(0);
  return c;
}

struct Record {
  std::int64_t cluster;  // 0 without clusters
  std::uint64_t pair;    // a * n + b
  double p;              // oriented
  double w;
};

// The general path: sort by (cluster, pair, p, w). Without clusters, runs of identical
// records are the units; with clusters, each cluster is one unit whose entries are its
// per-pair sums.
template <class Index>
Collapsed collapse_sorted(const Index* i, const Index* j, const double* p, const double* w, count_t m, index_t n,
                          const std::int64_t* cluster, bool with_units) {
  std::vector<Record> rec(static_cast<size_t>(m));
  for (count_t k = 0; k < m; ++k) {
    std::int64_t a, b;
    double po;
    oriented(i, j, p, k, a, b, po);
    rec[k] = Record{cluster ? cluster[k] : 0, static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(n) + b, po,
                    w ? w[k] : 1.0};
  }
  std::sort(rec.begin(), rec.end(), [](const Record& x, const Record& y) {
    return std::tie(x.cluster, x.pair, x.p, x.w) < std::tie(y.cluster, y.pair, y.p, y.w);
  });
  // The unique pairs, in increasing order, and each record's pair index.
  std::vector<std::uint64_t> pairs(static_cast<size_t>(m));
  for (count_t k = 0; k < m; ++k) pairs[k] = rec[k].pair;
  if (cluster) std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  const size_t P = pairs.size();
  std::vector<double> acc(5 * P, 0.0);
  auto pair_index = [&](std::uint64_t key) {
    return static_cast<count_t>(std::lower_bound(pairs.begin(), pairs.end(), key) - pairs.begin());
  };
  Collapsed c;
  c.n = n;
  c.m = m;
  count_t k = 0;
  while (k < m) {
    // A run of records with the same cluster and pair (and, without clusters, the same p and w).
    count_t end = k + 1;
    while (end < m && rec[end].cluster == rec[k].cluster && rec[end].pair == rec[k].pair &&
           (cluster || (rec[end].p == rec[k].p && rec[end].w == rec[k].w)))
      ++end;
    const count_t pair = pair_index(rec[k].pair);
    double wins = 0.0, total = 0.0;
    double* x = &acc[5 * pair];
    for (count_t r = k; r < end; ++r) {
      const double wk = rec[r].w, po = rec[r].p;
      wins += wk * po;
      total += wk;
      x[2] += wk * wk;
      x[3] += wk * wk * po;
      x[4] += wk * wk * po * po;
    }
    x[0] += wins;
    x[1] += total;
    if (with_units) {
      if (!cluster) {
        add_unit(c, end - k);
        add_entry(c, pair, rec[k].w * rec[k].p, rec[k].w);
      } else {
        if (k == 0 || rec[k].cluster != rec[k - 1].cluster) add_unit(c, 1);
        add_entry(c, pair, wins, total);
      }
    }
    k = end;
  }
  for (size_t q = 0; q < P; ++q) {
    const double* x = &acc[5 * q];
    add_pair(c, static_cast<std::int64_t>(pairs[q] / n), static_cast<std::int64_t>(pairs[q] % n), x[0], x[1], x[2],
             x[3], x[4]);
  }
  c.unit_start.push_back(static_cast<count_t>(c.unit_pair.size()));
  return c;
}

}  // namespace

template <class Index>
Collapsed collapse_comparisons(const Index* i, const Index* j, const double* p, const double* w, count_t m,
                               index_t n, const std::int64_t* cluster, std::int64_t n_clusters, bool with_units,
                               int threads) {
  const bool dense = std::int64_t{n} * (n - 1) / 2 <= kDenseSlots;
  Collapsed c;
  if (dense && !cluster && !w && collapse_categorical(i, j, p, m, n, with_units, threads, c)) {
    // win / tie / loss counts
  } else if (dense && !cluster && !with_units) {
    c = collapse_dense_sums(i, j, p, w, m, n);
  } else {
    c = collapse_sorted(i, j, p, w, m, n, cluster, with_units);
  }
  if (cluster && with_units) {
    // Clusters without comparisons (ids never used) can still be drawn: empty units.
    const std::int64_t present = static_cast<std::int64_t>(c.unit_count.size());
    for (std::int64_t g = present; g < n_clusters; ++g) {
      c.unit_count.push_back(1);
      c.unit_start.push_back(c.unit_start.back());
      c.draws += 1;
    }
  }
  return c;
}

template Collapsed collapse_comparisons<std::int32_t>(const std::int32_t*, const std::int32_t*, const double*,
                                                      const double*, count_t, index_t, const std::int64_t*,
                                                      std::int64_t, bool, int);
template Collapsed collapse_comparisons<std::int64_t>(const std::int64_t*, const std::int64_t*, const double*,
                                                      const double*, count_t, index_t, const std::int64_t*,
                                                      std::int64_t, bool, int);

}  // namespace cpu
}  // namespace pycomp
