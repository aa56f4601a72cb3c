// Building the by-item (CSR) comparison graph from the comparison arrays.
//
// Small graphs (rows that fit in the cache) take a direct two-pass counting sort.
// Each comparison k becomes two entries, (i_k -> j_k) in row i_k and (j_k -> i_k) in
// row j_k. A direct counting sort would write 2m entries to random places of a
// 2m-long array; instead the entries are first partitioned by block of 4096 rows
// (a few hundred sequential write streams), then each block, small enough for the
// cache, is sorted by row. Both steps are stable, so a row lists its entries in
// comparison order whatever the thread count.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "cpu/item_graph.h"

namespace pycomp {
namespace cpu {
namespace {

constexpr int kBlockBits = 12;

// An entry on its way to its row; only the fields its kind needs.
template <EntryKind K>
struct Staged {
  index_t row;
  index_t nbr;
  double wins;
  double total;
};
template <>
struct Staged<EntryKind::Soft> {
  index_t row;
  index_t nbr;
  double wins;
};
template <>
struct Staged<EntryKind::Hard> {
  index_t row;
  index_t nbr;
};

template <EntryKind K>
Staged<K> staged_entry(index_t row, index_t nbr, double wins, double total) {
  if constexpr (K == EntryKind::Hard) {
    (void)wins;
    (void)total;
    return Staged<K>{row, nbr};
  } else if constexpr (K == EntryKind::Soft) {
    (void)total;
    return Staged<K>{row, nbr, wins};
  } else {
    return Staged<K>{row, nbr, wins, total};
  }
}

// Graphs with at most this many items are built by a direct counting sort: their
// rows fit in the cache, so scattered writes cost no more than the staged ones. Above
// it the staged build pays (1M/10M hard, solve_bt with max_iter=0: min of 5 runs 234 and
// 256 ms, 462 and 453 ms by the direct sort; wall clock, two alternating runs).
constexpr index_t kDirectMaxItems = index_t(1) << 16;

template <bool HasP, bool HasW, EntryKind K>
void allocate_entries(ItemGraph& g, count_t nnz) {
  g.nnz = nnz;
  g.start.resize(static_cast<size_t>(g.n) + 1);  // every row's start is written by the caller
  g.nbr.resize(static_cast<size_t>(nnz + kPrefetchPad));
  std::fill(g.nbr.begin() + nnz, g.nbr.end(), 0);  // the prefetch padding
  if (K != EntryKind::Hard) g.wins.resize(static_cast<size_t>(nnz));
  if (K == EntryKind::Weighted) g.total.resize(static_cast<size_t>(nnz));
}

// Two passes: per-thread row counts, then every thread writes its comparisons at its
// own offsets within each row (so rows keep comparison order).
template <bool HasP, bool HasW, EntryKind K>
void place_entries_direct(const Comparisons& c, ItemGraph& g, int threads) {
  const index_t n = c.n;
  const count_t m = c.m;
  const EdgeWeights<HasP, HasW> ew{c.p, c.w};
  const int T = std::max(1, threads);
  auto keep = [&](count_t k) { return !HasW || c.w[k] > 0; };
  std::vector<count_t> cursor(static_cast<size_t>(T) * n, 0);
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(T) schedule(static, 1)
#endif
  for (int t = 0; t < T; ++t) {
    count_t* cnt = cursor.data() + static_cast<size_t>(t) * n;
    for (count_t k = m * t / T; k < m * (t + 1) / T; ++k) {
      if (!keep(k)) continue;
      ++cnt[c.i[k]];
      ++cnt[c.j[k]];
    }
  }
  g.start.resize(static_cast<size_t>(n) + 1);
  count_t off = 0;
  for (index_t a = 0; a < n; ++a) {
    g.start[a] = off;
    for (int t = 0; t < T; ++t) {
      const count_t cnt = cursor[static_cast<size_t>(t) * n + a];
      cursor[static_cast<size_t>(t) * n + a] = off;
      off += cnt;
    }
  }
  g.start[n] = off;
  allocate_entries<HasP, HasW, K>(g, off);
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(T) schedule(static, 1)
#endif
  for (int t = 0; t < T; ++t) {
    count_t* cur = cursor.data() + static_cast<size_t>(t) * n;
    for (count_t k = m * t / T; k < m * (t + 1) / T; ++k) {
      if (!keep(k)) continue;
      const index_t a = c.i[k], b = c.j[k];
      const count_t ea = cur[a]++, eb = cur[b]++;
      g.nbr[ea] = b;
      g.nbr[eb] = K == EntryKind::Hard ? ~a : a;  // in Hard graphs, b's entry stores ~a: b lost to a
      if constexpr (K != EntryKind::Hard) {
        const double total = ew.total(k), wins = ew.wins(k);
        g.wins[ea] = wins;
        g.wins[eb] = total - wins;
        if constexpr (K == EntryKind::Weighted) g.total[ea] = g.total[eb] = total;
      }
    }
  }
}

template <bool HasP, bool HasW, EntryKind K>
void place_entries(const Comparisons& c, ItemGraph& g, int threads) {
  if (c.n <= kDirectMaxItems) {
    place_entries_direct<HasP, HasW, K>(c, g, threads);
    return;
  }
  const index_t n = c.n;
  const count_t m = c.m;
  const EdgeWeights<HasP, HasW> ew{c.p, c.w};
  const index_t n_blocks = (n >> kBlockBits) + 1;
  const int T = std::max(1, threads);
  auto keep = [&](count_t k) { return !HasW || c.w[k] > 0; };

  // Pass 1: per-thread entry counts per block of rows.
  std::vector<count_t> counts(static_cast<size_t>(T) * n_blocks, 0);
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(T) schedule(static, 1)
#endif
  for (int t = 0; t < T; ++t) {
    count_t* cnt = counts.data() + static_cast<size_t>(t) * n_blocks;
    for (count_t k = m * t / T; k < m * (t + 1) / T; ++k) {
      if (!keep(k)) continue;
      ++cnt[c.i[k] >> kBlockBits];
      ++cnt[c.j[k] >> kBlockBits];
    }
  }
  // Block b's entries start at block_start[b]; thread t writes its part after threads < t.
  std::vector<count_t> block_start(n_blocks + 1, 0), cursor(counts.size());
  count_t off = 0;
  for (index_t b = 0; b < n_blocks; ++b) {
    block_start[b] = off;
    for (int t = 0; t < T; ++t) {
      cursor[static_cast<size_t>(t) * n_blocks + b] = off;
      off += counts[static_cast<size_t>(t) * n_blocks + b];
    }
  }
  block_start[n_blocks] = off;
  const count_t nnz = off;

  // Pass 2: partition into blocks (staged), keeping comparison order. Hard entries
  // take 8 bytes, twice a float curvature: that block is cached and becomes the
  // solver's curvature array. The larger staged entries of the other kinds would stay
  // resident beside it through the solve (+320 MiB at 1M/10M soft): freed.
  std::conditional_t<K == EntryKind::Hard, big_vector<Staged<K>>, scratch_vector<Staged<K>>> staged(
      static_cast<size_t>(nnz));
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(T) schedule(static, 1)
#endif
  for (int t = 0; t < T; ++t) {
    count_t* cur = cursor.data() + static_cast<size_t>(t) * n_blocks;
    for (count_t k = m * t / T; k < m * (t + 1) / T; ++k) {
      if (!keep(k)) continue;
      const index_t a = c.i[k], b = c.j[k];
      const double total = ew.total(k), wins = ew.wins(k);
      // In Hard graphs, b's entry stores ~a: b lost to a.
      staged[cur[a >> kBlockBits]++] = staged_entry<K>(a, b, wins, total);
      staged[cur[b >> kBlockBits]++] = staged_entry<K>(b, K == EntryKind::Hard ? ~a : a, total - wins, total);
    }
  }

  // Pass 3: sort each block by row (stable) into the final arrays.
  allocate_entries<HasP, HasW, K>(g, nnz);
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel num_threads(T)
#endif
  {
    std::vector<count_t> row_cursor(static_cast<size_t>(1) << kBlockBits);
#ifdef PYCOMP_WITH_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (index_t blk = 0; blk < n_blocks; ++blk) {
      const index_t first = blk << kBlockBits;
      const index_t rows = std::min<index_t>(n - first, static_cast<index_t>(1) << kBlockBits);
      if (rows <= 0) continue;
      std::fill(row_cursor.begin(), row_cursor.begin() + rows, 0);
      const count_t lo = block_start[blk], hi = block_start[blk + 1];
      for (count_t e = lo; e < hi; ++e) ++row_cursor[staged[e].row - first];
      count_t pos = lo;
      for (index_t r = 0; r < rows; ++r) {
        const count_t cnt = row_cursor[r];
        g.start[first + r] = pos;
        row_cursor[r] = pos;
        pos += cnt;
      }
      for (count_t e = lo; e < hi; ++e) {
        const Staged<K>& s = staged[e];
        const count_t at = row_cursor[s.row - first]++;
        g.nbr[at] = s.nbr;
        if constexpr (K != EntryKind::Hard) g.wins[at] = s.wins;
        if constexpr (K == EntryKind::Weighted) g.total[at] = s.total;
      }
    }
  }
  g.start[n] = nnz;
}

}  // namespace

ItemGraph build_item_graph(const Comparisons& c, int threads) {
  ItemGraph g;
  g.n = c.n;
  if (c.w) {
    g.kind = EntryKind::Weighted;
    if (c.p) place_entries<true, true, EntryKind::Weighted>(c, g, threads);
    else place_entries<false, true, EntryKind::Weighted>(c, g, threads);
  } else if (c.p) {
    g.kind = EntryKind::Soft;
    place_entries<true, false, EntryKind::Soft>(c, g, threads);
  } else {
    g.kind = EntryKind::Hard;
    place_entries<false, false, EntryKind::Hard>(c, g, threads);
  }
  // Work chunks of about `target` entries (at least one row each), independent of
  // the thread count so that chunked sums are reproducible.
  // About 4096 entries keep a pass's per-chunk scratch arrays in the L1/L2 cache.
  const count_t target = std::max<count_t>(4096, g.nnz / 16384);
  g.chunks.push_back(0);
  count_t acc = 0;
  for (index_t a = 0; a < g.n; ++a) {
    acc += g.start[a + 1] - g.start[a] + 1;
    if (acc >= target) {
      g.chunks.push_back(a + 1);
      acc = 0;
    }
  }
  if (g.chunks.back() != g.n) g.chunks.push_back(g.n);
  return g;
}

}  // namespace cpu
}  // namespace pycomp
