// The Compose model volprep needs: each service's user, its bind mounts (and the files behind
// its secrets and configs), and what x-volprep says of it. Read by the built-in reader (the
// project's files with yaml-cpp: default names, several -f merged, .env and interpolation)
// or from a Compose CLI's `config` output (compose_cli.h); both give this model. Pure: the
// environment comes in as a value, files are read but nothing is changed.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "volprep/error.h"

namespace volprep {

// Where a value came from: "compose.yaml:12:9". Lines and columns count from 1; 0 is unknown.
struct Loc {
  std::string file;
  int line = 0, column = 0;
  std::string str() const;
};

struct ComposeMount {
  enum Kind : uint8_t { kBind, kVolume, kTmpfs, kAnonymous, kSecret, kConfig, kOther } kind = kBind;
  std::string source;  // kBind, kSecret, kConfig: absolute host path; kVolume: the volume's name
  std::string target;  // the path in the container
  bool read_only = false;
  bool create_host_path = true;  // short syntax: the engine creates a missing source
  Loc loc;
  const char* kind_name() const;
};

// x-volprep: a service's own settings.
// Messages quote a value as the file writes it (`*_text`), never as interpolated: a variable
// may hold a secret of the .env file.
struct ComposeExtension {
  std::optional<std::string> as;     // UID[:GID], container ids
  std::string as_text;               // as written
  std::optional<std::string> mode;   // "own" or "acl"
  std::optional<std::string> chmod;
  std::vector<std::string> excludes;
  bool skip = false;
  Loc loc;
};

struct ComposeService {
  std::string name;
  std::optional<std::string> image;
  bool build = false;
  std::optional<std::string> user;
  Loc user_loc;
  std::string user_text;  // user: as written ("" from a Compose CLI's output, which has only values)
  std::vector<std::string> profiles;
  std::map<std::string, std::string> environment;  // only what is set to a value
  std::vector<ComposeMount> mounts;
  std::vector<std::string> volumes_from;
  std::vector<std::string> depends_on;
  std::optional<std::string> userns_mode, network_mode;
  bool privileged = false;
  ComposeExtension x;
  Loc loc;
};

struct ComposeProject {
  std::string name;
  std::string directory;           // absolute
  std::string real_directory;      // resolved (only root's symlinks followed)
  uint32_t owner = 0;              // its owner: the only user besides root whose files are read
  uint32_t dev_major = 0, dev_minor = 0;  // real_directory's device and inode: the journal
  uint64_t ino = 0;                       // tells projects of one name apart by them
  std::vector<std::string> files;  // as read, in merge order
  // Every file read that says what Compose runs: the compose files, .env (or --env-file), and
  // those they name (include:, extends: file:, env_file:, label_file:); resolved (only root's
  // symlinks followed), sorted. A bind source holding one is never changed (compose_plan.h).
  std::vector<std::string> control_files;
  std::vector<ComposeService> services;  // sorted by name
  std::vector<std::string> warnings;     // unset variables, and the like

  const ComposeService* find(const std::string& name) const;
};

struct ComposeOptions {
  std::vector<std::string> files;           // -f; empty: the default names
  std::optional<std::string> project_directory;
  std::optional<std::string> env_file;      // --env-file; default: PROJECT_DIR/.env
  std::string cwd;                          // where relative -f and default names are looked for
  std::map<std::string, std::string> environment;  // the process's
  // A Compose CLI's `config` output: the model already merged and interpolated, read as the
  // one file `files[0]` names (for messages), below `project_directory`.
  std::optional<std::string> resolved_text;
};

// The built-in reader. Errors name the file, line and column. A file is never read through a
// symlink, nor if someone other than root or the project directory's owner owns it
// (kExitRefused).
Result<ComposeProject> read_compose(const ComposeOptions& options);

// What read_compose checks of the files a compose file makes Compose read by name (include:,
// extends: file:, env_file:), and of the steps before: before a Compose CLI reads them.
// kExitRefused names the compose file, line, column and key. A project of only its directory,
// its owner (whom the CLI runs as) and the files read (control_files).
Result<ComposeProject> check_compose_references(const ComposeOptions& options);

// The services a run covers: `names` (default: every service whose profiles are active, as
// COMPOSE_PROFILES says) and what they depend on, as `up` starts them; an unknown name is an
// error. Sorted by name.
Result<std::vector<const ComposeService*>> select_services(const ComposeProject& project,
                                                          const std::vector<std::string>& names,
                                                          const std::map<std::string, std::string>& environment);

// Interpolation as Compose does it: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?err},
// ${VAR?err}, ${VAR:+r}, ${VAR+r}, $$. An unset variable without a default is "" and named in
// `unset`. Errors are the message alone (the caller adds where).
using Variables = std::map<std::string, std::string>;
Result<std::string> interpolate(std::string_view text, const Variables& vars, std::vector<std::string>* unset);

// A .env file: KEY=VALUE lines, `export` allowed, quotes, comments; values interpolated from
// `outer` and the lines before. Errors name file and line.
Result<Variables> parse_env_file(const std::string& text, const std::string& file, const Variables& outer);

// Compose's project name rule for a directory's base name: lower case, [a-z0-9_-] only.
std::string normalize_project_name(std::string_view name);

}  // namespace volprep
