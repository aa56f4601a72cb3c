// The PoE-BT objective F over the by-item graph (one pass with log1p per entry).
#pragma once

#include "core/bt_math.h"
#include "cpu/item_graph.h"
#include "cpu/parallel.h"

namespace pycomp {
namespace cpu {
PYCOMP_ISA_BEGIN

template <class E>
double bt_objective(const ItemGraph& graph, E en, double alpha, const double* s, int threads) {
  const count_t* start = graph.start.data();
  return for_rows(graph, threads, [&](index_t a) {
           const double sa = s[a];
           double loss = 0.0;
           for (count_t e = start[a]; e < start[a + 1]; ++e) {
             __builtin_prefetch(s + en.neighbour(e + kPrefetch));
             loss += bt_terms<true>(sa - s[en.neighbour(e)], en.wins(e), en.total(e)).loss;
           }
           // Each comparison's loss is seen from both of its rows.
           return ItemTotals{0.5 * loss + bt_prior_terms<true>(sa, alpha).loss, 0.0};
         })
      .sum;
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
