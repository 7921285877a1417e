// The Compose model from a Compose CLI: `docker-compose config` (docker-compose 1, or the
// Compose v2 plugin run on its own) resolves the project exactly as `up` will (extends,
// include, profiles, paths), and its output is read by the built-in reader's model code.
// Only a CLI that root owns, in a directory only root can change, is run.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "volprep/compose.h"

namespace volprep {

// The Compose CLI `choice` names: "auto" (the v2 plugin in Docker's system plugin
// directories, then docker-compose in /usr/local/bin, /usr/bin, /bin), "never", or a path.
// nullopt for auto without any; an error for a named CLI that is missing or unsafe to run.
Result<std::optional<std::string>> find_compose_cli(const std::string& choice);

// The project through `cli`'s `config` output. x-volprep comes from the files themselves
// (docker-compose 1 drops x- keys of a second -f file) when the built-in reader reads them.
Result<ComposeProject> read_compose_via_cli(const std::string& cli, const ComposeOptions& options);

// The project by --compose-cli: through the CLI if there is one, else the built-in reader.
Result<ComposeProject> read_project(const ComposeOptions& options, const std::string& choice);

// Why running `path` would run something a user other than root controls, or "": the file
// and every directory above it (and a script's interpreter) root's, writable by no one else.
// A script run through env is refused: env looks its program up through PATH.
std::string unsafe_executable(const std::string& path);

// What the CLI runs with: the caller's environment, as `docker compose up` would see it (the
// variables the built-in reader interpolates from, over .env), but a fixed PATH of system
// directories and none of the variables that make the dynamic linker, libc or a script's
// interpreter load other code (LD_*, MALLOC_*, PYTHON*, BASH_FUNC_*, BASH_ENV, ENV, TMPDIR,
// GCONV_PATH and the rest of glibc's list for setuid programs, PERL5LIB, NODE_OPTIONS, ...).
std::vector<std::string> compose_cli_environment(const std::map<std::string, std::string>& environment);

}  // namespace volprep
