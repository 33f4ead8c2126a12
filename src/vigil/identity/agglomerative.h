// Agglomerative clustering of embeddings (average linkage on cosine similarity), for a
// whole recording at once: `vigil harvest` groups its tracks into people with it.
//
// The two clusters whose mean pairwise similarity is highest merge, until no pair reaches
// `threshold`. Deterministic: ties go to the lowest indices, and clusters are numbered 0, 1,
// ... in the order of their first member, so the same embeddings in the same order always get
// the same labels. O(n^2) memory (n tracks, not faces) and O(n^2) time in practice.
//
// Threading: a pure function.
#pragma once

#include <span>
#include <vector>

#include "vigil/core/face.h"

namespace vigil {

// items: L2-normalised embeddings. Returns one label per item.
std::vector<int> cluster_average_linkage(std::span<const Embedding> items, float threshold);

}  // namespace vigil
