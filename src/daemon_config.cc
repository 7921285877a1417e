#include "volprep/daemon_config.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "volprep/fd.h"
#include "volprep/host_db.h"
#include "volprep/id_map.h"

namespace volprep {
namespace {

std::pair<int, int> line_and_column(std::string_view text, size_t byte) {
  int line = 1, col = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

std::vector<std::string> split_nul(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\0', start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// The top-level values of daemon.json, read as SAX events: no document is built, so no
// nesting is too deep, and every error, of whatever kind (syntax, invalid UTF-8, a number out
// of range), arrives in parse_error with its position instead of as an exception.
class TopLevelValues final : public nlohmann::json::json_sax_t {
 public:
  struct Value {
    bool is_string = false;
    std::string text;  // the string, or the JSON type's name
  };
  std::map<std::string, Value> values;  // the last of a repeated key, as Go's decoder keeps
  std::map<std::string, std::vector<std::string>> object_keys;  // of the objects among them
  bool top_is_object = false;
  std::optional<std::pair<size_t, std::string>> error;  // position, message

  bool null() override { return value({false, "null"}); }
  bool boolean(bool) override { return value({false, "boolean"}); }
  bool number_integer(number_integer_t) override { return value({false, "number"}); }
  bool number_unsigned(number_unsigned_t) override { return value({false, "number"}); }
  bool number_float(number_float_t, const string_t&) override { return value({false, "number"}); }
  bool string(string_t& s) override { return value({true, s}); }
  bool binary(binary_t&) override { return value({false, "binary"}); }
  bool start_object(size_t) override {
    if (depth_ == 0) top_is_object = true;
    value({false, "object"});
    ++depth_;
    return true;
  }
  bool start_array(size_t) override {
    value({false, "array"});
    ++depth_;
    return true;
  }
  bool end_object() override { return --depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = k;
    if (depth_ == 2) object_keys[key_].push_back(k);
    return true;
  }
  bool parse_error(size_t position, const std::string&,
                   const nlohmann::json::exception& e) override {
    error = {position, e.what()};
    return false;
  }

 private:
  bool value(Value v) {
    if (depth_ == 1) {
      object_keys.erase(key_);
      values[key_] = std::move(v);
    }
    return true;
  }
  size_t depth_ = 0;
  std::string key_;
};

// "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error ..." and
// "[json.exception.out_of_range.406] number overflow parsing '1e400'" without what
// file:line:col says already.
std::string json_error_text(std::string what) {
  if (what.starts_with('[')) {
    if (auto end = what.find("] "); end != std::string::npos) what.erase(0, end + 2);
  }
  if (what.starts_with("parse error")) {
    if (auto colon = what.find(": "); colon != std::string::npos) what.erase(0, colon + 2);
  }
  return what;
}

// The directives dockerd knows in daemon.json: its flags' names, the names of its named
// options (daemon/config/config.go findConfigurationConflicts: flags.Lookup, opts.NamedOption)
// and skipValidateOptions. Read from cmd/dockerd (daemon/command since 29.0) at the first tag
// of every minor release from v20.10.0 to docker-v29.7.2; 19.03 is read as 20.10.
struct Release {
  int major, minor;
  friend auto operator<=>(const Release&, const Release&) = default;
};
constexpr Release kAlways{0, 0}, kStill{9999, 0};
struct Directives {
  Release since, until;  // known from `since`, unknown from `until`
  const char* names;     // space-separated
};
constexpr Directives kDirectives[] = {
    {kAlways, kStill,
     "add-runtime allow-nondistributable-artifacts authorization-plugin authorization-plugins "
     "bip bridge builder cgroup-parent config-file containerd containerd-namespace "
     "containerd-plugins-namespace cpu-rt-period cpu-rt-runtime cri-containerd data-root debug "
     "default-address-pool default-address-pools default-cgroupns-mode default-gateway "
     "default-gateway-v6 default-ipc-mode default-runtime default-shm-size default-ulimit "
     "default-ulimits deprecated-key-path dns dns-opt dns-opts dns-search exec-opt exec-opts "
     "exec-root experimental features fixed-cidr fixed-cidr-v6 group host host-gateway-ip hosts "
     "icc init init-path insecure-registries insecure-registry ip ip-forward ip-masq ip6tables "
     "iptables ipv6 label labels live-restore log-driver log-level log-opt log-opts "
     "max-concurrent-downloads max-concurrent-uploads max-download-attempts metrics-addr mtu "
     "network-control-plane-mtu network-diagnostic-port no-new-privileges node-generic-resource "
     "node-generic-resources pidfile raw-logs registry-mirror registry-mirrors restart rootless "
     "runtimes seccomp-profile selinux-enabled shutdown-timeout storage-driver storage-opt "
     "storage-opts swarm-default-advertise-addr tls tlscacert tlscert tlskey tlsverify "
     "userland-proxy userland-proxy-path userns-remap version"},
    {kAlways, {23, 0}, "identity"},
    {kAlways, {24, 0}, "cluster-advertise cluster-store cluster-store-opt cluster-store-opts graph"},
    {kAlways, {26, 0}, "oom-score-adjust"},
    {kAlways, {29, 0}, "api-cors-header"},
    {{23, 0}, kStill, "http-proxy https-proxy no-proxy validate"},
    {{24, 0}, kStill, "default-network-opt default-network-opts"},
    {{25, 0}, kStill, "cdi-spec-dir cdi-spec-dirs log-format"},
    {{27, 3}, kStill, "feature"},
    {{28, 0}, kStill, "bip6 host-gateway-ips ip-forward-no-drop"},
    {{28, 2}, kStill, "allow-direct-routing"},
    {{29, 0}, kStill, "bridge-accept-fwmark firewall-backend min-api-version"},
    {{29, 2}, kStill, "nri-opts"},
    {{29, 7}, kStill, "default-stop-timeout"},
};
// Object values dockerd does not flatten into their keys (flatOptions); any other object
// counts its own keys as directives, and not its name.
constexpr Directives kFlatObjects[] = {
    {kAlways, kStill, "cluster-store-opts log-opts runtimes default-ulimits features builder"},
    {{24, 0}, kStill, "default-network-opts"},
    {{29, 2}, kStill, "nri-opts"},
};

// Whether `name` is in the table for `release`; without a release, for any release.
template <size_t N>
bool listed(const Directives (&table)[N], std::string_view name, std::optional<Release> release) {
  for (const auto& d : table) {
    if (release && (*release < d.since || !(*release < d.until))) continue;
    std::string_view names = d.names;
    while (!names.empty()) {
      auto space = names.find(' ');
      if (names.substr(0, space) == name) return true;
      names = space == std::string_view::npos ? std::string_view() : names.substr(space + 1);
    }
  }
  return false;
}

// Where `"key":` first appears, as "line:col"; "1:1" if not found (an escaped key).
std::string key_position(std::string_view text, const std::string& key) {
  std::string quoted = "\"" + key + "\"";
  for (size_t pos = text.find(quoted); pos != std::string_view::npos;
       pos = text.find(quoted, pos + 1)) {
    size_t after = text.find_first_not_of(" \t\r\n", pos + quoted.size());
    if (after != std::string_view::npos && text[after] == ':') {
      auto [line, col] = line_and_column(text, pos);
      return std::to_string(line) + ":" + std::to_string(col);
    }
  }
  return "1:1";
}

}  // namespace

Result<DaemonJson> parse_daemon_json(std::string_view text, const std::string& origin,
                                     const std::optional<DockerVersion>& version) {
  DaemonJson out;
  out.origin = origin;
  std::optional<Release> release;
  if (version) release = Release{version->major, version->minor};
  const bool before_23 = release && *release < Release{23, 0};
  // What dockerd says when it refuses the file, as cmd/dockerd/daemon.go wraps it.
  auto refused = [&](const std::string& where, const std::string& why) {
    return config_error(origin + ":" + where + ": unable to configure the Docker daemon with file " +
                        origin + ": " + why + " (dockerd " +
                        (version ? std::to_string(version->major) + "." +
                                       std::to_string(version->minor)
                                 : std::string("of any release")) +
                        " refuses to start)");
  };
  constexpr std::string_view kBom = "\xef\xbb\xbf";
  // 20.10 hands the bytes to Go's json.Decoder as they are (daemon/config/config.go,
  // getConflictFreeConfiguration); 23.0 drops a byte-order mark and trims whitespace first,
  // and an empty file is then an empty configuration.
  if (before_23 && text.starts_with(kBom))
    return refused("1:1", "invalid character '\xc3\xaf' looking for beginning of value");
  if (!before_23 && text.starts_with(kBom)) text.remove_prefix(kBom.size());
  if (text.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos)
    return before_23 ? refused("1:1", "EOF") : Result<DaemonJson>(out);
  TopLevelValues doc;
  nlohmann::json::sax_parse(text.begin(), text.end(), &doc);
  if (doc.error) {
    auto [line, col] = line_and_column(text, doc.error->first ? doc.error->first - 1 : 0);
    return config_error(origin + ":" + std::to_string(line) + ":" + std::to_string(col) +
                        ": invalid JSON: " + json_error_text(doc.error->second));
  }
  if (!doc.top_is_object) return config_error(origin + ": the top level is not a JSON object");
  // findConfigurationConflicts: every directive, after flattening, must be one dockerd knows.
  // Go lists them in map order; sorted here, so the message is stable.
  std::vector<std::string> unknown;
  for (const auto& [key, value] : doc.values) {
    bool flattened =
        !value.is_string && value.text == "object" && !listed(kFlatObjects, key, release);
    for (const auto& name : flattened ? doc.object_keys[key] : std::vector<std::string>{key})
      if (!listed(kDirectives, name, release)) unknown.push_back(name);
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
    std::string names;
    for (const auto& n : unknown) names += (names.empty() ? "" : ", ") + n;
    return refused(key_position(text, unknown.front()),
                   "the following directives don't match any configuration option: " + names);
  }
  auto string_key = [&](const char* key) -> Result<std::optional<std::string>> {
    auto it = doc.values.find(key);
    if (it == doc.values.end()) return std::optional<std::string>();
    if (!it->second.is_string)
      return config_error(origin + ": \"" + key + "\" must be a string, not " + it->second.text);
    return std::optional<std::string>(it->second.text);
  };
  auto remap = string_key("userns-remap");
  if (!remap) return remap.error();
  out.userns_remap = *remap;
  if (out.userns_remap) {
    auto pos = text.find("\"userns-remap\"");
    out.userns_remap_line = pos == std::string_view::npos ? 0 : line_and_column(text, pos).first;
  }
  auto data_root = string_key("data-root");
  if (!data_root) return data_root.error();
  out.data_root = *data_root;
  // "graph" is the name data-root had before Docker 17.05. 20.10 takes it, unless data-root is
  // there too (getConflictFreeConfiguration); 23.0 refuses it (Validate); 24.0 no longer knows
  // it, which the directive check above refuses.
  if (doc.values.contains("graph")) {
    if (release && !before_23)
      return refused(key_position(text, "graph"),
                     "configuration validation from file failed: the \"graph\" config file "
                     "option is deprecated; use \"data-root\" instead");
    if (before_23 && out.data_root)
      return refused(key_position(text, "graph"),
                     "cannot specify both \"graph\" and \"data-root\" config file options");
  }
  if (!out.data_root) {
    auto graph = string_key("graph");
    if (!graph) return graph.error();
    out.data_root = *graph;
  }
  return out;
}

DockerdFlags parse_dockerd_args(const std::vector<std::string>& args) {
  DockerdFlags flags;
  struct Known {
    const char* name;
    std::optional<std::string> DockerdFlags::*field;
  };
  const Known known[] = {{"--userns-remap", &DockerdFlags::userns_remap},
                         {"--config-file", &DockerdFlags::config_file},
                         {"--data-root", &DockerdFlags::data_root},
                         {"--graph", &DockerdFlags::data_root},
                         {"-g", &DockerdFlags::data_root}};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    for (const auto& k : known) {
      std::string name = k.name;
      if (a == name && i + 1 < args.size()) {
        flags.*k.field = args[++i];
        break;
      }
      if (a.starts_with(name + "=")) {
        flags.*k.field = a.substr(name.size() + 1);
        break;
      }
    }
  }
  return flags;
}

namespace {

// Why the file `st` describes is not a binary that root alone may change; empty if it is.
std::string not_root_only(const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (st.st_uid != 0) return "owned by uid " + std::to_string(st.st_uid) + ", not root";
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return "writable by its group or others";
  return {};
}

// Where a symlink (such as /proc/PID/exe) points; empty if it cannot be read.
std::string link_target(const std::string& link) {
  std::vector<char> buf(PATH_MAX);
  for (;;) {
    ssize_t n = ::readlink(link.c_str(), buf.data(), buf.size());
    if (n < 0) return {};
    if (size_t(n) < buf.size()) return std::string(buf.data(), size_t(n));
    buf.resize(buf.size() * 2);
  }
}

// The fields of the "Uid:" line of /proc/PID/status: real, effective, saved, filesystem.
std::vector<std::string> status_uids(const std::string& status) {
  auto pos = status.find("\nUid:");
  if (pos == std::string::npos) return {};
  auto end = status.find('\n', pos + 1);
  std::string line = status.substr(pos + 5, end == std::string::npos ? end : end - pos - 5);
  std::vector<std::string> out;
  for (size_t i = 0; i < line.size();) {
    while (i < line.size() && (line[i] == '\t' || line[i] == ' ')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != '\t' && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

Result<DockerdProcess> read_dockerd_process(const std::string& proc_root, int pid) {
  std::string dir = proc_root + "/" + std::to_string(pid);
  std::string name = "dockerd (pid " + std::to_string(pid) + ")";
  auto status = read_text_file(dir + "/status");
  if (!status) return status.error();
  if (!*status) return config_error("no process with pid " + std::to_string(pid));
  // A setuid program run under the name dockerd has effective uid 0 but the caller's real uid.
  auto uids = status_uids(**status);
  if (uids.size() < 3 || uids[0] != "0" || uids[1] != "0" || uids[2] != "0")
    return config_error(name + " is not root's: its real, effective and saved uids are " +
                        (uids.size() < 3 ? "unknown" : uids[0] + ", " + uids[1] + ", " + uids[2]));
  DockerdProcess p;
  p.pid = pid;
  p.exe = dir + "/exe";
  // The binary itself, through the link, not a path someone may have replaced since.
  UniqueFd binary(::open(p.exe.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  struct stat st{};
  if (!binary.valid() || ::fstat(binary.get(), &st) != 0)
    return config_error(name + ": cannot open its binary " + p.exe + ": " + std::strerror(errno));
  if (auto why = not_root_only(st); !why.empty())
    return config_error(name + ": its binary " + link_target(p.exe) + " is " + why);
  std::string path = link_target(p.exe);
  if (path.ends_with(" (deleted)")) path.resize(path.size() - 10);  // upgraded while running
  if (path.substr(path.rfind('/') + 1) != "dockerd")
    return config_error(name + ": its binary is " + path + ", not dockerd");

  auto cmdline = read_text_file(dir + "/cmdline");
  if (!cmdline) return cmdline.error();
  if (!*cmdline) return config_error("no process with pid " + std::to_string(pid));
  auto argv = split_nul(**cmdline);
  if (!argv.empty()) p.args.assign(argv.begin() + 1, argv.end());
  return p;
}

Result<DockerdScan> find_dockerd_processes(const std::string& proc_root) {
  DockerdScan out;
  DIR* dir = ::opendir(proc_root.c_str());
  if (!dir) return config_error("cannot list " + proc_root + ": " + std::strerror(errno));
  std::vector<int> pids;
  while (dirent* de = ::readdir(dir)) {
    auto pid = parse_u32(de->d_name);
    if (!pid || *pid > INT32_MAX) continue;
    auto comm = read_text_file(proc_root + "/" + de->d_name + "/comm");
    if (comm && *comm && **comm == "dockerd\n") pids.push_back(int(*pid));
  }
  ::closedir(dir);
  std::sort(pids.begin(), pids.end());
  for (int pid : pids) {
    auto p = read_dockerd_process(proc_root, pid);
    if (p)
      out.trusted.push_back(std::move(*p));
    else if (::access((proc_root + "/" + std::to_string(pid)).c_str(), F_OK) == 0)
      out.ignored.push_back(p.error().message);  // not one that exited meanwhile
  }
  return out;
}

std::optional<DockerVersion> parse_docker_version(std::string_view text) {
  auto pos = text.find("version ");
  if (pos == std::string_view::npos) return std::nullopt;
  text.remove_prefix(pos + 8);
  DockerVersion v;
  int* parts[] = {&v.major, &v.minor, &v.patch};
  size_t i = 0;
  for (int n = 0; n < 3; ++n) {
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start) {
      if (n < 2) return std::nullopt;
      break;
    }
    if (i - start > 9) return std::nullopt;  // std::stoi would throw on overflow
    *parts[n] = std::stoi(std::string(text.substr(start, i - start)));
    if (n == 2) v.has_patch = true;
    if (i >= text.size() || text[i] != '.') break;
    ++i;
  }
  size_t end = text.find_first_of(", \n");
  v.text = std::string(text.substr(0, end));
  return v;
}

std::optional<DockerVersion> docker_version_from_dpkg(std::string_view status) {
  std::string_view package, state, version;
  auto installed_docker = [&]() -> std::optional<DockerVersion> {
    bool docker = package == "docker.io" || package == "docker-ce" || package == "docker-engine";
    if (!docker || !state.ends_with(" installed")) return std::nullopt;
    auto epoch = version.find(':');  // "5:28.0.1-1~debian.12~bookworm"
    auto v = parse_docker_version(
        "version " + std::string(version.substr(epoch == std::string_view::npos ? 0 : epoch + 1)));
    if (v) v->text = std::string(package) + " " + std::string(version);
    return v;
  };
  for (;;) {
    size_t nl = status.find('\n');
    std::string_view line = status.substr(0, nl);
    if (line.empty()) {  // the end of a package's paragraph
      if (auto v = installed_docker()) return v;
      package = state = version = {};
    }
    for (auto [field, out] : {std::pair{"Package: ", &package}, std::pair{"Status: ", &state},
                              std::pair{"Version: ", &version}})
      if (line.starts_with(field)) *out = line.substr(std::string_view(field).size());
    if (nl == std::string_view::npos) return installed_docker();
    status.remove_prefix(nl + 1);
  }
}

namespace {

// Whether `path` is, in this mount namespace, the file `binary` describes, reached only
// through directories root owns that neither group nor others may write.
bool only_root_controls(const std::string& path, const struct stat& binary) {
  char resolved[PATH_MAX];
  if (!path.starts_with('/') || !::realpath(path.c_str(), resolved)) return false;
  struct stat st{};
  if (::stat(resolved, &st) != 0 || st.st_dev != binary.st_dev || st.st_ino != binary.st_ino)
    return false;
  std::string dir = resolved;
  do {
    dir.resize(std::max<size_t>(dir.rfind('/'), 1));
    if (::stat(dir.c_str(), &st) != 0 || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
      return false;
  } while (dir != "/");
  return true;
}

constexpr int kVersionTimeoutMs = 10000;

}  // namespace

std::optional<DockerVersion> docker_version_of(const DockerdProcess& daemon) {
  UniqueFd binary(::open(daemon.exe.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  struct stat st{};
  if (!binary.valid() || ::fstat(binary.get(), &st) != 0 || !not_root_only(st).empty() ||
      !only_root_controls(link_target(daemon.exe), st))
    return std::nullopt;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return std::nullopt;
  UniqueFd out(pipefd[0]), in(pipefd[1]);
  pid_t child = ::fork();
  if (child < 0) return std::nullopt;
  if (child == 0) {
    // Only async-signal-safe calls until exec. The descriptor, not a path, is what runs.
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(null, 0);
    ::dup2(in.get(), 1);
    ::dup2(null, 2);
    const char* argv[] = {"dockerd", "--version", nullptr};
    const char* envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", nullptr};
    ::fexecve(binary.get(), const_cast<char**>(argv), const_cast<char**>(envp));
    ::_exit(127);
  }
  in.reset();
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kVersionTimeoutMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{out.get(), POLLIN, 0};
    int ready = left.count() > 0 ? ::poll(&p, 1, int(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      text.clear();
      break;
    }
    char buf[512];
    ssize_t n = ::read(out.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() > 4096) break;
    text.append(buf, size_t(n));
  }
  // Our child stays ours until reaped, so this never hits another process; it ends one that
  // closed its output but lingers.
  ::kill(child, SIGKILL);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return parse_docker_version(text);
}

}  // namespace volprep
