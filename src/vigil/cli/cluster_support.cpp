#include "vigil/cli/cluster_support.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "vigil/cli/commands.h"
#include "vigil/harvest/checkpoint.h"
#include "vigil/infer/backend.h"

namespace vigil {

Result<std::string> models_hash(const EngineConfig& config) {
  std::string all;
  for (const auto& [name, model] : config.models) {  // a std::map: in name order
    auto sha = file_sha256(model.settings.model_path);  // what the harvest's journal checks models by
    if (!sha.ok()) return Error{sha.error().code, "model " + name + ": " + sha.error().message};
    all += name + "|" + model.kind + "|" + std::to_string(model.settings.input_size) + "|" +
           std::string(to_string(model.settings.precision)) + "|" + *sha + ";";
  }
  return fnv1a_hex(all);
}

Result<std::unique_ptr<Registry>> join_cluster(const RedisUrl& url, const EngineConfig& config, const std::string& role,
                                               const std::string& id, const std::string& http, std::function<std::string()> rates,
                                               const std::vector<std::string>& serves) {
  auto hash = models_hash(config);
  if (!hash.ok()) return hash.error();
  ProcessInfo self;
  self.id = id;
  self.role = role;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) self.host = host;
  self.http = http;
  for (const auto& [name, model] : config.models) {
    if (serves.empty() || std::find(serves.begin(), serves.end(), name) != serves.end()) self.models += (self.models.empty() ? "" : ",") + name;
  }
  self.models_hash = *hash;
  self.shards = config.cluster.shards;
  return Registry::start(url, config.cluster.prefix, std::move(self), std::chrono::milliseconds(1000), std::move(rates));
}

int cluster_status_command(const ClusterStatusOptions& options) {
  auto url = parse_redis_url(options.redis_url);
  if (!url.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", url.error().message.c_str());
    return 2;
  }
  auto conn = RedisConnection::connect(*url, std::chrono::milliseconds(2000));
  if (!conn.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", conn.error().message.c_str());
    return 2;
  }
  auto text = cluster_status(**conn, options.prefix, options.json);
  if (!text.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", text.error().message.c_str());
    return 1;
  }
  std::fputs(text->c_str(), stdout);
  return 0;
}

}  // namespace vigil
