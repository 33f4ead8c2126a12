// What `vigil ingest`, `vigil worker` and `vigil cluster status` share: the models hash every
// process of a cluster must agree on, joining the registry, and the status command.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigil/cluster/registry.h"
#include "vigil/core/status.h"
#include "vigil/pipeline/engine_config.h"

namespace vigil {

// Hash of every model's name, kind, input size, precision and file bytes (file paths may
// differ between machines; what the model computes may not).
Result<std::string> models_hash(const EngineConfig& config);

// Registers this process (cluster/registry.h); refuses a cluster whose models or shards differ.
// `serves`: the models it lists as its own (a worker's --models; empty: all of the config's).
Result<std::unique_ptr<Registry>> join_cluster(const RedisUrl& url, const EngineConfig& config, const std::string& role,
                                               const std::string& id, const std::string& http, std::function<std::string()> rates,
                                               const std::vector<std::string>& serves = {});

}  // namespace vigil
