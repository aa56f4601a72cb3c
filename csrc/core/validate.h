// Input validation shared by every entry point of the core. Each check finds the
// first offending row and throws std::invalid_argument naming the field, the row,
// the value and what was expected (pybind11 turns it into ValueError).
#pragma once

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/common.h"

namespace pycomp {

inline std::string format_double(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

// The first row in [0, m) for which bad(k) holds, or m when none does.
template <class Bad>
count_t first_bad_row(count_t m, Bad&& bad) {
  count_t first = m;
#ifdef PYCOMP_WITH_OPENMP
#pragma omp parallel for schedule(static) reduction(min : first) if (m >= 20000)
#endif
  for (count_t k = 0; k < m; ++k) {
    if (k < first && bad(k)) first = k;
  }
  return first;
}

// "(comparison k, 0-based)": the messages name rows by their 0-based array index.
inline std::string comparison_row(count_t k) { return "(comparison " + std::to_string(k) + ", 0-based)"; }

// The messages of validate_comparisons, shared with the device backends, which find the
// first bad row on the device and then throw the same error.
inline void check_comparison_sizes(count_t m, long long n_items) {
  if (m == 0) throw std::invalid_argument("comparisons are empty: i and j have length 0; give at least one comparison");
  if (n_items < 2) {
    throw std::invalid_argument("n_items = " + std::to_string(n_items) + " but a comparison needs at least 2 items");
  }
  if (n_items > std::numeric_limits<index_t>::max()) {
    throw std::invalid_argument("n_items = " + std::to_string(n_items) + " exceeds the supported maximum of " +
                                std::to_string(std::numeric_limits<index_t>::max()));
  }
}

[[noreturn]] inline void throw_bad_index(const char* field, count_t k, long long value, long long n_items) {
  throw std::invalid_argument(std::string(field) + "[" + std::to_string(k) + "] = " + std::to_string(value) +
                              " is outside [0, n_items=" + std::to_string(n_items) + ") " + comparison_row(k) +
                              ": item indices count from 0");
}

[[noreturn]] inline void throw_self_comparison(count_t k, long long value) {
  throw std::invalid_argument("i[" + std::to_string(k) + "] == j[" + std::to_string(k) + "] = " +
                              std::to_string(value) + ": comparison " + std::to_string(k) +
                              " (0-based) compares item " + std::to_string(value) +
                              " with itself; an item cannot be compared with itself");
}

[[noreturn]] inline void throw_bad_probability(count_t k, double value) {
  throw std::invalid_argument("p[" + std::to_string(k) + "] = " + format_double(value) + " " + comparison_row(k) +
                              " is not a probability: p must be finite and in [0, 1]");
}

[[noreturn]] inline void throw_bad_weight(const char* w_field, count_t k, double value) {
  throw std::invalid_argument(std::string(w_field) + "[" + std::to_string(k) + "] = " + format_double(value) + " " +
                              comparison_row(k) + " is not allowed: " + w_field + " must be finite and >= 0");
}

// Validates m comparisons between n_items items:
//   i, j : [m] indices in [0, n_items), i[k] != j[k]
//   p    : [m] finite, in [0, 1] (may be nullptr)
//   w    : [m] finite, >= 0 (may be nullptr), named w_field in the messages
template <class Index>
void validate_comparisons(const Index* i, const Index* j, const double* p, const double* w, count_t m,
                          long long n_items, const char* w_field = "weights") {
  check_comparison_sizes(m, n_items);
  const Index n = static_cast<Index>(n_items);
  const char* names[2] = {"i", "j"};
  const Index* idx[2] = {i, j};
  for (int f = 0; f < 2; ++f) {
    const Index* a = idx[f];
    const count_t k = first_bad_row(m, [&](count_t r) { return a[r] < 0 || a[r] >= n; });
    if (k < m) throw_bad_index(names[f], k, static_cast<long long>(a[k]), n_items);
  }
  {
    const count_t k = first_bad_row(m, [&](count_t r) { return i[r] == j[r]; });
    if (k < m) throw_self_comparison(k, static_cast<long long>(i[k]));
  }
  if (p) {
    const count_t k = first_bad_row(m, [&](count_t r) { return !(p[r] >= 0.0 && p[r] <= 1.0); });
    if (k < m) throw_bad_probability(k, p[k]);
  }
  if (w) {
    const count_t k = first_bad_row(m, [&](count_t r) { return !(w[r] >= 0.0 && std::isfinite(w[r])); });
    if (k < m) throw_bad_weight(w_field, k, w[k]);
  }
}

}  // namespace pycomp
