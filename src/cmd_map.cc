// `volprep map`: which host ids the container ids get, and why.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/report.h"

namespace volprep {

void setup_map(CLI::App& app, MapOptions& o) {
  setup_source_options(app, o.source);
  app.add_option("ids", o.ids, "Container ids ID[:GID] to translate (GID defaults to ID)");
  app.add_flag("--json", o.json, "Print one JSON object");
}

namespace {

struct Translated {
  std::string container, host;
};

nlohmann::json map_json(const IdMap& map) {
  auto out = nlohmann::json::array();
  for (const auto& e : map.extents())
    out.push_back({{"container", e.container}, {"host", e.host}, {"count", e.count}});
  return out;
}

void print_map(const char* name, const IdMap& map, const std::vector<std::string>& origins) {
  std::printf("%s:\n", name);
  for (size_t i = 0; i < map.extents().size(); ++i) {
    const auto& e = map.extents()[i];
    // The kernel prints /proc/PID/uid_map with "%10u %10u %10u".
    std::printf("%10u %10u %10u", e.container, e.host, e.count);
    if (i < origins.size()) std::printf("    # %s", escape_control(origins[i]).c_str());
    std::printf("\n");
  }
}

}  // namespace

int run_map(const MapOptions& options) {
  MapOptions o = options;
  auto host = open_host_db(o.source);
  auto mapping = resolve_mapping(o.source.remap, *host);
  if (!mapping) return fail(mapping.error());
  const Mapping& m = *mapping;

  std::vector<Translated> ids;
  for (const auto& text : o.ids) {
    auto pair = parse_id_pair(text);
    if (!pair) {
      spdlog::error("\"{}\" is not a container id ID[:GID]", text);
      return kExitUsage;
    }
    auto host_ids = to_host_ids(m, *pair);
    if (!host_ids) return fail(host_ids.error());
    ids.push_back({std::to_string(pair->uid) + ":" + std::to_string(pair->gid),
                   std::to_string(host_ids->uid) + ":" + std::to_string(host_ids->gid)});
  }

  // Remapping off, dockerd's data root is the one it is below: there is no remapped root.
  const auto& data_root = m.data_root || !m.remapping_off ? m.data_root : m.base_data_root;
  if (o.json) {
    nlohmann::json j;
    j["uid_map"] = map_json(m.uid_map);
    j["gid_map"] = map_json(m.gid_map);
    j["source"] = m.source;
    j["data_root"] = data_root ? nlohmann::json(*data_root) : nlohmann::json(nullptr);
    j["warnings"] = nlohmann::json::array();
    for (const auto& f : m.findings) j["warnings"].push_back(f.text());
    if (!o.ids.empty()) {
      j["ids"] = nlohmann::json::array();
      for (const auto& t : ids) j["ids"].push_back({{"container", t.container}, {"host", t.host}});
    }
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  if (!o.ids.empty()) {
    for (const auto& t : ids) std::printf("%s\n", t.host.c_str());
    log_findings(m.findings);
    return kExitOk;
  }
  // Values from daemon.json, passwd and the like: escaped, as every message is.
  std::printf("source: %s\n", escape_control(m.source).c_str());
  for (const auto& d : m.details) std::printf("  %s\n", escape_control(d).c_str());
  print_map("uid_map", m.uid_map, m.uid_origins);
  print_map("gid_map", m.gid_map, m.gid_origins);
  std::printf("data root: %s\n", data_root ? escape_control(*data_root).c_str() : "-");
  if (m.findings.empty()) std::printf("warnings: none\n");
  for (const auto& f : m.findings) std::printf("%s\n", escape_control(f.text()).c_str());
  return kExitOk;
}

}  // namespace volprep
