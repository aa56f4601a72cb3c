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
  return for_chunks(graph, threads, [&](index_t a0, index_t a1) {
           const count_t e0 = start[a0], len = start[a1] - e0;
           double* d = scratch(0, len);
           gather_differences(graph, en, a0, a1, s, d);
           const auto local = en.offset(e0);  // a local copy vectorises; a captured reference does not
           double loss = 0.0;
#pragma omp simd reduction(+ : loss)
           for (count_t t = 0; t < len; ++t) loss += bt_terms<true>(d[t], local.wins(t), local.total(t)).loss;
           // Each comparison's loss is seen from both of its rows.
           ItemTotals out{0.5 * loss, 0.0};
           for (index_t a = a0; a < a1; ++a) out.sum += bt_prior_terms<true>(s[a], alpha).loss;
           return out;
         })
      .sum;
}

PYCOMP_ISA_END
}  // namespace cpu
}  // namespace pycomp
