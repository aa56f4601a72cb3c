// The bootstrap of the PoE scores (bootstrap.h).
//
// Draws. A replicate draws `draws` units with replacement, unit u with probability
// unit_count[u] / draws: a multinomial draw, taken as a chain of binomials
// (counts[u] ~ Bin(draws left, unit_count[u] / mass left)), each by Hormann's BTRS
// (transformed rejection with squeeze, 1993) or, below a mean of 10, by inversion.
// Each replicate has its own xoshiro256** stream seeded from (seed, replicate), so
// results do not depend on the thread count or on which thread runs a replicate.
//
// Solves. A replicate's optimum is near the full solution s0 (its weights differ by
// about 1/sqrt(count) per pair), so it starts there. Up to dense_limit items the step is
// a chord step, dir = -H0^-1 g, with H0 the Hessian at s0 under the full data, factored
// once (Cholesky) and shared by all replicates: each step then costs one pass over the
// pairs and two triangular solves. When a chord step does not halve the gradient the
// replicate switches to Newton with its own Hessian, and steps that do not reduce the
// gradient are backtracked on the objective (Armijo). Above dense_limit each replicate
// is solved from scratch by the sparse solvers on its own graph.
#include "cpu/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
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
};

// log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2], the tail of Stirling's series.
double stirling_tail(double k) {
  static const double kSmall[] = {0.0810614667953272,  0.0413406959554092,  0.0276779256849983,
                                  0.02079067210376509, 0.0166446911898211,  0.0138761288230707,
                                  0.0118967099458917,  0.0104112652619720,  0.00925546218271273,
                                  0.00833056343336287};
  if (k <= 9) return kSmall[static_cast<int>(k)];
  const double kp1sq = (k + 1) * (k + 1);
  return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1);
}

// Bin(n, p) for 0 < p <= 1/2 and n p < 10, by inversion of the distribution function.
std::int64_t binomial_inversion(Stream& g, std::int64_t n, double p) {
  const double q = 1.0 - p, ratio = p / q, a = (n + 1) * ratio;
  const double r0 = std::exp(n * std::log1p(-p));
  for (;;) {
    double u = g.uniform(), r = r0;
    std::int64_t x = 0;
    while (u > r && x <= n) {
      u -= r;
      ++x;
      r *= a / x - ratio;
      if (!(r > 0)) break;
    }
    if (x <= n && u <= r) return x;
  }
}

// Bin(n, p) for 0 < p <= 1/2 and n p >= 10, by BTRS (Hormann 1993).
std::int64_t binomial_btrs(Stream& g, std::int64_t n, double p) {
  const double q = 1.0 - p, spq = std::sqrt(n * p * q);
  const double b = 1.15 + 2.53 * spq;
  const double a = -0.0873 + 0.0248 * b + 0.01 * p;
  const double c = n * p + 0.5;
  const double v_r = 0.92 - 4.2 / b;
  const double r = p / q;
  const double alpha = (2.83 + 5.1 / b) * spq;
  const double mode = std::floor((n + 1) * p);
  const double nd = static_cast<double>(n);
  for (;;) {
    const double u = g.uniform() - 0.5;
    double v = g.uniform();
    const double us = 0.5 - std::fabs(u);
    const double k = std::floor((2.0 * a / us + b) * u + c);
    if (k < 0 || k > nd) continue;
    if (us >= 0.07 && v <= v_r) return static_cast<std::int64_t>(k);
    v = std::log(v * alpha / (a / (us * us) + b));
    const double bound = (mode + 0.5) * std::log((mode + 1) / (r * (nd - mode + 1))) +
                         (nd + 1) * std::log((nd - mode + 1) / (nd - k + 1)) +
                         (k + 0.5) * std::log(r * (nd - k + 1) / (k + 1)) + stirling_tail(mode) +
                         stirling_tail(nd - mode) - stirling_tail(k) - stirling_tail(nd - k);
    if (v <= bound) return static_cast<std::int64_t>(k);
  }
}

std::int64_t binomial(Stream& g, std::int64_t n, double p) {
  if (n <= 0 || p <= 0.0) return 0;
  if (p >= 1.0) return n;
  if (p > 0.5) return n - binomial(g, n, 1.0 - p);
  return n * p < 10.0 ? binomial_inversion(g, n, p) : binomial_btrs(g, n, p);
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
    for (size_t k = 0; k < P; ++k) {
      const index_t a = pa[k], b = pb[k];
      const double t = bt_terms_given_ratio(up[b] * down[a], wins[k], total[k]).grad;
      g[a] += t;
      g[b] -= t;
    }
  } else {
    for (size_t k = 0; k < P; ++k) {
      const index_t a = pa[k], b = pb[k];
      const double t = model.pair(s[a] - s[b], wins[k], total[k]).grad;
      g[a] += t;
      g[b] -= t;
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

// In-place Cholesky factor (lower triangle of row-major H); false if not definite.
bool cholesky(index_t n, double* H) {
  for (index_t j = 0; j < n; ++j) {
    double* rj = H + static_cast<size_t>(j) * n;
    double d = rj[j];
    for (index_t k = 0; k < j; ++k) d -= rj[k] * rj[k];
    if (!(d > 0.0)) return false;
    const double l = std::sqrt(d);
    rj[j] = l;
    for (index_t i = j + 1; i < n; ++i) {
      double* ri = H + static_cast<size_t>(i) * n;
      double x = ri[j];
      for (index_t k = 0; k < j; ++k) x -= ri[k] * rj[k];
      ri[j] = x / l;
    }
  }
  return true;
}

// x = -(L L')^-1 g, with y as scratch.
void chol_solve_negative(index_t n, const double* L, const double* g, double* y, double* x) {
  for (index_t i = 0; i < n; ++i) {
    const double* ri = L + static_cast<size_t>(i) * n;
    double v = -g[i];
    for (index_t k = 0; k < i; ++k) v -= ri[k] * y[k];
    y[i] = v / ri[i];
  }
  for (index_t i = n - 1; i >= 0; --i) {
    const double* ri = L + static_cast<size_t>(i) * n;
    const double xi = y[i] / ri[i];
    x[i] = xi;
    for (index_t k = 0; k < i; ++k) y[k] -= ri[k] * xi;
  }
}

struct DenseScratch {
  explicit DenseScratch(index_t n, bool own_factor)
      : g(n), g_new(n), dir(n), y(n), trial(n), up(n), down(n), L(own_factor ? static_cast<size_t>(n) * n : 0) {}
  std::vector<double> g, g_new, dir, y, trial, up, down, L;
};

// Solves one replicate from s (in place) with the shared factor L0 (nullptr: none).
// Returns the iterations; sets converged.
int dense_replicate(const Collapsed& c, const PairModel& model, const double* wins, const double* total,
                    const double* L0, const BootstrapOptions& opt, double* s, DenseScratch& w, bool& converged) {
  const index_t n = c.n;
  bool chord = L0 != nullptr;
  double gn = gradient(c, model, wins, total, s, w.g.data(), w.up.data(), w.down.data());
  double previous = INFINITY;
  int it = 0;
  converged = gn <= opt.tol;
  const int limit = std::max(opt.max_iter, 1);
  while (!converged && it < limit && std::isfinite(gn)) {
    ++it;
    if (chord && gn > 0.5 * previous) chord = false;  // the shared Hessian is too far off
    const double* L = L0;
    if (!chord) {
      if (w.L.empty()) w.L.resize(static_cast<size_t>(n) * n);
      hessian(c, model, total, wins, s, w.L.data());
      if (!cholesky(n, w.L.data())) break;
      L = w.L.data();
    }
    chol_solve_negative(n, L, w.g.data(), w.y.data(), w.dir.data());
    for (index_t x = 0; x < n; ++x) w.trial[x] = s[x] + w.dir[x];
    double gn_new = gradient(c, model, wins, total, w.trial.data(), w.g_new.data(), w.up.data(), w.down.data());
    if (!(gn_new < gn)) {
      if (chord) {  // retry this step as Newton
        chord = false;
        previous = INFINITY;
        continue;
      }
      // Newton step that does not shrink the gradient: Armijo backtracking on F.
      double slope = 0.0;
      for (index_t x = 0; x < n; ++x) slope += w.g[x] * w.dir[x];
      const double f0 = model.objective(c, wins, total, s);
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
    converged = gn <= opt.tol;
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

void draw_unit_counts(const Collapsed& c, std::uint64_t seed, std::int64_t replicate, std::int64_t* counts) {
  Stream g(seed, static_cast<std::uint64_t>(replicate));
  std::int64_t left = c.draws, mass = c.draws;
  const size_t U = c.unit_count.size();
  for (size_t u = 0; u < U; ++u) {
    const std::int64_t size = c.unit_count[u];
    std::int64_t k = 0;
    if (left > 0) k = size >= mass ? left : binomial(g, left, static_cast<double>(size) / static_cast<double>(mass));
    counts[u] = k;
    left -= k;
    mass -= size;
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
  // The shared Hessian at s0 under the full data.
  std::vector<double> L0;
  if (dense) {
    L0.resize(static_cast<size_t>(n) * n);
    hessian(c, model, c.total.data(), c.wins.data(), s0, L0.data());
    if (!cholesky(n, L0.data())) L0.clear();
  }
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
      if (!given_counts) draw_unit_counts(c, opt.seed, r, counts.data());
      replicate_weights(c, drawn, wins.data(), total.data());
      double* s = res.scores.data() + static_cast<size_t>(r) * n;
      bool ok = false;
      if (dense) {
        std::copy(s0, s0 + n, s);
        res.n_iter[r] = dense_replicate(c, model, wins.data(), total.data(), L0.empty() ? nullptr : L0.data(), opt,
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
