// The CPU backend: OpenMP solvers over a validated Comparisons view.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/common.h"
#include "core/solver_types.h"
#include "cpu/item_graph.h"

namespace pycomp {
namespace cpu {

// Connected components of the comparison graph, ignoring comparisons of zero weight.
GraphInfo connected_components(const Comparisons& c);

// Raised when alpha = 0 and the PoE-BT optimum does not exist: a group of items of one
// component never beat (or never lost to) the other items of that component.
struct NoOptimum : std::invalid_argument {
  NoOptimum(const std::string& message, std::vector<index_t> group, index_t comp, const char* dir)
      : std::invalid_argument(message), items(std::move(group)), component(comp), direction(dir) {}
  std::vector<index_t> items;  // every item of the group, ascending
  index_t component;
  const char* direction;  // "never beat" or "never lost to"
};

// With alpha = 0 the PoE-BT optimum exists iff every component is strongly connected
// in the graph with an arc a -> b whenever a has positive win mass over b. Throws
// NoOptimum for the first offending group of items otherwise.
void require_bt_optimum_exists(const Comparisons& c, const GraphInfo& graph);

// The solver kernels, compiled once per instruction set and called through
// cpu_kernels() (cpu/dispatch.cpp explains the dispatch):
//   bt_newton      PoE-BT by Newton with a Jacobi-preconditioned CG solve of the Hessian
//   bt_fixed_point PoE-BT by Hunter's MM or Newman's fixed point (damped when it oscillates)
//   gaussian_cg    PoE-Gaussian by preconditioned CG on (L_w + alpha I) s = b
#define PYCOMP_DECLARE_CPU_KERNELS                                                                          \
  SolveResult bt_newton(const ItemGraph& graph, const SolveOptions& opt, const GraphInfo& info);           \
  SolveResult bt_fixed_point(const ItemGraph& graph, const SolveOptions& opt, const GraphInfo& info,        \
                             BtMethod method);                                                             \
  SolveResult gaussian_cg(const Comparisons& c, const ItemGraph& graph, const SolveOptions& opt,            \
                          const GraphInfo& info);

PYCOMP_ISA_BEGIN
PYCOMP_DECLARE_CPU_KERNELS
PYCOMP_ISA_END
#ifdef PYCOMP_WITH_AVX2_KERNELS
namespace isa_avx2 {
PYCOMP_DECLARE_CPU_KERNELS
}  // namespace isa_avx2
#endif

// One instruction set's kernels.
struct CpuKernels {
  const char* isa;
  SolveResult (*bt_newton)(const ItemGraph&, const SolveOptions&, const GraphInfo&);
  SolveResult (*bt_fixed_point)(const ItemGraph&, const SolveOptions&, const GraphInfo&, BtMethod);
  SolveResult (*gaussian_cg)(const Comparisons&, const ItemGraph&, const SolveOptions&, const GraphInfo&);
};
// The kernels for this CPU, chosen once (cpu/dispatch.cpp).
const CpuKernels& cpu_kernels();

// Local approximation of diag(H^-1) for H = weighted Laplacian (edge weights curv) + diag(prior):
//   var_a ~= 1 / (H_aa - sum_b C_ab^2 / H_bb), C_ab the summed curvature of all comparisons of a and b.
std::vector<double> local_variance(const Comparisons& c, const double* curv, const double* prior, int n_threads);

// The parts of the PoE-BT Hessian at s (bt_math.h): curv[k], the curvature of comparison k
// (w_k sig(d) sig(-d), d = s_i - s_j), and prior[a], the prior's curvature of item a.
void bt_curvature(const Comparisons& c, const double* s, double alpha, int threads, double* curv, double* prior);

// The PoE-BT and PoE-Gaussian objectives at s, from the comparisons themselves.
double bt_objective_of(const Comparisons& c, const double* s, double alpha, int threads);
double gaussian_objective_of(const Comparisons& c, const double* s, double alpha, double beta, int threads);

// Shifts every component of `scores` to mean 0.
void center_components(std::vector<double>& scores, const GraphInfo& graph, int n_threads);

}  // namespace cpu
}  // namespace pycomp
