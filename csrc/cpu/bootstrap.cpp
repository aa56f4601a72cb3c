// The bootstrap of the PoE scores (bootstrap.h).
//
// Draws. A replicate draws `draws` units with replacement, unit u with probability
// q_u = unit_count[u] / draws: counts ~ Multinomial(draws, q). When the units hold many
// copies each, it is drawn by Poissonization, exactly: independent X_u ~ Poisson(lambda q_u),
// lambda = draws - 2 sqrt(draws), redrawn in the rare case sum X > draws; given
// sum X = s, X ~ Multinomial(s, q), so adding draws - s categorical draws from q gives
// Multinomial(draws, q) whatever s is. The Poisson means are the same in every
// replicate, so the sampler constants are computed once per distinct unit count: PTRS
// (Hormann 1993, transformed rejection with squeeze) for means >= 10, inversion of a
// tabulated distribution function below. The categorical
// draws use Walker's alias table in exact integers (columns of capacity draws) and
// exact uniform integers. With few copies per unit all draws are categorical. Each
// replicate has its own xoshiro256** stream seeded from (seed, replicate), so results do
// not depend on the thread count or on which thread runs a replicate.
//
// Solves. A replicate's optimum is near the full solution s0 (its weights differ by
// about 1/sqrt(count) per pair), so it starts there. Up to dense_limit items the step is
// a chord step, dir = -H0^-1 g, with H0 the Hessian at s0 under the full data, factored
// (Cholesky) once and shared by all replicates: each step then costs one pass over the
// pairs and two triangular solves. When a chord step does not halve the gradient the
// replicate switches to Newton with its own Hessian (Cholesky), and steps that do not
// reduce the gradient are backtracked on the objective (Armijo). Above dense_limit each
// replicate is solved from scratch by the sparse solvers on its own graph.
#include "cpu/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "core/bt_math.h"
#include "cpu/parallel.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
namespace {

// ---------------------------------------------------------------- random numbers

inline std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman & Vigna), one stream per (seed, replicate).
struct Stream {
  std::uint64_t s[4];
  Stream(std::uint64_t seed, std::uint64_t replicate) {
    std::uint64_t x = seed;
    std::uint64_t mixed = splitmix64(x);
    x = mixed ^ (replicate * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL);
    splitmix64(x);
    for (auto& v : s) v = splitmix64(x);
  }
  static std::uint64_t rotl(std::uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  // Uniform in (0, 1).
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  // Uniform integer in [0, range), range >= 1, exactly (Lemire's multiply-and-reject).
  std::uint64_t below(std::uint64_t range) {
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * range;
    std::uint64_t low = static_cast<std::uint64_t>(m);
    if (low < range) {
      const std::uint64_t floor_ = (0 - range) % range;
      while (low < floor_) {
        m = static_cast<unsigned __int128>(next()) * range;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }
};

// log(k!) by Stirling's series to 1/k^5 (error below 1e-17 from k = 256 on).
double log_factorial_stirling(double k) {
  const double k1 = k + 1.0, inv = 1.0 / k1, inv2 = inv * inv;
  return (k + 0.5) * std::log(k1) - k1 + 0.91893853320467274178 + inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 / 1260));
}

// log(k!) from a table below its size, by Stirling's series above.
struct LogFactorial {
  const double* table;
  double size;
  double operator()(double k) const { return k < size ? table[static_cast<size_t>(k)] : log_factorial_stirling(k); }
};

UnitSampler::Poisson poisson_constants(double mu) {
  UnitSampler::Poisson c{};
  c.mu = mu;
  if (mu < 10.0) {
    c.b = std::exp(-mu);
    return c;
  }
  const double smu = std::sqrt(mu);
  c.b = 0.931 + 2.53 * smu;
  c.a = -0.059 + 0.02483 * c.b;
  c.two_a = 2.0 * c.a;
  c.inv_alpha = 1.1239 + 1.1328 / (c.b - 3.4);
  c.v_r = 0.9277 - 3.6224 / (c.b - 2.0);
  c.log_mu = std::log(mu);
  c.shift = mu + 0.43;
  return c;
}

// Inversion draws start at a guide table's entry (Chen & Asau): bucket j = floor(u kGuide)
// starts at the first k with cdf[k] >= j / kGuide, as every k below has cdf[k] < u. With
// kGuide a power of 2, u kGuide and j / kGuide are exact.
constexpr std::size_t kGuide = 128;

// Appends the distribution function of Poisson(mu), mu < 10, to cdf (its partial sums up to
// the first term that underflows to zero) and its guide table to guide.
void append_poisson_cdf(UnitSampler::Poisson& c, std::vector<double>& cdf, std::vector<std::uint32_t>& guide) {
  c.cdf_begin = cdf.size();
  double pk = c.b, sum = pk;
  cdf.push_back(sum);
  for (std::int64_t k = 1; pk > 0.0; ++k) {
    pk *= c.mu / static_cast<double>(k);
    sum += pk;
    cdf.push_back(sum);
  }
  c.cdf_size = cdf.size() - c.cdf_begin;
  c.guide_begin = guide.size();
  std::size_t k = 0;
  for (std::size_t j = 0; j < kGuide; ++j) {
    const double floor_ = static_cast<double>(j) / kGuide;
    while (k < c.cdf_size && cdf[c.cdf_begin + k] < floor_) ++k;
    guide.push_back(static_cast<std::uint32_t>(k));
  }
}

// Poisson(mu) for mu < 10, by inversion of its tabulated distribution function.
std::int64_t poisson_inversion(Stream& g, const double* cdf, std::size_t size, const std::uint32_t* guide) {
  for (;;) {
    const double u = g.uniform();
    for (std::size_t k = guide[static_cast<std::size_t>(u * kGuide)]; k < size; ++k) {
      if (u <= cdf[k]) return static_cast<std::int64_t>(k);
    }
    // the sums stalled below u by rounding: draw again
  }
}

// Poisson(mu) for mu >= 10, by PTRS: transformed rejection with squeeze (Hormann 1993).
std::int64_t poisson_ptrs(Stream& g, const UnitSampler::Poisson& c, const LogFactorial& log_fact) {
  for (;;) {
    const double u = g.uniform() - 0.5;
    const double v = g.uniform();
    const double us = 0.5 - std::fabs(u);
    const double x = (c.two_a / us + c.b) * u + c.shift;
    if (!(x >= 0.0 && x < 0x1p62)) continue;  // k < 0, or beyond any reach of the mean
    const double k = static_cast<double>(static_cast<std::int64_t>(x));  // floor, x >= 0
    if (us >= 0.07 && v <= c.v_r) return static_cast<std::int64_t>(k);
    if (us < 0.013 && v > us) continue;
    // log(v inv_alpha / (a / us^2 + b)) <= log(mu^k e^-mu / k!)
    if (std::log(v * c.inv_alpha / (c.a / (us * us) + c.b)) <= k * c.log_mu - c.mu - log_fact(k)) {
      return static_cast<std::int64_t>(k);
    }
  }
}

// ---------------------------------------------------------------- dense solves

// The per-pair derivative of the objective in d = s_a - s_b (BT or Gaussian) and its
// curvature, at weights (wins, total).
struct PairModel {
  bool gaussian;
  double alpha, beta;
  BtTerms pair(double d, double wins, double total) const {
    if (gaussian) return BtTerms{0.0, total * (d + beta) - wins, total};
    return bt_terms<false>(d, wins, total);
  }
  BtTerms prior(double s) const {
    if (gaussian) return BtTerms{0.0, alpha * s, alpha};
    return bt_prior_terms<false>(s, alpha);
  }
  double objective(const Collapsed& c, const double* wins, const double* total, const double* s) const {
    double f = 0.0;
    for (size_t k = 0; k < c.a.size(); ++k) {
      const double d = s[c.a[k]] - s[c.b[k]];
      f += gaussian ? 0.5 * total[k] * d * d - (wins[k] - beta * total[k]) * d : bt_terms<true>(d, wins[k], total[k]).loss;
    }
    for (index_t x = 0; x < c.n; ++x) f += gaussian ? 0.5 * alpha * s[x] * s[x] : bt_prior_terms<true>(s[x], alpha).loss;
    return f;
  }
};

// g = grad F at s; returns ||g||_inf. PoE-BT forms exp(-(s_a - s_b)) from per-item
// exponentials (up, down: [n] scratch), with no exp per pair, while |s| <= 300.
double gradient(const Collapsed& c, const PairModel& model, const double* wins, const double* total, const double* s,
                double* g, double* up, double* down) {
  const index_t n = c.n;
  double largest = 0.0;
  for (index_t x = 0; x < n; ++x) {
    g[x] = model.prior(s[x]).grad;
    largest = max_or_nan(largest, std::fabs(s[x]));
  }
  const size_t P = c.a.size();
  const index_t* pa = c.a.data();
  const index_t* pb = c.b.data();
  if (!model.gaussian && largest <= 300.0) {
    for (index_t x = 0; x < n; ++x) {
      up[x] = std::exp(s[x]);
      down[x] = std::exp(-s[x]);
    }
    // g[a] is summed in a register over each run of pairs of the same a (the pairs come in
    // (a, b) order), the same sums in the same order without a store per pair.
    for (size_t k = 0; k < P;) {
      const index_t a = pa[k];
      const double down_a = down[a];
      double ga = g[a];
      for (; k < P && pa[k] == a; ++k) {
        const index_t b = pb[k];
        const double t = bt_terms_given_ratio(up[b] * down_a, wins[k], total[k]).grad;
        ga += t;
        g[b] -= t;
      }
      g[a] = ga;
    }
  } else {
    for (size_t k = 0; k < P;) {
      const index_t a = pa[k];
      const double sa = s[a];
      double ga = g[a];
      for (; k < P && pa[k] == a; ++k) {
        const index_t b = pb[k];
        const double t = model.pair(sa - s[b], wins[k], total[k]).grad;
        ga += t;
        g[b] -= t;
      }
      g[a] = ga;
    }
  }
  double norm = 0.0;
  for (index_t x = 0; x < n; ++x) norm = max_or_nan(norm, std::fabs(g[x]));
  return norm;
}

// H = the Hessian at s (+ 11'/n when alpha = 0, which makes it definite on a connected
// graph and leaves the centred directions alone), row-major n x n.
void hessian(const Collapsed& c, const PairModel& model, const double* total_w, const double* wins, const double* s,
             double* H) {
  const index_t n = c.n;
  const double fill = model.alpha == 0.0 ? 1.0 / n : 0.0;
  std::fill(H, H + static_cast<size_t>(n) * n, fill);
  for (index_t x = 0; x < n; ++x) H[static_cast<size_t>(x) * n + x] += model.prior(s[x]).curv;
  for (size_t k = 0; k < c.a.size(); ++k) {
    const index_t a = c.a[k], b = c.b[k];
    const double h = model.pair(s[a] - s[b], wins[k], total_w[k]).curv;
    H[static_cast<size_t>(a) * n + a] += h;
    H[static_cast<size_t>(b) * n + b] += h;
    H[static_cast<size_t>(a) * n + b] -= h;
    H[static_cast<size_t>(b) * n + a] -= h;
  }
}

// Rows [j0, j1) of the in-place Cholesky factor, right-looking on the upper triangle of
// row-major H: row j becomes row j of U = L', and the rows below j in the block take its
// rank-one update. False if not definite.
bool factor_rows(index_t n, double* H, index_t j0, index_t j1) {
  for (index_t j = j0; j < j1; ++j) {
    double* __restrict rj = H + static_cast<size_t>(j) * n;
    if (!(rj[j] > 0.0)) return false;
    const double l = std::sqrt(rj[j]), inv = 1.0 / l;
    rj[j] = l;
    for (index_t k = j + 1; k < n; ++k) rj[k] *= inv;
    for (index_t i = j + 1; i < j1; ++i) {
      double* __restrict ri = H + static_cast<size_t>(i) * n;
      const double u = rj[i];
      for (index_t k = i; k < n; ++k) ri[k] -= u * rj[k];
    }
  }
  return true;
}

// In-place Cholesky factor H = L L' of the symmetric row-major H, stored both ways: L in
// the lower triangle, L' in the upper (so that both triangular solves run along rows);
// false if not definite. Blocks of kBlock rows are factored, then subtracted from the
// trailing rows in one pass (a rank-kBlock update, contiguous rows, vectorised).
bool cholesky(index_t n, double* H) {
  constexpr index_t kBlock = 8;
  for (index_t j0 = 0; j0 < n; j0 += kBlock) {
    const index_t j1 = std::min(n, j0 + kBlock);
    if (!factor_rows(n, H, j0, j1)) return false;
    if (j1 - j0 == kBlock) {
      const double* u[kBlock];
      for (index_t t = 0; t < kBlock; ++t) u[t] = H + static_cast<size_t>(j0 + t) * n;
      for (index_t i = j1; i < n; ++i) {
        double* __restrict ri = H + static_cast<size_t>(i) * n;
        const double c0 = u[0][i], c1 = u[1][i], c2 = u[2][i], c3 = u[3][i];
        const double c4 = u[4][i], c5 = u[5][i], c6 = u[6][i], c7 = u[7][i];
        const double* __restrict u0 = u[0];
        const double* __restrict u1 = u[1];
        const double* __restrict u2 = u[2];
        const double* __restrict u3 = u[3];
        const double* __restrict u4 = u[4];
        const double* __restrict u5 = u[5];
        const double* __restrict u6 = u[6];
        const double* __restrict u7 = u[7];
        for (index_t k = i; k < n; ++k) {
          ri[k] -= ((c0 * u0[k] + c1 * u1[k]) + (c2 * u2[k] + c3 * u3[k])) +
                   ((c4 * u4[k] + c5 * u5[k]) + (c6 * u6[k] + c7 * u7[k]));
        }
      }
    } else {
      for (index_t t = j0; t < j1; ++t) {
        const double* __restrict rt = H + static_cast<size_t>(t) * n;
        for (index_t i = j1; i < n; ++i) {
          double* __restrict ri = H + static_cast<size_t>(i) * n;
          const double c = rt[i];
          for (index_t k = i; k < n; ++k) ri[k] -= c * rt[k];
        }
      }
    }
  }
  for (index_t i = 1; i < n; ++i) {
    for (index_t k = 0; k < i; ++k) H[static_cast<size_t>(i) * n + k] = H[static_cast<size_t>(k) * n + i];
  }
  return true;
}

// x = -(L L')^-1 g from cholesky's factor F (L below the diagonal, L' above), y as scratch;
// both solves subtract multiples of rows (vectorised).
void chol_solve_negative(index_t n, const double* F, const double* g, double* __restrict y, double* __restrict x) {
  for (index_t i = 0; i < n; ++i) y[i] = -g[i];
  for (index_t i = 0; i < n; ++i) {  // L y = -g, by the rows of L'
    const double* __restrict ri = F + static_cast<size_t>(i) * n;
    const double yi = y[i] / ri[i];
    y[i] = yi;
    for (index_t k = i + 1; k < n; ++k) y[k] -= ri[k] * yi;
  }
  for (index_t i = n - 1; i >= 0; --i) {  // L' x = y, by the rows of L
    const double* __restrict ri = F + static_cast<size_t>(i) * n;
    const double xi = y[i] / ri[i];
    x[i] = xi;
    for (index_t k = 0; k < i; ++k) y[k] -= ri[k] * xi;
  }
}

// A replicate also stops once its gradient is below this fraction of the largest item
// weight (sum of `total` over the item's pairs): the scores are then within about
// 1e-9 / (the smallest sig(d) sig(-d) of the item's pairs) of the replicate's optimum,
// orders of magnitude below the bootstrap's own Monte-Carlo error.
constexpr double kReplicateRelTol = 1e-9;

struct DenseScratch {
  explicit DenseScratch(index_t n, bool own_factor)
      : g(n), g_new(n), dir(n), y(n), trial(n), up(n), down(n), L(own_factor ? static_cast<size_t>(n) * n : 0) {}
  std::vector<double> g, g_new, dir, y, trial, up, down, L;
  double largest_weight = 0.0;  // of the replicate being solved
};

// The largest item weight: sum of total over the item's pairs (y: [n] scratch).
double largest_item_weight(const Collapsed& c, const double* total, double* y) {
  std::fill(y, y + c.n, 0.0);
  for (size_t k = 0; k < c.a.size(); ++k) {
    y[c.a[k]] += total[k];
    y[c.b[k]] += total[k];
  }
  double largest = 0.0;
  for (index_t x = 0; x < c.n; ++x) largest = std::max(largest, y[x]);
  return largest;
}

// Solves one replicate from s (in place) with the shared Cholesky factor F0 (nullptr: none).
// Returns the iterations; sets converged.
int dense_replicate(const Collapsed& c, const PairModel& model, const double* wins, const double* total,
                    const double* F0, const BootstrapOptions& opt, double* s, DenseScratch& w, bool& converged) {
  const index_t n = c.n;
  bool chord = F0 != nullptr;
  double gn = gradient(c, model, wins, total, s, w.g.data(), w.up.data(), w.down.data());
  double previous = INFINITY;
  int it = 0;
  const double tol = std::max(opt.tol, kReplicateRelTol * w.largest_weight);
  converged = gn <= tol;
  const int limit = std::max(opt.max_iter, 1);
  while (!converged && it < limit && std::isfinite(gn)) {
    ++it;
    if (chord && gn > 0.5 * previous) chord = false;  // the shared Hessian is too far off
    if (chord) {
      chol_solve_negative(n, F0, w.g.data(), w.y.data(), w.dir.data());
    } else {
      if (w.L.empty()) w.L.resize(static_cast<size_t>(n) * n);
      hessian(c, model, total, wins, s, w.L.data());
      if (!cholesky(n, w.L.data())) break;
      chol_solve_negative(n, w.L.data(), w.g.data(), w.y.data(), w.dir.data());
    }
    for (index_t x = 0; x < n; ++x) w.trial[x] = s[x] + w.dir[x];
    double gn_new = gradient(c, model, wins, total, w.trial.data(), w.g_new.data(), w.up.data(), w.down.data());
    bool accept = gn_new < gn;
    double f0 = NAN;
    if (accept && !chord) {
      // A Newton step from a nearly singular Hessian (saturated pairs, a weak prior) can
      // leap far past the optimum to where the gradient is small too: F must not grow.
      f0 = model.objective(c, wins, total, s);
      const double f = model.objective(c, wins, total, w.trial.data());
      accept = f <= f0 + 1e-13 * (std::fabs(f0) + 1.0);
    }
    if (!accept) {
      if (chord) {  // retry this step as Newton
        chord = false;
        previous = INFINITY;
        continue;
      }
      // Newton step that does not shrink the gradient or grows F: Armijo backtracking on F.
      double slope = 0.0;
      for (index_t x = 0; x < n; ++x) slope += w.g[x] * w.dir[x];
      if (std::isnan(f0)) f0 = model.objective(c, wins, total, s);
      double t = 1.0;
      bool found = false;
      for (int h = 0; h < 60 && !found; ++h, t *= 0.5) {
        for (index_t x = 0; x < n; ++x) w.trial[x] = s[x] + t * w.dir[x];
        const double f = model.objective(c, wins, total, w.trial.data());
        found = std::isfinite(f) && f <= f0 + 1e-4 * t * slope + 1e-13 * (std::fabs(f0) + 1.0);
      }
      if (!found) break;
      gn_new = gradient(c, model, wins, total, w.trial.data(), w.g_new.data(), w.up.data(), w.down.data());
    }
    std::copy(w.trial.begin(), w.trial.end(), s);
    w.g.swap(w.g_new);
    previous = gn;
    gn = gn_new;
    converged = gn <= tol;
  }
  if (model.alpha == 0.0) {
    double mean = 0.0;
    for (index_t x = 0; x < n; ++x) mean += s[x];
    mean /= n;
    for (index_t x = 0; x < n; ++x) s[x] -= mean;
  }
  return it;
}

// One replicate by the sparse solvers, from scratch, on its own graph (one thread).
int sparse_replicate(const Collapsed& c, const BootstrapOptions& opt, const double* wins, const double* total,
                     double* s, bool& converged) {
  const size_t P = c.a.size();
  std::vector<double> p(P), w(P);
  for (size_t k = 0; k < P; ++k) {
    w[k] = total[k];
    p[k] = total[k] > 0 ? std::min(1.0, std::max(0.0, wins[k] / total[k])) : 0.5;
  }
  Comparisons view;
  view.n = c.n;
  view.m = static_cast<count_t>(P);
  view.i = c.a.data();
  view.j = c.b.data();
  view.p = p.data();
  view.w = w.data();
  SolveOptions so;
  so.alpha = opt.alpha;
  so.beta = opt.beta;
  so.tol = opt.tol;
  so.max_iter = opt.max_iter;
  so.n_threads = 1;
  so.objective = false;
  try {
    const GraphInfo info = connected_components(view);
    if (!opt.gaussian && opt.alpha == 0.0) require_bt_optimum_exists(view, info);
    const ItemGraph graph = build_item_graph(view, 1);
    const SolveResult r = opt.gaussian ? cpu_kernels().gaussian_cg(view, graph, so, info)
                                       : cpu_kernels().bt_newton(graph, so, info);
    std::copy(r.scores.begin(), r.scores.end(), s);
    converged = r.converged;
    return r.n_iter;
  } catch (const NoOptimum&) {
    std::fill(s, s + c.n, NAN);
    converged = false;
    return 0;
  }
}

// The pair weights of one replicate from its unit counts.
void replicate_weights(const Collapsed& c, const std::int64_t* counts, double* wins, double* total) {
  std::fill(wins, wins + c.a.size(), 0.0);
  std::fill(total, total + c.a.size(), 0.0);
  const size_t U = c.unit_count.size();
  for (size_t u = 0; u < U; ++u) {
    const double k = static_cast<double>(counts[u]);
    if (k == 0.0) continue;
    for (count_t e = c.unit_start[u]; e < c.unit_start[u + 1]; ++e) {
      wins[c.unit_pair[e]] += k * c.unit_wins[e];
      total[c.unit_pair[e]] += k * c.unit_total[e];
    }
  }
}

}  // namespace

UnitSampler::UnitSampler(const Collapsed& c) : draws_(c.draws) {
  const size_t U = c.unit_count.size();
  if (U == 0 || draws_ <= 0) return;
  // Poisson totals when the units hold many copies each; else plain categorical draws.
  const double N = static_cast<double>(draws_);
  if (draws_ >= 2 * static_cast<std::int64_t>(U) && draws_ >= 64) {
    lambda_ = N - 2.0 * std::sqrt(N);
    // Many units share a count: one set of constants per distinct count, in order of
    // first appearance; counts below kDirect are looked up directly.
    constexpr count_t kDirect = 4096;
    std::vector<std::uint32_t> direct(static_cast<size_t>(std::min<count_t>(kDirect, draws_ + 1)), UINT32_MAX);
    std::unordered_map<count_t, std::uint32_t> beyond;
    kind_.resize(U);
    double largest = 0.0;
    for (size_t u = 0; u < U; ++u) {
      const count_t k = c.unit_count[u];
      std::uint32_t& slot = k < static_cast<count_t>(direct.size()) ? direct[static_cast<size_t>(k)]
                                                                     : beyond.emplace(k, UINT32_MAX).first->second;
      if (slot == UINT32_MAX) {
        slot = static_cast<std::uint32_t>(poisson_.size());
        Poisson p = poisson_constants(lambda_ * (static_cast<double>(k) / N));
        if (p.mu < 10.0) append_poisson_cdf(p, cdf_, guide_);
        poisson_.push_back(p);
        largest = std::max(largest, p.mu);
      }
      kind_[u] = slot;
    }
    // log(k!) tabulated over the likely draws (at most 2^16 entries), exactly up to 255.
    const double reach = std::min(largest + 12.0 * std::sqrt(largest) + 64.0, 65536.0);
    log_factorial_.resize(static_cast<size_t>(reach));
    for (size_t k = 0; k < log_factorial_.size(); ++k) {
      log_factorial_[k] = k < 256 ? std::lgamma(k + 1.0) : log_factorial_stirling(static_cast<double>(k));
    }
  }
  // Walker's alias table in exact integers: unit u has weight unit_count[u] * U over U
  // columns of capacity draws; column x keeps x below threshold[x], else gives alias[x].
  threshold_.assign(U, draws_);
  alias_.resize(U);
  std::vector<unsigned __int128> w(U);
  std::vector<std::int64_t> small, large;
  const unsigned __int128 cap = static_cast<unsigned __int128>(draws_);
  for (size_t u = 0; u < U; ++u) {
    alias_[u] = static_cast<std::int64_t>(u);
    w[u] = static_cast<unsigned __int128>(c.unit_count[u]) * U;
    (w[u] < cap ? small : large).push_back(static_cast<std::int64_t>(u));
  }
  while (!small.empty() && !large.empty()) {
    const std::int64_t x = small.back(), l = large.back();
    small.pop_back();
    threshold_[x] = static_cast<std::int64_t>(w[x]);
    alias_[x] = l;
    w[l] -= cap - w[x];
    if (w[l] < cap) {
      large.pop_back();
      small.push_back(l);
    }
  }
}

void UnitSampler::draw(std::uint64_t seed, std::int64_t replicate, std::int64_t* counts) const {
  const size_t U = threshold_.size();
  if (lambda_ == 0.0 || draws_ <= 0) std::fill(counts, counts + U, std::int64_t{0});
  if (U == 0 || draws_ <= 0) return;
  Stream g(seed, static_cast<std::uint64_t>(replicate));
  std::int64_t drawn = 0;
  if (lambda_ > 0.0) {
    const LogFactorial log_fact{log_factorial_.data(), static_cast<double>(log_factorial_.size())};
    do {  // independent Poissons, kept when their total does not pass draws (P > 0.97)
      drawn = 0;
      for (size_t u = 0; u < U; ++u) {
        const Poisson& c = poisson_[kind_[u]];
        const std::int64_t k =
            c.mu >= 10.0 ? poisson_ptrs(g, c, log_fact) : poisson_inversion(g, cdf_.data() + c.cdf_begin, c.cdf_size,
                                                                       guide_.data() + c.guide_begin);
        counts[u] = k;
        drawn += k;
      }
    } while (drawn > draws_);
  }
  const std::uint64_t columns = U, capacity = static_cast<std::uint64_t>(draws_);
  for (; drawn < draws_; ++drawn) {
    const std::uint64_t x = g.below(columns);
    const std::int64_t y = static_cast<std::int64_t>(g.below(capacity));
    counts[y < threshold_[x] ? x : static_cast<std::uint64_t>(alias_[x])] += 1;
  }
}

BootstrapResult bootstrap_scores(const Collapsed& c, const double* s0, const BootstrapOptions& opt,
                                 const std::int64_t* given_counts) {
  const index_t n = c.n;
  const std::int64_t B = opt.replicates;
  const size_t U = c.unit_count.size(), P = c.a.size();
  BootstrapResult res;
  res.scores.assign(static_cast<size_t>(B) * n, 0.0);
  res.n_iter.assign(static_cast<size_t>(B), 0);
  res.converged.assign(static_cast<size_t>(B), 0);
  const PairModel model{opt.gaussian, opt.alpha, opt.beta};
  const bool dense = n <= opt.dense_limit;
  // The shared Hessian at s0 under the full data, factored.
  std::vector<double> F0;
  if (dense) {
    F0.resize(static_cast<size_t>(n) * n);
    hessian(c, model, c.total.data(), c.wins.data(), s0, F0.data());
    if (!cholesky(n, F0.data())) F0.clear();
  }
  const UnitSampler sampler = given_counts ? UnitSampler(Collapsed{}) : UnitSampler(c);
  // Replicates are independent: one per thread (each is far too small to share).
  const int threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(resolve_threads(opt.n_threads, B * static_cast<count_t>(P) + 20000), B)));
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel num_threads(threads)
#endif
  {
    std::vector<std::int64_t> counts(given_counts ? 0 : U);
    std::vector<double> wins(P), total(P);
    DenseScratch scratch(dense ? n : 0, false);
#ifdef PYCOMP_WITH_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (std::int64_t r = 0; r < B; ++r) {
      const std::int64_t* drawn = given_counts ? given_counts + static_cast<size_t>(r) * U : counts.data();
      if (!given_counts) sampler.draw(opt.seed, r, counts.data());
      replicate_weights(c, drawn, wins.data(), total.data());
      double* s = res.scores.data() + static_cast<size_t>(r) * n;
      bool ok = false;
      if (dense) {
        std::copy(s0, s0 + n, s);
        scratch.largest_weight = largest_item_weight(c, total.data(), scratch.y.data());
        res.n_iter[r] = dense_replicate(c, model, wins.data(), total.data(), F0.empty() ? nullptr : F0.data(), opt,
                                        s, scratch, ok);
      } else {
        res.n_iter[r] = sparse_replicate(c, opt, wins.data(), total.data(), s, ok);
      }
      res.converged[r] = ok ? 1 : 0;
    }
  }
  return res;
}

}  // namespace cpu
}  // namespace pycomp
