// The command line: one options struct and one setup function per subcommand.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "volprep/driver.h"
#include "volprep/journal.h"
#include "volprep/remap.h"
#include "volprep/shift.h"
#include "volprep/volume.h"

namespace CLI {
class App;
}

namespace volprep {

// Where the remap configuration comes from; shared by every subcommand that maps ids.
struct SourceOptions {
  RemapOptions remap;
  std::optional<std::string> host_root;
  std::optional<std::string> docker_version;
};

struct MapOptions {
  SourceOptions source;
  std::vector<std::string> ids;  // ID[:GID]
  bool json = false;
};

// The subcommand table (main.cc): each row a name, a one-line summary, and either a setup
// that adds the command's options and returns how to run it, or subcommands of its own.
// main, --help and the documentation test (which reads --help) all go by it.
struct Invocation {
  bool quiet = false;
  std::string command_line;  // recorded in journals
};
using Runner = std::function<int(const Invocation&)>;
struct Command {
  const char* name;
  const char* summary;
  Runner (*setup)(CLI::App& app) = nullptr;
  std::span<const Command> subcommands = {};
};

// Logs the error and returns its exit status: how a command gives up.
int fail(const Error& error);

// Logs each finding at its own level ("volprep: warning: /etc/subuid:3: ...").
void log_findings(const std::vector<Finding>& findings);

void setup_source_options(CLI::App& app, SourceOptions& options);
// --follow-path-symlinks, for the commands that take a PATH.
void add_follow_path_symlinks(CLI::App& app, bool& follow);
// --unmapped refuse|skip|nobody, for the commands that shift.
void add_unmapped_option(CLI::App& app, std::string& unmapped);
// --threads, for the commands that walk trees.
// --no-wait, for the commands that change trees (run_lock.h).
void add_no_wait_option(CLI::App& app, bool& no_wait);
void add_threads_option(CLI::App& app, unsigned& threads,
                        const char* help = "Worker threads, one request in flight each (default: one per core; "
                                           "64 on network and FUSE filesystems)");
// What every command that runs policies over volumes takes: -n/--dry-run, --check, --json,
// --threads, --journal, --journal-dir, --no-journal (driver.h). `check_help` says what
// --check reports.
void add_run_options(CLI::App& app, DriverOptions& run, const char* check_help);
// What every command that changes trees takes: --exclude, the run options above,
// --cross-filesystems, --allow-system-path, --follow-path-symlinks.
void add_tree_options(CLI::App& app, std::vector<std::string>& excludes, DriverOptions& run, const char* check_help,
                      bool& cross_filesystems, bool& allow_system_path, bool& follow_path_symlinks);
// Warns, before a real run that changes owners, that this process cannot (not root, no CAP_CHOWN).
void warn_if_cannot_chown(const DriverOptions& run);
void setup_map(CLI::App& app, MapOptions& options);
int run_map(const MapOptions& options);

// Fills in what the command line leaves implicit (caller uid, daemon scan) and opens the
// host database the options name.
std::unique_ptr<HostDb> open_host_db(SourceOptions& options);

// The last step of a command that changes trees: one policy run over each volume with the same
// walk settings (`config`), the journals' headers holding the maps and the command line, by
// the driver core (driver.h). Returns the exit status.
int run_policy(const std::vector<const VolumeRoot*>& volumes, const Policy& policy, const RunConfig& config,
               const Mapping& mapping, DriverOptions run, const std::string& command_line);

// "1000" or "1000:1001"; nullopt if malformed.
struct IdPair {
  uint32_t uid = 0, gid = 0;
};
std::optional<IdPair> parse_id_pair(const std::string& text);
// --as UID[:GID]: a usage error otherwise, saying how to find a name's ids.
Result<IdPair> parse_as(const std::string& as);

// The host ids of container ids through a mapping; an unmapped id is a configuration error
// naming the id, the map and where the map came from.
Result<IdPair> to_host_ids(const Mapping& mapping, IdPair container);

// What prepare and check both start with: the active mapping, and the host ids of --as.
struct ResolvedUser {
  Mapping mapping;
  IdPair container, host;
};
Result<ResolvedUser> resolve_user(SourceOptions& source, const std::string& as);

// Every PATH of a command that changes trees, opened and vetted before anything changes:
// system trees refused unless `allow_system_path`, Docker's data roots of `mapping` always.
// Each symlink followed on the way is logged, with what `verb` (e.g. "preparing") applies to.
Result<std::vector<VolumeRoot>> open_tree_volumes(const std::vector<std::string>& paths, const Mapping& mapping,
                                                  bool allow_system_path, bool follow_path_symlinks,
                                                  const char* verb);

// A tree two PATHs of the command would both change, refused (usage): the same tree twice,
// or one PATH below another's root where its walk reaches (on its filesystem, or with
// `cross_filesystems`). `done` says what, as in "it would be shifted twice".
Result<bool> refuse_twice(const std::vector<VolumeRoot>& volumes, bool cross_filesystems, const char* done);

}  // namespace volprep

namespace volprep {

struct PrepareOptions {
  SourceOptions source;
  std::vector<std::string> paths;
  std::string as;                       // UID[:GID], container ids
  std::optional<std::string> chmod;
  std::vector<std::string> excludes;
  DriverOptions run;
  bool cross_filesystems = false;
  bool allow_system_path = false;
  bool follow_path_symlinks = false;
  bool force = false;
  bool quiet = false;
  bool acl = false;                     // grant by ACL, leave owners alone
  std::string acl_perms = "rwX";
  std::string command_line;             // recorded in the journal
};

void setup_prepare(CLI::App& app, PrepareOptions& options);
int run_prepare(const PrepareOptions& options);

}  // namespace volprep

namespace volprep {

struct RollbackOptions {
  std::optional<std::string> journal;   // JOURNAL
  std::optional<std::string> last;      // --last PATH
  std::optional<std::string> project;   // --project NAME: the newest run of a compose project
  std::optional<std::string> project_directory;  // --project-directory DIR: of the project there
  bool follow_path_symlinks = false;    // for --last PATH
  std::string journal_dir = default_journal_dir();
  std::optional<std::string> own_journal;  // --journal FILE: the rollback's own journal
  bool no_journal = false;
  bool force = false;
  bool dry_run = false;
  bool cross_filesystems = false;
  bool json = false;
  unsigned threads = 0;
  bool no_wait = false;  // refuse, not wait, while another run changes a root (run_lock.h)
  std::string command_line;
};
void setup_rollback(CLI::App& app, RollbackOptions& options);
int run_rollback(const RollbackOptions& options);

struct JournalOptions {
  std::string journal_dir = default_journal_dir();
  std::string show;  // journal show JOURNAL
  bool json = false;
};
void setup_journal_list(CLI::App& app, JournalOptions& options);
void setup_journal_show(CLI::App& app, JournalOptions& options);
int run_journal_list(const JournalOptions& options);
int run_journal_show(const JournalOptions& options);

}  // namespace volprep

namespace volprep {

struct CheckOptions {
  SourceOptions source;
  std::vector<std::string> paths;
  std::string as;
  std::vector<std::string> groups;  // supplementary container gids
  std::string need = "rw";
  bool json = false;
  bool all = false;
  bool cross_filesystems = false;
  bool allow_system_path = false;
  bool follow_path_symlinks = false;
  unsigned threads = 0;
};
void setup_check(CLI::App& app, CheckOptions& options);
int run_check(const CheckOptions& options);

}  // namespace volprep

namespace volprep {

struct MountOptions {
  SourceOptions source;
  std::optional<std::string> src, dst;
  std::optional<std::string> as;    // UID[:GID], container ids
  std::optional<std::string> from;  // HOSTUID[:HOSTGID], disk ids
  bool shift = false;
  bool reverse = false;
  bool dry_run = false;
  bool list = false;
  bool allow_system_path = false;
  bool follow_path_symlinks = false;
  bool persist = false;  // a systemd unit mounts it again at boot, before docker.service
  bool force = false;    // umount: also an idmapped mount volprep has no record of
  std::string unit_dir = "/etc/systemd/system";
};
void setup_mount(CLI::App& app, MountOptions& options);
void setup_umount(CLI::App& app, MountOptions& options);
int run_mount(const MountOptions& options);
int run_umount(const MountOptions& options);

}  // namespace volprep

namespace volprep {

struct ComposeCmdOptions {
  SourceOptions source;
  std::vector<std::string> files;  // -f
  std::optional<std::string> project_directory, env_file;
  std::vector<std::string> services;
  std::string compose_cli = "auto";  // auto, never, or the CLI's path
  std::vector<std::string> allow_sources;  // --allow-source: besides the project directory
  DriverOptions run;
  bool force = false;
  bool quiet = false;
  std::string command_line;
};
void setup_compose(CLI::App& app, ComposeCmdOptions& options);
int run_compose(const ComposeCmdOptions& options);

}  // namespace volprep

namespace volprep {

struct ShiftOptions {
  SourceOptions source;
  std::vector<std::string> paths;
  bool reverse = false;                 // remapping turned off: host ids back to container ids
  bool keep_setid = false;              // --reverse: keep set-id bits and capabilities becoming root's
  std::string unmapped = "refuse";      // refuse, skip, nobody
  std::vector<std::string> excludes;
  DriverOptions run;
  bool cross_filesystems = false;
  bool allow_system_path = false;
  bool follow_path_symlinks = false;
  bool force = false;                   // shift a tree that reads as shifted already
  bool quiet = false;
  std::string command_line;             // recorded in the journal
};
void setup_shift(CLI::App& app, ShiftOptions& options);
int run_shift(const ShiftOptions& options);

// What shift and migrate-volumes share (cmd_shift.cc). The map as a shift needs it: active
// (or, `reverse`, the one that was), without errors.
Result<Mapping> shift_mapping(SourceOptions& source, bool reverse);
// The map the remap options resolve to, without errors: explicit, active, or off (the way
// back, remapping off and no map named, takes a forward run's from its journal).
Result<Mapping> options_mapping(SourceOptions& source);
// Whether the options name a map themselves, rather than leave it to the active remap.
bool names_map(const RemapOptions& remap);
// The shift through it, ids it cannot translate as --unmapped says (refuse, skip, nobody).
Result<ShiftSpec> shift_spec(const Mapping& mapping, bool reverse, const std::string& unmapped);
// The verdicts of a census, in order: a nested volume, a tree shifted already (`shifted` set;
// refused unless `force`, kExitOk with `check`), ids the map cannot translate. kExitOk, or
// the exit status with the reason logged.
int judge_census(const VolumeRoot& v, const Census& c, const ShiftSpec& spec, bool force, bool check, bool& shifted);

struct MigrateOptions {
  SourceOptions source;
  std::optional<std::string> data_root;  // dockerd's data root, when the source does not say
  std::vector<std::string> volumes;      // --volume NAME: only these
  bool reverse = false;                  // out of the remapped root, shifted back
  bool copy = false;                     // --copy: copied (the original kept) even on one filesystem
  bool keep_setid = false;               // --reverse: keep set-id bits and capabilities becoming root's
  std::string unmapped = "refuse";
  DriverOptions run;
  bool force = false;                    // a dockerd holds the volume store, a second shift
  bool quiet = false;
  std::string command_line;
};
void setup_migrate(CLI::App& app, MigrateOptions& options);
int run_migrate(const MigrateOptions& options);

}  // namespace volprep
