// The PoE objectives at given scores, straight from the comparison arrays (no graph):
// what `Solution.objective` computes when it is first read.
#include "core/bt_math.h"
#include "cpu/parallel.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
namespace {

// Comparisons per block of the sums: fixed, so the result does not depend on the thread count.
constexpr count_t kObjectiveBlock = 65536;

// sum_k loss(k) over the comparisons in fixed blocks, combined in block order.
template <class Loss>
double sum_over_comparisons(count_t m, int threads, Loss&& loss) {
  return for_blocks<count_t>(m, kObjectiveBlock, threads, [&](count_t k) { return ItemTotals{loss(k), 0.0}; }).sum;
}

}  // namespace

double bt_objective_of(const Comparisons& c, const double* s, double alpha, int threads) {
  const double data = with_edge_weights(c, [&](auto ew) {
    return sum_over_comparisons(c.m, threads, [&](count_t k) {
      return ew.total(k) > 0 ? bt_terms<true>(s[c.i[k]] - s[c.j[k]], ew.wins(k), ew.total(k)).loss : 0.0;
    });
  });
  const double prior = for_items(c.n, threads, [&](index_t a) {
                         return ItemTotals{bt_prior_terms<true>(s[a], alpha).loss, 0.0};
                       }).sum;
  return data + prior;
}

double gaussian_objective_of(const Comparisons& c, const double* s, double alpha, double beta, int threads) {
  const double data = with_edge_weights(c, [&](auto ew) {
    return sum_over_comparisons(c.m, threads, [&](count_t k) {
      return gaussian_loss(s[c.i[k]] - s[c.j[k]], ew.wins(k), ew.total(k), beta);
    });
  });
  const double prior = for_items(c.n, threads, [&](index_t a) { return ItemTotals{0.5 * alpha * s[a] * s[a], 0.0}; }).sum;
  return data + prior;
}

}  // namespace cpu
}  // namespace pycomp
