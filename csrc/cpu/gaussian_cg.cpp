// PoE-Gaussian: minimise 1/2 sum_k w_k (s_i - s_j - (p_k - beta))^2 + alpha/2 ||s||^2,
// i.e. solve (L_w + alpha I) s = b with b_a = sum over a's comparisons of +-w (p - beta),
// by Jacobi-preconditioned CG. The CG residual is the gradient of the objective, so the
// stopping test is the same ||grad||_inf <= tol as PoE-BT; the true residual is
// recomputed at the end and CG restarted from there if the recurrence drifted.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bt_math.h"
#include "cpu/parallel.h"
#include "cpu/pcg.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {

SolveResult gaussian_cg(const Comparisons& c, const SolveOptions& opt, const GraphInfo& graph) {
  const int threads = resolve_threads(opt.n_threads);
  const index_t n = c.n;
  const index_t* I = c.i;
  const index_t* J = c.j;
  const double alpha = opt.alpha, beta = opt.beta;
  SolveResult res;
  res.scores.assign(n, 0.0);
  double* s = res.scores.data();
  std::vector<double> rhs(n), diag(n), grad(n);
  ScatterBuffers<2> setup(n, threads);
  ScatterBuffers<1> hv(n, threads);
  PcgScratch ws(n);

  return with_edge_weights(c, [&](auto ew) {
    setup.run(
        c.m,
        per_edge([&](count_t k, double* acc) {
          const double total = ew.total(k);
          const double target = ew.wins(k) - beta * total;  // w (p - beta)
          acc[2 * I[k]] += target;
          acc[2 * J[k]] -= target;
          acc[2 * I[k] + 1] += total;
          acc[2 * J[k] + 1] += total;
          return 0.0;
        }),
        [&](index_t a, const double* sums) {
          rhs[a] = sums[0];
          diag[a] = sums[1] + alpha;
          return ItemTotals{};
        });
    auto system_times = [&](const double* v, double* out) {
      return hv
          .run(
              c.m,
              per_edge([&](count_t k, double* acc) {
                const double x = ew.total(k) * (v[I[k]] - v[J[k]]);
                acc[I[k]] += x;
                acc[J[k]] -= x;
                return 0.0;
              }),
              [&](index_t a, const double* sums) {
                out[a] = sums[0] + alpha * v[a];
                return ItemTotals{v[a] * out[a], 0.0};
              })
          .sum;
    };
    // ||A s - b||_inf at s, the gradient norm of the objective.
    auto gradient_norm = [&]() {
      system_times(s, grad.data());
      return for_items(n, threads, [&](index_t a) { return ItemTotals{0.0, std::fabs(grad[a] - rhs[a])}; }).max;
    };
    int steps = 0;
    double gnorm = INFINITY;
    bool first = true;
    for (int restart = 0; restart < 5 && steps < opt.max_iter; ++restart) {
      steps += pcg(n, threads, system_times, diag.data(), rhs.data(), s, first, 0.5 * opt.tol, opt.max_iter - steps, ws);
      first = false;
      if (alpha == 0.0) center_components(res.scores, graph, threads);
      gnorm = gradient_norm();
      if (gnorm <= opt.tol) break;
    }
    if (!std::isfinite(gnorm)) gnorm = gradient_norm();
    double loss = 0.0;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : loss)
#endif
    for (count_t k = 0; k < c.m; ++k) loss += gaussian_loss(s[I[k]] - s[J[k]], ew.wins(k), ew.total(k), beta);
    const double prior =
        for_items(n, threads, [&](index_t a) { return ItemTotals{0.5 * alpha * s[a] * s[a], 0.0}; }).sum;
    res.objective = loss + prior;
    res.n_iter = steps;
    res.n_inner = steps;
    res.grad_norm = gnorm;
    res.converged = gnorm <= opt.tol;
    return res;
  });
}

}  // namespace cpu
}  // namespace pycomp
