// volprep: prepare volume trees for containers that run in a user namespace.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/report.h"

namespace {

const char kDescription[] =
    "volprep: prepare volume trees for containers that run in a user namespace.\n"
    "Reads the active remap configuration (Docker's userns-remap, rootless Docker and Podman,\n"
    "a running process, or explicit maps) and tells which host ids container ids get.";

const char kFooter[] =
    "Example (Docker userns-remap with dockremap:500000:65536 in /etc/subuid and /etc/subgid):\n"
    "  volprep map 1000                          # -> 501000:501000\n"
    "  volprep ./jenkins_home --as 1000 --dry-run  # the changes, as a diff\n"
    "  volprep ./jenkins_home --as 1000            # make them\n"
    "Exit status: 0 success, 1 check found something, 2 usage error, 3 configuration error\n"
    "(bad or missing remap config, unmapped id), 4 some entries failed, 5 refused for safety.\n"
    "See volprep(1).";

// Every message reaches the terminal through here, escaped: a PATH, a name or a daemon.json
// value holding a terminal escape or invalid UTF-8 is printed as \x1b, \xff, \n. Paths
// already escaped pass unchanged.
class EscapingSink final : public spdlog::sinks::sink {
 public:
  explicit EscapingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    std::string text = volprep::escape_control(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg escaped = msg;
    escaped.payload = text;
    inner_->log(escaped);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

void setup_logging(int verbosity) {
  auto sink = std::make_shared<EscapingSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("volprep", sink);
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
  app.fallthrough();  // -v and -q anywhere on the line
  int verbose = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "More log output (repeatable)");
  app.add_flag("-q,--quiet", quiet, "Only errors on stderr");

  PrepareOptions prepare_options;
  auto* prepare = app.add_subcommand(
      "prepare", "Give a container user a volume tree (the default subcommand)");
  prepare->footer(kFooter);
  setup_prepare(*prepare, prepare_options);

  CheckOptions check_options;
  auto* check = app.add_subcommand("check", "Would a container user get the access it needs?");
  check->footer(kFooter);
  setup_check(*check, check_options);

  RollbackOptions rollback_options;
  auto* rollback = app.add_subcommand("rollback", "Undo a run from its journal");
  rollback->footer(kFooter);
  setup_rollback(*rollback, rollback_options);

  JournalOptions journal_options;
  auto* journal = app.add_subcommand("journal", "List and show rollback journals");
  journal->require_subcommand(1);
  auto* journal_list = journal->add_subcommand("list", "Journals with volume, time, entries and status");
  setup_journal_list(*journal_list, journal_options);
  auto* journal_show = journal->add_subcommand("show", "A journal's changes, in the dry-run diff format");
  setup_journal_show(*journal_show, journal_options);

  MapOptions map_options;
  auto* map = app.add_subcommand("map", "Show the uid/gid maps containers get, or translate container ids");
  map->footer(kFooter);
  setup_map(*map, map_options);

  // prepare is the default subcommand: `volprep ./jenkins_home --as 1000`.
  std::vector<std::string> args(argv + 1, argv + argc);
  auto first = std::find_if(args.begin(), args.end(), [](const std::string& a) {
    return a != "-q" && a != "--quiet" && a != "--verbose" && !(a.starts_with("-v") &&
           a.find_first_not_of('v', 1) == std::string::npos);
  });
  if (first != args.end() && *first != "-h" && *first != "--help" && *first != "--version") {
    bool is_subcommand = false;
    for (auto* sub : app.get_subcommands({})) is_subcommand |= sub->get_name() == *first;
    if (!is_subcommand) args.insert(first, "prepare");
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed

  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // The message quotes arguments: escaped, as every message is.
    std::fprintf(stderr, "%s\nRun with --help for more information.\n", escape_control(e.what()).c_str());
    return kExitUsage;
  }
  setup_logging(quiet ? -1 : verbose);

  if (map->parsed()) return run_map(map_options);
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  if (prepare->parsed()) {
    prepare_options.quiet = quiet;
    prepare_options.command_line = command_line;
    return run_prepare(prepare_options);
  }
  if (rollback->parsed()) {
    rollback_options.command_line = command_line;
    return run_rollback(rollback_options);
  }
  if (check->parsed()) return run_check(check_options);
  if (journal_list->parsed()) return run_journal_list(journal_options);
  if (journal_show->parsed()) return run_journal_show(journal_options);
  return kExitUsage;
}
