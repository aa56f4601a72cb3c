// The CPU backend: OpenMP solvers over a validated Comparisons view.
#pragma once

#include <vector>

#include "core/common.h"
#include "core/solver_types.h"

namespace pycomp {
namespace cpu {

// Connected components of the comparison graph, ignoring comparisons of zero weight.
GraphInfo connected_components(const Comparisons& c);

// With alpha = 0 the PoE-BT optimum exists iff every component is strongly connected
// in the graph with an arc a -> b whenever a has positive win mass over b. Throws
// std::invalid_argument naming an offending group of items otherwise.
void require_bt_optimum_exists(const Comparisons& c, const GraphInfo& graph);

// PoE-BT by Newton with a Jacobi-preconditioned CG solve of the Hessian and a line search.
SolveResult bt_newton(const Comparisons& c, const SolveOptions& opt, const GraphInfo& graph);

// PoE-BT by Hunter's MM (Zermelo) iteration or Newman's fixed point (damped when it oscillates).
SolveResult bt_fixed_point(const Comparisons& c, const SolveOptions& opt, const GraphInfo& graph, BtMethod method);

// PoE-Gaussian by preconditioned CG on (L_w + alpha I) s = b.
SolveResult gaussian_cg(const Comparisons& c, const SolveOptions& opt, const GraphInfo& graph);

// Local approximation of diag(H^-1) for H = weighted Laplacian (edge weights curv) + diag(prior):
//   var_a ~= 1 / (H_aa - sum_b C_ab^2 / H_bb), C_ab the summed curvature of all comparisons of a and b.
std::vector<double> local_variance(const Comparisons& c, const double* curv, const double* prior, int n_threads);

// Shifts every component of `scores` to mean 0.
void center_components(std::vector<double>& scores, const GraphInfo& graph, int n_threads);

}  // namespace cpu
}  // namespace pycomp
