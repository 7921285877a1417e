#include "volprep/compose_cli.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "volprep/fd.h"
#include "volprep/volume.h"

namespace volprep {
namespace {

constexpr int kCliTimeoutMs = 60000;

const char* const kPluginDirs[] = {"/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                                   "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins"};
const char* const kBinDirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};

struct Output {
  int status = 0;
  std::string out, err;
};

// Who the CLI runs as: the project directory's owner, with their primary group and no
// supplementary groups, so the kernel decides what it may read (whatever a file names, and
// whenever it is swapped); root for a project root owns.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
};

Credentials owner_credentials(uint32_t owner) {
  if (owner == 0) return {};
  Credentials c{owner, 65534};  // nogroup, for a uid passwd does not know
  passwd pw{}, *found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(owner, &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_gid != 0)
    c.gid = found->pw_gid;
  return c;
}

// Runs argv in `cwd` with `env` as `as`, no stdin, both outputs read to the end, within the
// timeout.
Result<Output> run(const std::vector<std::string>& argv, const std::string& cwd, const std::vector<std::string>& env,
                   Credentials as) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0)
    return config_error(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // What the child says if it cannot start, made before fork (it may only write then).
  const std::string no_cwd = "cannot change to the directory " + cwd + "\n";
  const std::string no_exec = "cannot run " + argv[0] + "\n";
  const std::string no_user = "cannot become uid " + std::to_string(as.uid) + "\n";
  pid_t pid = ::fork();
  if (pid < 0) return config_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) ::_exit(127);
    if (as.uid != 0 && (::setgroups(0, nullptr) < 0 || ::setresgid(as.gid, as.gid, as.gid) < 0 ||
                        ::setresuid(as.uid, as.uid, as.uid) < 0)) {
      (void)!::write(2, no_user.data(), no_user.size());
      ::_exit(127);
    }
    if (::chdir(cwd.c_str()) < 0) {
      (void)!::write(2, no_cwd.data(), no_cwd.size());
      ::_exit(127);
    }
    ::execve(args[0], args.data(), envp.data());
    (void)!::write(2, no_exec.data(), no_exec.size());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  UniqueFd o(out[0]), e(err[0]);
  Output result;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCliTimeoutMs);
  bool open_out = true, open_err = true, timed_out = false;
  while (open_out || open_err) {
    pollfd p[2] = {{open_out ? o.get() : -1, POLLIN, 0}, {open_err ? e.get() : -1, POLLIN, 0}};
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0 || ::poll(p, 2, left) == 0) {
      timed_out = true;
      break;
    }
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (!p[i].revents) continue;
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) (i ? open_err : open_out) = false;
      else (i ? result.err : result.out).append(buf, size_t(n));
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return config_error(argv[0] + " config did not finish within 60 s");
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace

std::string unsafe_executable(const std::string& path) {
  if (auto why = why_not_root_only(path); !why.empty()) return why;
  // A script: its interpreter runs, so it is held to the same rule.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  char head[256] = {};
  if (fd.valid() && ::read(fd.get(), head, sizeof head - 1) > 2 && head[0] == '#' && head[1] == '!') {
    std::string line(head + 2, std::strcspn(head + 2, "\n"));
    size_t start = line.find_first_not_of(" \t");
    std::string interp = start == std::string::npos ? "" : line.substr(start, line.find_first_of(" \t", start) - start);
    if (interp.empty() || interp[0] != '/') return path + ": its interpreter is not an absolute path";
    if (interp.ends_with("/env")) return path + ": its interpreter is env, which finds the program through PATH";
    return why_not_root_only(interp);
  }
  return {};
}

namespace {

// Whether a variable makes the dynamic linker, libc or a script's interpreter load or run
// other code than the CLI's own: root's choice for root's programs, not to be carried into
// what runs as root or as the project directory's owner on their files.
bool loads_code(const std::string& name) {
  // The dynamic linker's, and what glibc drops for a setuid program (ld.so's unsecure list).
  static const char* const kExact[] = {"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN",
                                       "LOCPATH", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR",
                                       "TZDIR",
                                       // A script's interpreter: sh and bash, Python (docker-compose 1), and others.
                                       "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", "CDPATH",
                                       "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYLIB", "RUBYOPT", "NODE_OPTIONS",
                                       "NODE_PATH",
                                       // OpenSSL's config, providers and engines (docker-compose 1
                                       // loads them); git's config (a remote include runs git).
                                       "OPENSSL_CONF", "OPENSSL_MODULES", "OPENSSL_ENGINES", "XDG_CONFIG_HOME"};
  static const char* const kPrefixes[] = {"LD_", "MALLOC_", "PYTHON", "BASH_FUNC_", "GIT_"};
  for (const char* e : kExact)
    if (name == e) return true;
  for (const char* p : kPrefixes)
    if (name.starts_with(p)) return true;
  return false;
}

}  // namespace

std::vector<std::string> compose_cli_environment(const std::map<std::string, std::string>& environment) {
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  for (const auto& [k, v] : environment)
    if (k != "PATH" && !loads_code(k)) env.push_back(k + "=" + v);
  return env;
}

Result<std::optional<std::string>> find_compose_cli(const std::string& choice) {
  if (choice == "never") return std::optional<std::string>();
  if (choice != "auto") {
    if (choice.empty() || choice[0] != '/') return usage_error("--compose-cli " + choice + ": give auto, never, or an absolute path");
    if (::access(choice.c_str(), X_OK) < 0) return usage_error("--compose-cli " + choice + ": " + std::strerror(errno));
    if (auto why = unsafe_executable(choice); !why.empty())
      return Error{kExitRefused, "refusing to run the Compose CLI " + choice + ": " + why};
    return std::optional<std::string>(choice);
  }
  std::vector<std::string> candidates;
  for (const char* d : kPluginDirs) candidates.push_back(std::string(d) + "/docker-compose");
  for (const char* d : kBinDirs) candidates.push_back(std::string(d) + "/docker-compose");
  for (const auto& c : candidates)
    if (::access(c.c_str(), X_OK) == 0 && unsafe_executable(c).empty()) return std::optional<std::string>(c);
  return std::optional<std::string>();
}

Result<ComposeProject> read_compose_via_cli(const std::string& cli, const ComposeOptions& o) {
  // The built-in reader finds the files and the project directory as Compose does; its
  // x-volprep is what the plan uses.
  auto own = read_compose(o);
  // A file it refuses (a symlink, someone else's) is not for the CLI to read as root either;
  // nor one that include:, extends: or env_file: names, which only the CLI reads. Where the
  // built-in reader fails on what it does not read (include:, extends:), they are checked
  // still: the CLI runs only once they pass.
  if (!own && own.error().code == kExitRefused) return own.error();
  uint32_t owner = own ? own->owner : 0;
  std::vector<std::string> control_files = own ? own->control_files : std::vector<std::string>{};
  if (!own) {
    auto checked = check_compose_references(o);
    if (!checked) return checked.error();
    owner = checked->owner;
    control_files = std::move(checked->control_files);
  }
  std::vector<std::string> argv = {cli};
  // The files the built-in reader found, named: docker-compose 1 looks for the default names
  // in the current directory even with --project-directory (Compose v2 looks there), and a
  // hook runs from anywhere. Where the built-in reader failed, the CLI runs in the project
  // directory.
  std::string cwd = o.cwd;
  if (!o.files.empty()) {
    for (const auto& f : o.files) argv.insert(argv.end(), {"-f", f});
  } else if (own) {
    for (const auto& f : own->files) argv.insert(argv.end(), {"-f", f});
  } else if (o.project_directory) {
    cwd = (std::filesystem::path(o.cwd) / *o.project_directory).string();
  }
  if (o.project_directory) argv.insert(argv.end(), {"--project-directory", *o.project_directory});
  if (o.env_file) argv.insert(argv.end(), {"--env-file", *o.env_file});
  argv.push_back("config");
  // As the project directory's owner: what the files name (an env_file: of /etc/shadow, a
  // symlink swapped in after the check) is theirs to read or not, the kernel's to decide.
  auto env = compose_cli_environment(o.environment);
  if (owner != 0) {  // not root's ~/.docker, by HOME or DOCKER_CONFIG
    std::erase_if(env, [](const std::string& e) { return e.starts_with("HOME=") || e.starts_with("DOCKER_CONFIG="); });
    env.push_back("HOME=/nonexistent");
  }
  auto r = run(argv, cwd, env, owner_credentials(owner));
  if (!r) return r.error();
  if (r->status != 0) {
    std::string msg = r->err;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return config_error(cli + " config failed (exit " + std::to_string(r->status) + "): " + msg);
  }
  ComposeOptions resolved = o;
  resolved.files = {cli + " config"};
  resolved.resolved_text = r->out;
  if (own) resolved.project_directory = own->directory;
  else if (!o.project_directory) resolved.project_directory = o.cwd;
  auto project = read_compose(resolved);
  if (!project) return project.error();
  project->control_files = std::move(control_files);
  if (own) {
    project->files = own->files;
    project->name = own->name;
    project->warnings = own->warnings;
    for (auto& s : project->services)
      if (const auto* mine = own->find(s.name)) {
        s.x = mine->x;
        s.loc = mine->loc;
        s.user_loc = mine->user_loc;
        if (s.user == mine->user) s.user_text = mine->user_text;
        // A mount's place in the user's files, not in the CLI's output: one target, one mount.
        for (auto& m : s.mounts)
          for (const auto& theirs : mine->mounts)
            if (theirs.target == m.target && theirs.kind == m.kind) m.loc = theirs.loc;
      }
  }
  return project;
}

Result<ComposeProject> read_project(const ComposeOptions& o, const std::string& choice) {
  auto cli = find_compose_cli(choice);
  if (!cli) return cli.error();
  if (!*cli) return read_compose(o);
  return read_compose_via_cli(**cli, o);
}

}  // namespace volprep
