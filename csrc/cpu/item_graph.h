// The comparison graph by item (CSR), the layout of every CPU pass: row a lists
// one entry per comparison of item a, with the neighbour and a's side of the data.
// Passes then gather scores of neighbours and sum in registers, with no scatter,
// no atomics, and a summation order that does not depend on the thread count.
#pragma once

#include <vector>

#include "core/common.h"
#include "cpu/memory.h"
#include "cpu/parallel.h"

namespace pycomp {
namespace cpu {

// What an entry carries besides its neighbour.
enum class EntryKind {
  Hard,      // no p, no w: the neighbour index is stored as ~b when a lost
  Soft,      // p, no w: wins = p_ab, total = 1
  Weighted,  // w: wins = w p_ab, total = w
};

// How far ahead the gathers prefetch (entries): a random access misses the caches
// for about 100 ns on the 2-core VM, and 64 entries ahead measured fastest (of 16-128;
// wall clock, bench_solve at 1ec80e4 against 7357a9f, README: the Newton Hessian-vector
// and gradient passes at 1M/10M took half the time).
constexpr count_t kPrefetch = 64;
constexpr count_t kPrefetchPad = kPrefetch + 4;

struct ItemGraph {
  index_t n = 0;
  count_t nnz = 0;
  EntryKind kind = EntryKind::Hard;
  big_vector<count_t> start;   // [n + 1] row a is [start[a], start[a + 1])
  big_vector<index_t> nbr;     // [nnz + kPrefetchPad] neighbour (Hard: ~b when a lost); padded with 0
  big_vector<double> wins;     // [nnz] Soft, Weighted: a's win mass against the neighbour
  big_vector<double> total;    // [nnz] Weighted: the comparison's weight
  std::vector<index_t> chunks;  // row boundaries of work chunks of similar entry counts
};

// Builds the graph of c (comparisons of zero weight dropped): by a direct counting sort
// when the rows fit in the cache, else by partitioning the entries into blocks of rows
// and sorting each block by row (item_graph.cpp). Rows list their entries in
// comparison order, whatever the thread count.
ItemGraph build_item_graph(const Comparisons& c, int threads);

PYCOMP_ISA_BEGIN

template <EntryKind K>
struct Entries {
  static constexpr EntryKind kind = K;
  const index_t* nbr;
  const double* wins_;
  const double* total_;
  PYCOMP_HD index_t neighbour(count_t e) const {
    if (K == EntryKind::Hard) {
      const index_t x = nbr[e];
      return x >= 0 ? x : ~x;
    }
    return nbr[e];
  }
  PYCOMP_HD double wins(count_t e) const {
    if (K == EntryKind::Hard) return nbr[e] >= 0 ? 1.0 : 0.0;
    return wins_[e];
  }
  PYCOMP_HD double total(count_t e) const { return K == EntryKind::Weighted ? total_[e] : 1.0; }
};

// Calls f(Entries<K>{...}) with the kind of g.
template <class F>
auto with_entries(const ItemGraph& g, F&& f) {
  switch (g.kind) {
    case EntryKind::Hard:
      return f(Entries<EntryKind::Hard>{g.nbr.data(), nullptr, nullptr});
    case EntryKind::Soft:
      return f(Entries<EntryKind::Soft>{g.nbr.data(), g.wins.data(), nullptr});
    default:
      return f(Entries<EntryKind::Weighted>{g.nbr.data(), g.wins.data(), g.total.data()});
  }
}

// Runs chunk(a0, a1) -> ItemTotals for every work chunk [a0, a1) of rows in parallel;
// partial results are combined in chunk order, and the chunks do not depend on the
// thread count, so results are bitwise reproducible.
template <class Chunk>
ItemTotals for_chunks(const ItemGraph& g, int threads, Chunk&& chunk) {
  const long long n_chunks = static_cast<long long>(g.chunks.size()) - 1;
  std::vector<ItemTotals> partial(static_cast<size_t>(n_chunks));
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
#endif
  for (long long ch = 0; ch < n_chunks; ++ch) partial[ch] = chunk(g.chunks[ch], g.chunks[ch + 1]);
  return combine(partial);
}

// A per-thread scratch array of at least `size` doubles (slot picks one of a few).
inline double* scratch(int slot, count_t size) {
  thread_local std::vector<double> buffers[3];
  std::vector<double>& buf = buffers[slot];
  if (static_cast<count_t>(buf.size()) < size) buf.resize(static_cast<size_t>(size));
  return buf.data();
}

// d[e - start[a0]] = s[a] - s[neighbour(e)] for every entry e of the rows [a0, a1),
// prefetching kPrefetch entries ahead (1M/10M, 10 Newman sweeps: median 1.50 and 1.25 s,
// 1.74 and 2.33 s without; wall clock, two alternating runs). The transcendental math of
// a pass then runs as one long vectorised loop over the chunk's entries.
template <class E>
inline void gather_differences(const ItemGraph& g, E en, index_t a0, index_t a1, const double* s, double* d) {
  const count_t base = g.start[a0];
  for (index_t a = a0; a < a1; ++a) {
    const double sa = s[a];
    for (count_t e = g.start[a]; e < g.start[a + 1]; ++e) {
      __builtin_prefetch(s + en.neighbour(e + kPrefetch));
      d[e - base] = sa - s[en.neighbour(e)];
    }
  }
}

// Runs row(a) -> ItemTotals for every item, in parallel over g's work chunks (see
// for_chunks), and returns the sum and the maximum.
template <class Row>
ItemTotals for_rows(const ItemGraph& g, int threads, Row&& row) {
  return for_chunks(g, threads, [&](index_t a0, index_t a1) {
    ItemTotals acc;
    for (index_t a = a0; a < a1; ++a) {
      const ItemTotals r = row(a);
      acc.sum += r.sum;
      acc.max = max_or_nan(acc.max, r.max);
    }
    return acc;
  });
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
