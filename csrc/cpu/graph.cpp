// Comparison-graph structure: connected components and, for alpha = 0, whether the
// PoE-BT maximum-likelihood scores exist (strong connectivity of the win graph).
#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/solvers.h"

namespace pycomp {
namespace cpu {
namespace {

index_t find_root(std::vector<index_t>& parent, index_t a) {
  while (parent[a] != a) {
    parent[a] = parent[parent[a]];
    a = parent[a];
  }
  return a;
}

// Directed adjacency in CSR form.
struct Csr {
  std::vector<count_t> start;  // [n + 1]
  std::vector<index_t> target;
};

// Builds the out-arcs (forward = true) or in-arcs of the win graph: a -> b when a has
// positive win mass over b.
Csr win_graph(const Comparisons& c, bool forward) {
  Csr g;
  g.start.assign(static_cast<size_t>(c.n) + 1, 0);
  auto arcs = [&](auto&& emit) {
    with_edge_weights(c, [&](auto ew) {
      for (count_t k = 0; k < c.m; ++k) {
        const double wins = ew.wins(k), total = ew.total(k);
        if (wins > 0) forward ? emit(c.i[k], c.j[k]) : emit(c.j[k], c.i[k]);
        if (total - wins > 0) forward ? emit(c.j[k], c.i[k]) : emit(c.i[k], c.j[k]);
      }
      return 0;
    });
  };
  arcs([&](index_t from, index_t) { ++g.start[from + 1]; });
  for (index_t a = 0; a < c.n; ++a) g.start[a + 1] += g.start[a];
  g.target.resize(static_cast<size_t>(g.start[c.n]));
  std::vector<count_t> fill(g.start.begin(), g.start.end() - 1);
  arcs([&](index_t from, index_t to) { g.target[fill[from]++] = to; });
  return g;
}

// Marks every item reachable from root; returns how many.
index_t reach(const Csr& g, index_t root, std::vector<char>& seen, std::vector<index_t>& stack) {
  index_t count = 0;
  stack.clear();
  stack.push_back(root);
  seen[root] = 1;
  while (!stack.empty()) {
    const index_t a = stack.back();
    stack.pop_back();
    ++count;
    for (count_t e = g.start[a]; e < g.start[a + 1]; ++e) {
      const index_t b = g.target[e];
      if (!seen[b]) {
        seen[b] = 1;
        stack.push_back(b);
      }
    }
  }
  return count;
}

}  // namespace

GraphInfo connected_components(const Comparisons& c) {
  std::vector<index_t> parent(c.n);
  for (index_t a = 0; a < c.n; ++a) parent[a] = a;
  with_edge_weights(c, [&](auto ew) {
    // The parents of comparisons a little ahead are prefetched: on large graphs each
    // lookup would otherwise wait on a cache miss (1M/10M: median 97 and 113 ms, 173 and
    // 143 ms without; wall clock, two alternating runs in separate processes).
    constexpr count_t ahead = 32;
    for (count_t k = 0; k < c.m; ++k) {
      if (k + ahead < c.m) {
        __builtin_prefetch(parent.data() + c.i[k + ahead]);
        __builtin_prefetch(parent.data() + c.j[k + ahead]);
      }
      if (ew.total(k) <= 0) continue;
      index_t ra = find_root(parent, c.i[k]), rb = find_root(parent, c.j[k]);
      if (ra == rb) continue;
      if (ra < rb) std::swap(ra, rb);
      parent[ra] = rb;  // the smaller index becomes the root
    }
    return 0;
  });
  GraphInfo info;
  info.labels.assign(c.n, -1);
  std::vector<index_t> label_of_root(c.n, -1);
  for (index_t a = 0; a < c.n; ++a) {
    const index_t r = find_root(parent, a);
    if (label_of_root[r] < 0) {
      label_of_root[r] = info.n_components++;
      info.sizes.push_back(0);
    }
    info.labels[a] = label_of_root[r];
    ++info.sizes[label_of_root[r]];
  }
  return info;
}

void require_bt_optimum_exists(const Comparisons& c, const GraphInfo& graph) {
  const Csr out = win_graph(c, true);
  const Csr in = win_graph(c, false);
  std::vector<char> seen_out(c.n, 0), seen_in(c.n, 0), root_done(graph.n_components, 0);
  std::vector<index_t> stack;
  for (index_t root = 0; root < c.n; ++root) {
    const index_t comp = graph.labels[root];
    if (root_done[comp]) continue;
    root_done[comp] = 1;
    const index_t size = graph.sizes[comp];
    if (size == 1) continue;
    for (int dir = 0; dir < 2; ++dir) {
      std::vector<char>& seen = dir == 0 ? seen_out : seen_in;
      const index_t reached = reach(dir == 0 ? out : in, root, seen, stack);
      if (reached == size) continue;
      // The reached group has no wins over (dir 0) or no losses to (dir 1) the rest.
      std::vector<index_t> group;
      group.reserve(static_cast<size_t>(reached));
      for (index_t a = root; a < c.n; ++a) {
        if (graph.labels[a] == comp && seen[a]) group.push_back(a);
      }
      const char* direction = dir == 0 ? "never beat" : "never lost to";
      std::ostringstream msg;
      msg << "alpha=0 but the maximum-likelihood scores do not exist: in component " << comp << " (" << size
          << " items), the group of " << reached
          << (reached == 1 ? " item with 0-based item index {" : " items with 0-based item indices {");
      const size_t shown = std::min<size_t>(group.size(), 5);
      for (size_t k = 0; k < shown; ++k) msg << (k ? ", " : "") << group[k];
      if (group.size() > shown) msg << ", ...";
      msg << "} " << direction << " any of the other " << (size - reached)
          << " items of that component, so their scores diverge to " << (dir == 0 ? "-inf" : "+inf")
          << ". Use alpha > 0 (e.g. alpha=1.0, the virtual-games prior) or add comparisons.";
      throw NoOptimum(msg.str(), std::move(group), comp, direction);
    }
  }
}

void center_components(std::vector<double>& scores, const GraphInfo& graph, int n_threads) {
  const index_t n = static_cast<index_t>(scores.size());
  if (graph.n_components == 1) {
    const double mean = for_items(n, n_threads, [&](index_t a) { return ItemTotals{scores[a], 0.0}; }).sum / n;
    for_items(n, n_threads, [&](index_t a) {
      scores[a] -= mean;
      return ItemTotals{};
    });
    return;
  }
  std::vector<double> sum(graph.n_components, 0.0);
  for (index_t a = 0; a < n; ++a) sum[graph.labels[a]] += scores[a];
  for (index_t comp = 0; comp < graph.n_components; ++comp) sum[comp] /= graph.sizes[comp];
  for (index_t a = 0; a < n; ++a) scores[a] -= sum[graph.labels[a]];
}

}  // namespace cpu
}  // namespace pycomp
