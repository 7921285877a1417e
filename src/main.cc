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

// A command whose options live in an `Options` struct set up by `Setup` and run by `Run`.
template <class Options, void (*Setup)(CLI::App&, Options&), int (*Run)(const Options&)>
volprep::Runner command(CLI::App& app) {
  auto options = std::make_shared<Options>();
  Setup(app, *options);
  return [options, name = app.get_name()](const volprep::Invocation& how) {
    if constexpr (requires { options->quiet; }) options->quiet = how.quiet;
    // The journal says which command ran, and which way, without parsing the command line.
    if constexpr (requires { options->run.header.command; }) options->run.header.command = name;
    if constexpr (requires { options->run.header.reverse = options->reverse; })
      options->run.header.reverse = options->reverse;
    if constexpr (requires { options->command_line; }) options->command_line = how.command_line;
    return Run(*options);
  };
}

// Every subcommand, in the order --help lists them. A new command is one row here.
using volprep::Command;
const Command kJournalCommands[] = {
    {"list", "Journals with volume, time, entries and status",
     command<volprep::JournalOptions, volprep::setup_journal_list, volprep::run_journal_list>},
    {"show", "A journal's changes, in the dry-run diff format",
     command<volprep::JournalOptions, volprep::setup_journal_show, volprep::run_journal_show>},
};
const Command kCommands[] = {
    {"prepare", "Give a container user a volume tree (the default subcommand)",
     command<volprep::PrepareOptions, volprep::setup_prepare, volprep::run_prepare>},
    {"compose", "Prepare every bind mount of a Compose project for the user its service runs as (an image's USER from the engine: root's, or the --rootless or --podman-rootless user's own)",
     command<volprep::ComposeCmdOptions, volprep::setup_compose, volprep::run_compose>},
    {"shift", "Translate every owner, ACL entry and capability through the map (remap turned on or off)",
     command<volprep::ShiftOptions, volprep::setup_shift, volprep::run_shift>},
    {"migrate-volumes", "Move Docker's named volumes into the remapped root (or back out), shifted",
     command<volprep::MigrateOptions, volprep::setup_migrate, volprep::run_migrate>},
    {"check", "Would a container user get the access it needs?",
     command<volprep::CheckOptions, volprep::setup_check, volprep::run_check>},
    {"rollback", "Undo a run from its journal",
     command<volprep::RollbackOptions, volprep::setup_rollback, volprep::run_rollback>},
    {"journal", "List and show rollback journals", nullptr, kJournalCommands},
    {"map", "Show the uid/gid maps containers get, or translate container ids",
     command<volprep::MapOptions, volprep::setup_map, volprep::run_map>},
    {"mount", "Show a tree to a container's ids through an idmapped bind mount; change no file",
     command<volprep::MountOptions, volprep::setup_mount, volprep::run_mount>},
    {"umount", "Remove an idmapped mount volprep mount made",
     command<volprep::MountOptions, volprep::setup_umount, volprep::run_umount>},
};

// Adds the table's commands to `app`; `runners` gets each leaf's, by its CLI11 subcommand.
void add_commands(CLI::App& app, std::span<const Command> commands,
                  std::vector<std::pair<CLI::App*, volprep::Runner>>& runners) {
  for (const Command& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    if (c.setup) {
      runners.emplace_back(sub, c.setup(*sub));
    } else {
      sub->require_subcommand(1);
      add_commands(*sub, c.subcommands, runners);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace volprep;
  CLI::App app{kDescription, "volprep"};
  app.footer(kFooter);  // the subcommands' too
  app.set_version_flag("--version", VOLPREP_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // -v and -q anywhere on the line
  int verbose = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "More log output (repeatable); every failed entry, not the first 20");
  app.add_flag("-q,--quiet", quiet, "Only errors on stderr");

  std::vector<std::pair<CLI::App*, Runner>> runners;
  add_commands(app, kCommands, runners);

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

  Invocation how;
  how.quiet = quiet;
  for (int i = 0; i < argc; ++i) how.command_line += (i ? " " : "") + std::string(argv[i]);
  for (auto& [sub, run] : runners)
    if (sub->parsed()) return run(how);
  return kExitUsage;
}
