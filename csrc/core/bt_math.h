// Per-comparison and per-item math of the PoE solvers, shared by the CPU and CUDA
// backends (host/device functions, float64 throughout).
//
// A comparison between items a and b carries `wins` (= w * p, the weight of a
// beating b) and `total` (= w). With d = s_a - s_b its PoE-BT negative log-likelihood is
//   loss(d) = -[wins * log sig(d) + (total - wins) * log sig(-d)],
// whose derivative in d is total * sig(d) - wins and whose second derivative is
// total * sig(d) * sig(-d). The virtual-games prior of an item with score s is the
// same expression with d = s, wins = alpha, total = 2 * alpha.
#pragma once

#include <cmath>
#include <cstring>

#include "core/common.h"

namespace pycomp {
PYCOMP_ISA_BEGIN

// c[0] x^(N-1) + c[1] x^(N-2) + ... + c[N-1], by Horner's rule (fully unrolled: N is a constant).
template <int N>
PYCOMP_HD double horner(double x, const double (&c)[N]) {
  double q = c[0];
#pragma GCC unroll 32
  for (int k = 1; k < N; ++k) q = q * x + c[k];
  return q;
}

// exp(x) for -708 <= x <= 708, accurate to about 1 ulp. On the CPU it is branch-free
// so that loops over entries vectorise, which glibc's exp does not (callgrind, 20k items /
// 200k comparisons, one thread: Newton solve 192M instructions, 221M with glibc's exp;
// 97 Newman sweeps 1.5G, 4.6G with glibc's exp).
PYCOMP_HD double exp_in_range(double x) {
#if defined(__CUDA_ARCH__)
  return exp(x);
#else
  // x = k ln2 + r with |r| <= ln2 / 2. Adding 1.5 * 2^52 rounds x / ln2 to the integer
  // k, which then sits in the low bits of the sum: no libm call, and it vectorises.
  const double shifter = 6755399441055744.0;
  const double shifted = x * 1.4426950408889634 + shifter;
  const double kd = shifted - shifter;
  const double r = (x - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
  // Taylor series of exp(r) to r^13 / 13!: error < 1e-17 on |r| <= ln2 / 2.
  constexpr double kCoefficients[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                      1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
                                      1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5,
                                      1.0,                1.0};
  const double q = horner(r, kCoefficients);
  long long k_bits;
  std::memcpy(&k_bits, &shifted, sizeof k_bits);
  const long long scale_bits = (k_bits - 0x4338000000000000LL + 1023) << 52;  // 2^k
  double scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return q * scale;
#endif
}

// exp(x) for x <= 0; x below -708 returns about 3e-308 instead of underflowing, which
// no caller can tell from 0.
PYCOMP_HD double exp_nonpositive(double x) {
#if defined(__CUDA_ARCH__)
  return exp(x);
#else
  return exp_in_range(x > -708.0 ? x : -708.0);
#endif
}

// log(1 + e) for e in [0, 1], accurate to about 1 ulp and vectorisable (callgrind, 20k/200k:
// one F pass 11.6M instructions, 33.6M with glibc's log1p): with
// z = e / (2 + e) in [0, 1/3], log(1 + e) = 2 atanh(z) = 2 sum_k z^(2k+1) / (2k+1),
// summed to k = 17 (the next term is below 2e-19 relative).
PYCOMP_HD double log1p_unit(double e) {
#if defined(__CUDA_ARCH__)
  return log1p(e);
#else
  const double z = e / (2.0 + e);
  const double w = z * z;
  constexpr double kCoefficients[] = {1.0 / 35.0, 1.0 / 33.0, 1.0 / 31.0, 1.0 / 29.0, 1.0 / 27.0, 1.0 / 25.0,
                                      1.0 / 23.0, 1.0 / 21.0, 1.0 / 19.0, 1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0,
                                      1.0 / 11.0, 1.0 / 9.0,  1.0 / 7.0,  1.0 / 5.0,  1.0 / 3.0,  1.0};
  const double q = horner(w, kCoefficients);
  return 2.0 * z * q;
#endif
}

// sig(d) and sig(-d), computed without overflow for any finite d.
struct Sigmoid {
  double pos;  // sig(d)
  double neg;  // sig(-d) = 1 - sig(d)
};

PYCOMP_HD Sigmoid sigmoid_parts(double d) {
  const double e = exp_nonpositive(-fabs(d));  // in (0, 1]
  const double inv = 1.0 / (1.0 + e);
  const bool nonneg = d >= 0;
  Sigmoid s;
  s.pos = (nonneg ? 1.0 : e) * inv;
  s.neg = (nonneg ? e : 1.0) * inv;
  return s;
}

// Loss, derivative and curvature of one comparison (or prior term) at difference d.
struct BtTerms {
  double loss;
  double grad;  // d loss / d d
  double curv;  // d^2 loss / d d^2
};

// Derivative and curvature given r = exp(-d) (finite, >= 0), without the loss: the
// CPU gradient pass forms r as exp(s_b) * exp(-s_a) from per-item exponentials, so
// that no transcendental function runs per comparison.
//   sig(d) = 1 / (1 + r),  grad = total * sig(d) - wins = ((total - wins) - wins * r) / (1 + r)
PYCOMP_HD BtTerms bt_terms_given_ratio(double r, double wins, double total) {
  const double inv = 1.0 / (1.0 + r);
  BtTerms t;
  t.loss = 0.0;
  t.grad = ((total - wins) - wins * r) * inv;
  t.curv = total * (r * inv) * inv;
  return t;
}

// The same at difference d, with the loss when WithLoss (exp, and log1p for the loss).
template <bool WithLoss>
PYCOMP_HD BtTerms bt_terms(double d, double wins, double total) {
  const double e = exp_nonpositive(-fabs(d));  // in (0, 1]
  const double inv = 1.0 / (1.0 + e);
  const double sig = (d >= 0 ? 1.0 : e) * inv;
  BtTerms t;
  t.grad = total * sig - wins;
  t.curv = total * e * inv * inv;
  // -log sig(d) = log1p(e) - min(d, 0); -log sig(-d) = -log sig(d) + d.
  t.loss = WithLoss ? total * (log1p_unit(e) - (d < 0.0 ? d : 0.0)) + (total - wins) * d : 0.0;
  return t;
}

// Newman's fixed point (2023), in log space: s_a <- s_a + log(A_a / B_a) with
//   A_a = sum wins_a * sig(-d) + alpha * sig(-s_a),  B_a = sum losses_a * sig(d) + alpha * sig(s_a),
// so that B_a - A_a is the gradient of F. One comparison adds `up` to A_a and B_b and
// `down` to B_a and A_b.
struct NewmanTerms {
  double up;    // wins * sig(-d)
  double down;  // (total - wins) * sig(d)
};

PYCOMP_HD NewmanTerms newman_terms(double d, double wins, double total) {
  const Sigmoid s = sigmoid_parts(d);
  NewmanTerms t;
  t.up = wins * s.neg;
  t.down = (total - wins) * s.pos;
  return t;
}

// Hunter's MM (Zermelo) update in log space: s_a <- s_a + log(W_a) - log(E_a), with W_a the
// (constant) win mass of a plus alpha and E_a = sum total * sig(d) + 2 alpha sig(s_a), so
// that E_a - W_a is the gradient of F. One comparison adds total * sig(d) to E_a and
// total * sig(-d) to E_b.
PYCOMP_HD double mm_expected_wins(double d, double total) { return total * sigmoid_parts(d).pos; }

// PoE-Gaussian: loss = 1/2 * total * (d - (p - beta))^2, with total * p = wins.
PYCOMP_HD double gaussian_loss(double d, double wins, double total, double beta) {
  if (total == 0.0) return 0.0;
  const double r = d + beta - wins / total;
  return 0.5 * total * r * r;
}

// Per-item prior of PoE-BT (alpha virtual wins and losses against score 0).
template <bool WithLoss>
PYCOMP_HD BtTerms bt_prior_terms(double s, double alpha) {
  return bt_terms<WithLoss>(s, alpha, 2.0 * alpha);
}

// Newman's step size (host side): halved when the gradient norm grows, restored by 1.25x
// after 8 sweeps in a row that shrink it, kept in [1/1024, 1].
struct NewmanDamping {
  double omega = 1.0;
  double prev_gnorm = INFINITY;
  int shrinking = 0;

  void update(double gnorm) {
    if (gnorm > prev_gnorm) {
      omega = omega * 0.5 > 1.0 / 1024 ? omega * 0.5 : 1.0 / 1024;
      shrinking = 0;
    } else if (++shrinking >= 8 && omega < 1.0) {
      omega = omega * 1.25 < 1.0 ? omega * 1.25 : 1.0;
      shrinking = 0;
    }
    prev_gnorm = gnorm;
  }
};

PYCOMP_ISA_END
}  // namespace pycomp
