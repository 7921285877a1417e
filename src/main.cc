// volprep: prepare volume trees for containers that run in a user namespace.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"

namespace {

const char kDescription[] =
    "volprep: prepare volume trees for containers that run in a user namespace.\n"
    "Reads the active remap configuration (Docker's userns-remap, rootless Docker and Podman,\n"
    "a running process, or explicit maps) and tells which host ids container ids get.";

const char kFooter[] =
    "Exit status: 0 success, 1 check found something, 2 usage error, 3 configuration error\n"
    "(bad or missing remap config, unmapped id), 4 some entries failed, 5 refused for safety.\n"
    "See volprep(1).";

void setup_logging(int verbosity) {
  auto logger = spdlog::stderr_color_mt("volprep");
  logger->set_pattern("volprep: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbosity < 0 ? spdlog::level::err
                    : verbosity == 0 ? spdlog::level::warn
                    : verbosity == 1 ? spdlog::level::info
                                     : spdlog::level::debug);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace volprep;
  CLI::App app{kDescription, "volprep"};
  app.footer(kFooter);
  app.set_version_flag("--version", VOLPREP_VERSION);
  app.require_subcommand(1);
  int verbose = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "More log output (repeatable)");
  app.add_flag("-q,--quiet", quiet, "Only errors on stderr");

  MapOptions map_options;
  auto* map = app.add_subcommand("map", "Show the uid/gid maps containers get, or translate container ids");
  map->footer(kFooter);
  setup_map(*map, map_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  setup_logging(quiet ? -1 : verbose);

  if (map->parsed()) return run_map(map_options);
  return kExitUsage;
}
