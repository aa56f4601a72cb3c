// Options and results of the PoE solvers, shared by every backend.
#pragma once

#include <string>
#include <vector>

#include "core/common.h"

namespace pycomp {

enum class BtMethod { Newton, MM, Newman };

struct SolveOptions {
  double alpha = 1.0;  // prior strength (BT: virtual games; Gaussian: L2)
  double beta = 0.5;   // Gaussian: offset subtracted from p
  double tol = 1e-8;   // stop when ||grad F||_inf <= tol
  int max_iter = 100;  // outer iterations (Newton steps, fixed-point sweeps, CG iterations)
  int n_threads = 0;   // 0: the OpenMP default
  bool objective = true;  // compute F at the result (one more pass); NaN in the result otherwise
};

// Connected components of the comparison graph (comparisons of zero weight ignored).
struct GraphInfo {
  std::vector<index_t> labels;  // [n] component of each item, numbered by first item
  index_t n_components = 0;
  std::vector<index_t> sizes;   // [n_components]
};

struct SolveResult {
  std::vector<double> scores;  // [n]
  int n_iter = 0;              // outer iterations done
  long long n_inner = 0;       // inner iterations (CG steps) summed over the run
  bool converged = false;
  double grad_norm = 0.0;      // ||grad F||_inf at the returned scores
  double objective = 0.0;      // F at the returned scores (NaN unless SolveOptions::objective)
  GraphInfo graph;
};

}  // namespace pycomp
