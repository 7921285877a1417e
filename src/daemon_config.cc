#include "volprep/daemon_config.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "volprep/host_db.h"
#include "volprep/id_map.h"

extern char** environ;

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
    return true;
  }
  bool parse_error(size_t position, const std::string&,
                   const nlohmann::json::exception& e) override {
    error = {position, e.what()};
    return false;
  }

 private:
  bool value(Value v) {
    if (depth_ == 1) values[key_] = std::move(v);
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

}  // namespace

Result<DaemonJson> parse_daemon_json(std::string_view text, const std::string& origin) {
  DaemonJson out;
  out.origin = origin;
  TopLevelValues doc;
  nlohmann::json::sax_parse(text.begin(), text.end(), &doc);
  if (doc.error) {
    auto [line, col] = line_and_column(text, doc.error->first ? doc.error->first - 1 : 0);
    return config_error(origin + ":" + std::to_string(line) + ":" + std::to_string(col) +
                        ": invalid JSON: " + json_error_text(doc.error->second));
  }
  if (!doc.top_is_object) return config_error(origin + ": the top level is not a JSON object");
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
  if (!out.data_root) {
    // "graph" is the name data-root had before Docker 17.05.
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

Result<DockerdProcess> read_dockerd_process(const std::string& proc_root, int pid) {
  std::string dir = proc_root + "/" + std::to_string(pid);
  auto cmdline = read_text_file(dir + "/cmdline");
  if (!cmdline) return cmdline.error();
  if (!*cmdline) return config_error("no process with pid " + std::to_string(pid));
  DockerdProcess p;
  p.pid = pid;
  auto argv = split_nul(**cmdline);
  if (!argv.empty()) p.args.assign(argv.begin() + 1, argv.end());
  struct stat st{};
  if (::stat(dir.c_str(), &st) == 0) p.uid = st.st_uid;
  p.exe = dir + "/exe";
  if (auto env = read_text_file(dir + "/environ"); env && *env) {
    for (const auto& kv : split_nul(**env)) {
      if (kv.starts_with("XDG_CONFIG_HOME=")) p.xdg_config_home = kv.substr(16);
      if (kv.starts_with("HOME=")) p.home = kv.substr(5);
    }
  }
  return p;
}

Result<std::vector<DockerdProcess>> find_dockerd_processes(const std::string& proc_root) {
  std::vector<DockerdProcess> out;
  DIR* dir = ::opendir(proc_root.c_str());
  if (!dir) return config_error("cannot list " + proc_root + ": " + std::strerror(errno));
  while (dirent* de = ::readdir(dir)) {
    auto pid = parse_u32(de->d_name);
    if (!pid) continue;
    auto comm = read_text_file(proc_root + "/" + de->d_name + "/comm");
    if (!comm || !*comm || **comm != "dockerd\n") continue;
    auto p = read_dockerd_process(proc_root, int(*pid));
    if (p) out.push_back(std::move(*p));  // a process that exited meanwhile is no daemon
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.pid < b.pid; });
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
    if (i >= text.size() || text[i] != '.') break;
    ++i;
  }
  size_t end = text.find_first_of(", \n");
  v.text = std::string(text.substr(0, end));
  return v;
}

std::optional<DockerVersion> docker_version_of(const std::string& binary) {
  if (::access(binary.c_str(), X_OK) != 0) return std::nullopt;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const char* argv[] = {binary.c_str(), "--version", nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipefd[1]);
  std::string out;
  if (rc == 0) {
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0) out.append(buf, size_t(n));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ::close(pipefd[0]);
  return rc == 0 ? parse_docker_version(out) : std::nullopt;
}

}  // namespace volprep
