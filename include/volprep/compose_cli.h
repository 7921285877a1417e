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

// What the CLI runs with, root's environment being no one's business of the CLI's: a fixed
// PATH of system directories, and of `environment` only HOME, DOCKER_HOST, DOCKER_CONTEXT
// and COMPOSE_*. Other variables do not reach its interpolation: the project's .env does.
std::vector<std::string> compose_cli_environment(const std::map<std::string, std::string>& environment);

}  // namespace volprep
