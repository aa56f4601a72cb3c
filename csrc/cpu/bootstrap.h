// The bootstrap of the PoE scores over collapsed comparisons (collapse.h): each replicate
// draws the resampling units with replacement (a multinomial draw, from its own random
// stream), sums the drawn units into per-pair weights and re-solves from the full
// solution, on the same pairs. Replicates run in parallel, one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common.h"
#include "cpu/collapse.h"

namespace pycomp {
namespace cpu {

struct BootstrapOptions {
  bool gaussian = false;
  double alpha = 1.0;
  double beta = 0.5;
  double tol = 1e-8;  // gradient norm; dense replicates also stop below 1e-9 x the largest item weight
  int max_iter = 100;
  int n_threads = 0;
  std::int64_t replicates = 0;
  std::uint64_t seed = 0;
  // Warm-started dense Newton up to this many items; the sparse solvers (cold) above.
  index_t dense_limit = 1500;
};

struct BootstrapResult {
  std::vector<double> scores;          // [replicates * n], replicate-major
  std::vector<int> n_iter;             // [replicates]
  std::vector<unsigned char> converged;  // [replicates]
};

// Draws the multinomial counts of the resampling units: `draws` units with replacement,
// unit u with probability unit_count[u] / draws. Built once per Collapsed (constants per
// distinct unit count, an alias table); draw() is then thread-safe.
class UnitSampler {
 public:
  explicit UnitSampler(const Collapsed& c);
  // counts[u] copies of unit u drawn, from the random stream of (seed, replicate).
  void draw(std::uint64_t seed, std::int64_t replicate, std::int64_t* counts) const;

  struct Poisson {  // Poisson(mu) by PTRS (mu >= 10) or by inversion (mu < 10, b = exp(-mu))
    double mu, b, a, two_a, inv_alpha, v_r, log_mu, shift;
    std::size_t cdf_begin, cdf_size;  // inversion: the distribution function, in cdf_, and its
    std::size_t guide_begin;           // guide table (kGuide entries) in guide_
  };

 private:
  std::int64_t draws_ = 0;
  double lambda_ = 0.0;                 // expected Poisson total (0: plain categorical draws)
  std::vector<Poisson> poisson_;        // [distinct unit counts]
  std::vector<std::uint32_t> kind_;     // [U] unit u draws from poisson_[kind_[u]]
  std::vector<double> cdf_;             // the inversion tables, one after the other
  std::vector<std::uint32_t> guide_;    // guide_[guide_begin + j]: the first k with cdf >= j / kGuide
  std::vector<double> log_factorial_;   // log(k!) for small k
  std::vector<std::int64_t> threshold_;  // [U] exact integer alias table, columns of capacity draws
  std::vector<std::int64_t> alias_;     // [U]
};

// Runs the bootstrap from the full solution s0 [n]. With `given_counts` (replicates x U,
// replicate-major) the draws are taken from it instead of the random streams.
BootstrapResult bootstrap_scores(const Collapsed& c, const double* s0, const BootstrapOptions& opt,
                                 const std::int64_t* given_counts);

}  // namespace cpu
}  // namespace pycomp
