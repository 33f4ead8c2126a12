#include "vigil/identity/agglomerative.h"

#include <cstddef>

namespace vigil {

namespace {

struct Best {
  float similarity = -2;
  std::size_t other = 0;
};

}  // namespace

std::vector<int> cluster_average_linkage(std::span<const Embedding> items, float threshold) {
  const std::size_t n = items.size();
  std::vector<int> labels(n, -1);
  if (n == 0) return labels;
  // sim[i * n + k]: mean similarity between the clusters represented by i and k. A cluster is
  // represented by its lowest index (merging j into i < j keeps that true).
  std::vector<float> sim(n * n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = i + 1; k < n; ++k) sim[i * n + k] = sim[k * n + i] = cosine(items[i], items[k]);
  }
  std::vector<std::size_t> size(n, 1), parent(n);
  std::vector<bool> active(n, true);
  for (std::size_t i = 0; i < n; ++i) parent[i] = i;
  std::vector<Best> best(n);
  const auto refresh = [&](std::size_t i) {
    Best b;
    for (std::size_t k = 0; k < n; ++k) {
      if (k != i && active[k] && sim[i * n + k] > b.similarity) b = {sim[i * n + k], k};
    }
    best[i] = b;
  };
  for (std::size_t i = 0; i < n; ++i) refresh(i);
  for (std::size_t merges = 0; merges + 1 < n; ++merges) {
    std::size_t row = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (active[i] && (row == n || best[i].similarity > best[row].similarity)) row = i;
    }
    if (row == n || best[row].similarity < threshold) break;
    const std::size_t a = row < best[row].other ? row : best[row].other;
    const std::size_t b = row < best[row].other ? best[row].other : row;
    // Lance-Williams for average linkage: the merged cluster's mean similarity to k.
    const float wa = static_cast<float>(size[a]), wb = static_cast<float>(size[b]);
    for (std::size_t k = 0; k < n; ++k) {
      if (!active[k] || k == a || k == b) continue;
      const float s = (wa * sim[a * n + k] + wb * sim[b * n + k]) / (wa + wb);
      sim[a * n + k] = sim[k * n + a] = s;
    }
    active[b] = false;
    parent[b] = a;
    size[a] += size[b];
    refresh(a);
    for (std::size_t k = 0; k < n; ++k) {
      if (!active[k] || k == a) continue;
      if (best[k].other == a || best[k].other == b) {
        refresh(k);
      } else if (sim[k * n + a] > best[k].similarity || (sim[k * n + a] == best[k].similarity && a < best[k].other)) {
        best[k] = {sim[k * n + a], a};
      }
    }
  }
  // Labels in the order of each cluster's first member (its representative).
  int next = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t root = i;
    while (parent[root] != root) root = parent[root];
    if (labels[root] < 0) labels[root] = next++;
    labels[i] = labels[root];
  }
  return labels;
}

}  // namespace vigil
