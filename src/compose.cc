// The built-in Compose reader: find the files, read .env, parse each file with yaml-cpp,
// interpolate every value, take what volprep needs from each into a partial service, merge
// the partials in -f order as Compose merges them, and resolve paths against the project
// directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "volprep/compose.h"
#include "volprep/fd.h"
#include "volprep/volume.h"

namespace volprep {

std::string Loc::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

const char* ComposeMount::kind_name() const {
  switch (kind) {
    case kBind: return "bind";
    case kVolume: return "volume";
    case kTmpfs: return "tmpfs";
    case kAnonymous: return "anonymous volume";
    case kSecret: return "secret";
    case kConfig: return "config";
    case kOther: break;
  }
  return "mount";
}

const ComposeService* ComposeProject::find(const std::string& name) const {
  for (const auto& s : services)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFileSize = 16 << 20;

// A compose or .env file, as root reads it for whoever wrote it: found by descriptor, its
// directory resolved as a volume path is (only root's symlinks followed) and the file itself
// never through a symlink; a regular file (never a FIFO or a device someone put in the
// project directory to hang or flood a root process), owned by root or by `owner`, the
// project directory's owner; read whole. A symlink could name /etc/shadow, and the errors
// would quote it.
// `missing` (if given) is set when the file or its directory does not exist; `real` (if
// given) to the file's resolved path once it is read.
Result<std::string> read_small_file(const std::string& path, uint32_t owner, bool* missing = nullptr,
                                    std::string* real = nullptr) {
  fs::path p(path);
  auto dir = resolve_path(p.parent_path().string(), false);
  if (!dir && missing) *missing = dir.error().code == kExitUsage;
  if (!dir) return Error{dir.error().code == kExitRefused ? kExitRefused : kExitConfig, dir.error().message};
  UniqueFd fd(::openat(dir->fd.get(), p.filename().c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW));
  if (!fd.valid() && errno == ELOOP)
    return Error{kExitRefused, path + " is a symlink: refusing to read it (name the file it leads to)"};
  if (!fd.valid() && missing) *missing = errno == ENOENT;
  if (!fd.valid()) return config_error(path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode)) return config_error(path + ": not a regular file");
  if (st.st_uid != 0 && st.st_uid != owner)
    return Error{kExitRefused, path + " is owned by uid " + std::to_string(st.st_uid) +
                                   ", neither root nor the project directory's owner (uid " + std::to_string(owner) +
                                   "): refusing to read it"};
  if (size_t(st.st_size) > kMaxFileSize) return config_error(path + ": larger than 16 MiB");
  std::string text(size_t(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return config_error(path + ": " + std::strerror(errno));
    if (n == 0) break;
    got += size_t(n);
  }
  text.resize(got);
  if (real) *real = dir->real + (dir->real == "/" ? "" : "/") + p.filename().string();
  return text;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string absolute_from(const std::string& base, const std::string& path) {
  fs::path p = path.starts_with('/') ? fs::path(path) : fs::path(base) / path;
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// One file's nodes, with what turns a node into a location.
struct Source {
  std::string file;
  const Variables* vars = nullptr;
  std::vector<std::string>* unset = nullptr;

  Loc at(const YAML::Node& n) const {
    auto m = n.Mark();
    if (m.is_null()) return {file};
    return {file, m.line + 1, m.column + 1};
  }
  Error error(const YAML::Node& n, const std::string& why) const { return config_error(at(n).str() + ": " + why); }

  // A scalar's value, interpolated.
  Result<std::string> scalar(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) return error(n, what + ": expected a string");
    std::vector<std::string> missing;
    auto r = interpolate(n.Scalar(), *vars, &missing);
    if (!r) return error(n, what + ": " + r.error().message);
    for (const auto& v : missing)
      unset->push_back(at(n).str() + ": the variable " + v + " is not set; using \"\"");
    return r;
  }
  Result<bool> boolean(const YAML::Node& n, const std::string& what) const {
    auto s = scalar(n, what);
    if (!s) return s.error();
    std::string v = *s;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "true" || v == "yes" || v == "on" || v == "y") return true;
    if (v == "false" || v == "no" || v == "off" || v == "n") return false;
    return error(n, what + ": expected true or false, found \"" + n.Scalar() + "\"");  // as written: no variable's value
  }
  // A list of strings, or (`single`) one string taken as a list of one.
  Result<std::vector<std::string>> strings(const YAML::Node& n, const std::string& what, bool single = false) const {
    std::vector<std::string> out;
    if (single && n.IsScalar()) {
      auto s = scalar(n, what);
      if (!s) return s.error();
      out.push_back(*s);
      return out;
    }
    if (!n.IsSequence()) return error(n, what + ": expected a list");
    for (const auto& item : n) {
      auto s = scalar(item, what);
      if (!s) return s.error();
      out.push_back(*s);
    }
    return out;
  }
};

// A mapping with YAML merge keys (<<: *anchor) expanded: keys of its own first, then those
// of the merged mappings it does not have.
YAML::Node expand_merges(const YAML::Node& map) {
  if (!map || !map.IsMap() || !map["<<"]) return map;
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& kv : map)
    if (kv.first.Scalar() != "<<") out[kv.first.Scalar()] = kv.second;
  auto take = [&](const YAML::Node& from) {
    YAML::Node expanded = expand_merges(from);
    if (!expanded.IsMap()) return;
    for (const auto& kv : expanded)
      if (!out[kv.first.Scalar()]) out[kv.first.Scalar()] = kv.second;
  };
  const YAML::Node merge = map["<<"];
  if (merge.IsSequence())
    for (const auto& m : merge) take(m);
  else
    take(merge);
  return out;
}

// What one file says of a service; unset fields leave the earlier files' values.
struct PartialService {
  std::string name;
  Loc loc;
  std::optional<std::string> image, user, userns_mode, network_mode, extends;
  Loc user_loc;
  std::string user_text;  // user: as written
  std::optional<bool> build, privileged;
  std::optional<std::vector<std::string>> profiles;
  std::map<std::string, std::optional<std::string>> environment;
  std::vector<ComposeMount> volumes;  // by target, later files replacing earlier ones
  struct Ref {
    std::string name, target;
    bool config;
    Loc loc;
  };
  std::vector<Ref> refs;  // secrets and configs
  std::vector<std::string> volumes_from, depends_on;
  std::map<std::string, YAML::Node> x;  // x-volprep keys
  std::map<std::string, Loc> x_locs;
};

struct PartialFile {
  std::optional<std::string> name;
  std::vector<PartialService> services;
  std::map<std::string, std::pair<std::optional<std::string>, Loc>> secrets, configs;  // name -> file
};

Result<ComposeMount> parse_short_volume(const Source& src, const YAML::Node& n, const std::string& home) {
  auto text = src.scalar(n, "volumes");
  if (!text) return text.error();
  ComposeMount m;
  m.loc = src.at(n);
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t colon = text->find(':', start);
    parts.push_back(text->substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() > 3 || parts[0].empty())
    return src.error(n, "volumes: \"" + n.Scalar() + "\": expected [SOURCE:]TARGET[:MODE]");
  if (parts.size() == 1) {
    m.kind = ComposeMount::kAnonymous;
    m.target = parts[0];
    return m;
  }
  m.source = parts[0];
  m.target = parts[1];
  if (parts.size() == 3) {
    size_t s = 0;
    for (;;) {
      size_t comma = parts[2].find(',', s);
      std::string opt = parts[2].substr(s, comma - s);
      if (opt == "ro") m.read_only = true;
      else if (opt == "rw") m.read_only = false;
      if (comma == std::string::npos) break;
      s = comma + 1;
    }
  }
  if (m.source.starts_with('/') || m.source.starts_with('.') || m.source.starts_with('~')) {
    m.kind = ComposeMount::kBind;
    if (m.source == "~" || m.source.starts_with("~/")) m.source = home + m.source.substr(1);
  } else {
    m.kind = ComposeMount::kVolume;
  }
  return m;
}

Result<ComposeMount> parse_long_volume(const Source& src, const YAML::Node& raw, const std::string& home) {
  YAML::Node n = expand_merges(raw);
  ComposeMount m;
  m.loc = src.at(raw);
  if (!n["type"]) return src.error(raw, "volumes: a long-syntax mount needs type:");
  auto type = src.scalar(n["type"], "type");
  if (!type) return type.error();
  if (n["target"]) {
    auto t = src.scalar(n["target"], "target");
    if (!t) return t.error();
    m.target = *t;
  }
  if (n["source"]) {
    auto s = src.scalar(n["source"], "source");
    if (!s) return s.error();
    m.source = *s;
  }
  if (n["read_only"]) {
    auto ro = src.boolean(n["read_only"], "read_only");
    if (!ro) return ro.error();
    m.read_only = *ro;
  }
  if (*type == "bind") {
    m.kind = ComposeMount::kBind;
    if (m.source.empty()) return src.error(raw, "volumes: a bind mount needs source:");
    if (m.source == "~" || m.source.starts_with("~/")) m.source = home + m.source.substr(1);
    m.create_host_path = false;  // the long syntax creates nothing unless told
    if (n["bind"] && n["bind"]["create_host_path"]) {
      auto c = src.boolean(n["bind"]["create_host_path"], "create_host_path");
      if (!c) return c.error();
      m.create_host_path = *c;
    }
  } else if (*type == "volume") {
    m.kind = m.source.empty() ? ComposeMount::kAnonymous : ComposeMount::kVolume;
  } else if (*type == "tmpfs") {
    m.kind = ComposeMount::kTmpfs;
  } else {
    m.kind = ComposeMount::kOther;
  }
  if (m.target.empty()) return src.error(raw, "volumes: a mount needs target:");
  return m;
}

const std::set<std::string> kExtensionKeys = {"as", "mode", "chmod", "exclude", "skip"};

Result<PartialService> parse_service(const Source& src, const std::string& name, const YAML::Node& raw,
                                     const std::string& home) {
  PartialService s;
  s.name = name;
  s.loc = src.at(raw);
  if (raw.IsNull()) return s;
  if (!raw.IsMap()) return src.error(raw, "service " + name + ": expected a mapping");
  YAML::Node n = expand_merges(raw);
  auto opt_string = [&](const char* key, std::optional<std::string>& out) -> std::optional<Error> {
    if (!n[key]) return std::nullopt;
    if (n[key].IsNull()) {
      out.reset();
      return std::nullopt;
    }
    auto v = src.scalar(n[key], key);
    if (!v) return v.error();
    out = *v;
    return std::nullopt;
  };
  for (const char* key : {"image", "userns_mode", "network_mode"}) {
    std::optional<std::string>& field = std::string_view(key) == "image" ? s.image
                                        : std::string_view(key) == "userns_mode" ? s.userns_mode
                                                                                  : s.network_mode;
    if (auto e = opt_string(key, field)) return *e;
  }
  if (n["user"]) {
    if (auto e = opt_string("user", s.user)) return *e;
    s.user_loc = src.at(n["user"]);
    s.user_text = n["user"].IsScalar() ? n["user"].Scalar() : "";
  }
  if (n["extends"])
    return src.error(n["extends"], "service " + name +
                                       ": extends: is not read by the built-in reader; use a Compose CLI "
                                       "(--compose-cli auto) or write the service out");
  if (n["build"]) s.build = true;
  if (n["privileged"]) {
    auto p = src.boolean(n["privileged"], "privileged");
    if (!p) return p.error();
    s.privileged = *p;
  }
  if (n["profiles"]) {
    auto p = src.strings(n["profiles"], "profiles");
    if (!p) return p.error();
    s.profiles = *p;
  }
  if (const auto env = n["environment"]) {
    if (env.IsMap()) {
      for (const auto& kv : env) {
        if (kv.second.IsNull()) {
          s.environment[kv.first.Scalar()] = std::nullopt;
          continue;
        }
        auto v = src.scalar(kv.second, "environment");
        if (!v) return v.error();
        s.environment[kv.first.Scalar()] = *v;
      }
    } else {
      auto list = src.strings(env, "environment");
      if (!list) return list.error();
      for (const auto& item : *list) {
        auto eq = item.find('=');
        if (eq == std::string::npos) s.environment[item] = std::nullopt;
        else s.environment[item.substr(0, eq)] = item.substr(eq + 1);
      }
    }
  }
  if (const auto vols = n["volumes"]) {
    if (!vols.IsSequence()) return src.error(vols, "service " + name + ": volumes: expected a list");
    for (const auto& v : vols) {
      auto m = v.IsMap() ? parse_long_volume(src, v, home) : parse_short_volume(src, v, home);
      if (!m) return m.error();
      s.volumes.push_back(std::move(*m));
    }
  }
  for (const char* key : {"secrets", "configs"}) {
    const auto list = n[key];
    if (!list) continue;
    if (!list.IsSequence()) return src.error(list, "service " + name + ": " + key + ": expected a list");
    bool config = std::string_view(key) == "configs";
    for (const auto& item : list) {
      PartialService::Ref r{{}, {}, config, src.at(item)};
      if (item.IsMap()) {
        if (!item["source"]) return src.error(item, std::string(key) + ": an entry needs source:");
        auto sname = src.scalar(item["source"], "source");
        if (!sname) return sname.error();
        r.name = *sname;
        if (item["target"]) {
          auto t = src.scalar(item["target"], "target");
          if (!t) return t.error();
          r.target = *t;
        }
      } else {
        auto sname = src.scalar(item, key);
        if (!sname) return sname.error();
        r.name = *sname;
      }
      if (r.target.empty()) r.target = config ? "/" + r.name : "/run/secrets/" + r.name;
      else if (!config && !r.target.starts_with('/')) r.target = "/run/secrets/" + r.target;
      s.refs.push_back(std::move(r));
    }
  }
  if (n["volumes_from"]) {
    auto v = src.strings(n["volumes_from"], "volumes_from");
    if (!v) return v.error();
    s.volumes_from = *v;
  }
  if (const auto deps = n["depends_on"]) {
    if (deps.IsMap()) {
      for (const auto& kv : deps) s.depends_on.push_back(kv.first.Scalar());
    } else {
      auto v = src.strings(deps, "depends_on");
      if (!v) return v.error();
      s.depends_on = *v;
    }
  }
  if (const auto x = n["x-volprep"]) {
    if (!x.IsMap()) return src.error(x, "service " + name + ": x-volprep: expected a mapping");
    for (const auto& kv : x) {
      const std::string key = kv.first.Scalar();
      if (!kExtensionKeys.count(key))
        return src.error(kv.first, "service " + name + ": x-volprep: unknown key \"" + key +
                                       "\" (as, mode, chmod, exclude, skip)");
      s.x[key] = kv.second;
      s.x_locs[key] = src.at(kv.second);
    }
  }
  return s;
}

Result<PartialFile> parse_file(const std::string& path, uint32_t owner, const Variables& vars,
                               std::vector<std::string>& warnings, const std::string& home,
                               const std::optional<std::string>& given) {
  auto text = given ? Result<std::string>(*given) : read_small_file(path, owner);
  if (!text) return text.error();
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::ParserException& e) {
    return config_error(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                        ": malformed YAML: " + e.msg);
  }
  Source src{path, &vars, &warnings};
  PartialFile f;
  if (root.IsNull()) return f;
  if (!root.IsMap()) return src.error(root, "expected a mapping at the top of a compose file");
  try {
    if (root["include"])
      return src.error(root["include"], "include: is not read by the built-in reader; use a Compose CLI "
                                        "(--compose-cli auto)");
    if (root["name"]) {
      auto n = src.scalar(root["name"], "name");
      if (!n) return n.error();
      f.name = *n;
    }
    if (const auto services = root["services"]) {
      if (!services.IsMap()) return src.error(services, "services: expected a mapping");
      for (const auto& kv : services) {
        auto s = parse_service(src, kv.first.Scalar(), kv.second, home);
        if (!s) return s.error();
        f.services.push_back(std::move(*s));
      }
    } else if (!root["version"] && !root["volumes"] && !root["secrets"] && !root["configs"] && !root["networks"]) {
      return src.error(root, "no services: (Compose's version 1 format, services at the top, is not read)");
    }
    for (const char* key : {"secrets", "configs"}) {
      const auto top = root[key];
      if (!top) continue;
      if (!top.IsMap()) return src.error(top, std::string(key) + ": expected a mapping");
      auto& out = std::string_view(key) == "secrets" ? f.secrets : f.configs;
      for (const auto& kv : top) {
        std::optional<std::string> file;
        if (kv.second.IsMap() && kv.second["file"]) {
          auto v = src.scalar(kv.second["file"], "file");
          if (!v) return v.error();
          file = *v;
        }
        out[kv.first.Scalar()] = {file, src.at(kv.second["file"] ? kv.second["file"] : kv.first)};
      }
    }
  } catch (const YAML::Exception& e) {  // a key that is not a scalar, and the like
    return config_error(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                        ": " + e.msg);
  }
  return f;
}

// The files a compose file makes Compose read by name, besides itself: include: (compose
// files, and their env_file:), a service's extends: file:, env_file: and label_file:. The Compose CLI
// reads them as root when volprep hands it the project, so they are held to the rules of a
// compose file and .env (read_small_file) first: a regular file, never a symlink (nor a
// directory reached through another user's), owned by root or the project directory's owner.
// Included and extended files are followed, and theirs checked too. A file that does not
// exist is the CLI's to report (env_file: may be optional). Merge keys (<<: *anchor) are
// expanded as Compose expands them. The check fails closed: a file that cannot be read or
// is not YAML, a value that is not interpolated, or more than 256 files refuse the project.
Result<bool> check_referenced_files(const std::vector<std::string>& files, const std::string& project_dir,
                                    uint32_t owner, const Variables& vars, std::vector<std::string>& read) {
  struct Pending {
    std::string file;
    std::vector<std::string> bases;  // env_file: is relative to the project (main files) or the file
  };
  std::vector<Pending> todo;
  for (const auto& f : files) {
    std::vector<std::string> bases = {project_dir};
    if (std::string dir = fs::path(f).parent_path().string(); dir != project_dir) bases.push_back(dir);
    todo.push_back({f, bases});
  }
  std::set<std::string> seen;
  std::vector<std::string> ignored;
  while (!todo.empty()) {
    Pending at = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(at.file).second) continue;
    if (seen.size() > 256)
      return Error{kExitRefused, at.file + ": more than 256 compose files included or extended: refusing to check "
                                           "them all; nothing changed"};
    std::string real;
    auto text = read_small_file(at.file, owner, nullptr, &real);
    if (!text) return text.error();
    read.push_back(real);
    const std::string here = fs::path(at.file).parent_path().string();
    Source src{at.file, &vars, &ignored};
    // One referenced file: checked, and followed if it is a compose file.
    auto check = [&](const YAML::Node& n, const std::string& key, const std::vector<std::string>& bases,
                     bool compose) -> std::optional<Error> {
      if (!n || !n.IsScalar()) return std::nullopt;
      auto value = src.scalar(n, key);
      if (!value) return value.error();
      if (value->empty()) return std::nullopt;
      for (const auto& base : bases) {
        const std::string path = absolute_from(base, *value);
        bool missing = false;
        std::string real;
        auto t = read_small_file(path, owner, &missing, &real);
        if (missing) continue;
        if (!t)
          return Error{kExitRefused, src.at(n).str() + ": " + key + ": " + t.error().message +
                                         " (the Compose CLI would read it as root); nothing changed"};
        read.push_back(real);
        if (compose) todo.push_back({path, {fs::path(path).parent_path().string()}});
      }
      return std::nullopt;
    };
    auto each = [&](const YAML::Node& n, const std::string& key, const std::vector<std::string>& bases,
                    bool compose) -> std::optional<Error> {
      if (!n) return std::nullopt;
      if (!n.IsSequence()) return check(n, key, bases, compose);
      for (const auto& item : n) {
        const YAML::Node path = item.IsMap() ? expand_merges(item)["path"] : YAML::Node(item);  // env_file: [{path:, required:}]
        if (!path || path.IsSequence()) continue;
        if (auto e = check(path, key, bases, compose)) return e;
      }
      return std::nullopt;
    };
    try {
      YAML::Node root = expand_merges(YAML::Load(*text));
      if (!root.IsMap()) continue;
      if (const auto include = root["include"]; include && include.IsSequence()) {
        for (const auto& listed : include) {
          const YAML::Node item = expand_merges(listed);
          if (!item.IsMap()) {
            if (auto e = check(item, "include", {here}, true)) return *e;
            continue;
          }
          if (auto e = each(item["path"], "include: path", {here}, true)) return *e;
          if (auto e = each(item["env_file"], "include: env_file", {here}, false)) return *e;
        }
      }
      if (const auto services = expand_merges(root["services"]); services && services.IsMap()) {
        for (const auto& kv : services) {
          const auto svc = expand_merges(kv.second);
          if (!svc.IsMap()) continue;
          const std::string name = "service " + kv.first.as<std::string>("") + ": ";
          if (const auto ext = expand_merges(svc["extends"]); ext && ext.IsMap())
            if (auto e = check(ext["file"], name + "extends: file", {here}, true)) return *e;
          if (auto e = each(svc["env_file"], name + "env_file", at.bases, false)) return *e;
          if (auto e = each(svc["label_file"], name + "label_file", at.bases, false)) return *e;  // Compose v2
        }
      }
    } catch (const YAML::Exception& e) {
      return config_error(at.file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": malformed YAML: " + e.msg);
    }
  }
  return true;
}

// Compose's merge of a later file's service into an earlier one's.
void merge_into(PartialService& into, PartialService&& from) {
  auto take = [](auto& a, auto& b) {
    if (b) a = std::move(b);
  };
  take(into.image, from.image);
  if (from.user) {
    into.user = from.user;
    into.user_loc = from.user_loc;
    into.user_text = from.user_text;
  }
  take(into.userns_mode, from.userns_mode);
  take(into.network_mode, from.network_mode);
  take(into.build, from.build);
  take(into.privileged, from.privileged);
  take(into.profiles, from.profiles);
  for (auto& [k, v] : from.environment) into.environment[k] = v;
  for (auto& m : from.volumes) {
    auto same = std::find_if(into.volumes.begin(), into.volumes.end(),
                             [&](const ComposeMount& o) { return o.target == m.target; });
    if (same != into.volumes.end()) *same = std::move(m);
    else into.volumes.push_back(std::move(m));
  }
  for (auto& r : from.refs) {
    auto same = std::find_if(into.refs.begin(), into.refs.end(),
                             [&](const PartialService::Ref& o) { return o.target == r.target; });
    if (same != into.refs.end()) *same = std::move(r);
    else into.refs.push_back(std::move(r));
  }
  for (auto& v : from.volumes_from)
    if (std::find(into.volumes_from.begin(), into.volumes_from.end(), v) == into.volumes_from.end())
      into.volumes_from.push_back(v);
  for (auto& v : from.depends_on)
    if (std::find(into.depends_on.begin(), into.depends_on.end(), v) == into.depends_on.end())
      into.depends_on.push_back(v);
  for (auto& [k, v] : from.x) {
    into.x[k] = v;
    into.x_locs[k] = from.x_locs[k];
  }
}

Result<ComposeExtension> parse_extension(const PartialService& p, const std::map<std::string, Source>& sources) {
  ComposeExtension x;
  for (const auto& entry : p.x) {
    const auto& [key, node] = entry;
    const std::string& name = entry.first;  // a lambda may not capture a structured binding (clang 14)
    const Loc& loc = p.x_locs.at(key);
    const Source& src = sources.at(loc.file);
    auto bad = [&](const std::string& why) { return config_error(loc.str() + ": x-volprep." + name + ": " + why); };
    if (key == "skip") {
      auto v = src.boolean(node, "x-volprep.skip");
      if (!v) return v.error();
      x.skip = *v;
    } else if (key == "exclude") {
      auto v = src.strings(node, "x-volprep.exclude", /*single=*/true);
      if (!v) return v.error();
      x.excludes = *v;
    } else {
      auto v = src.scalar(node, "x-volprep." + key);
      if (!v) return v.error();
      if (key == "mode" && *v != "own" && *v != "acl") return bad("expected own or acl, found \"" + node.Scalar() + "\"");
      (key == "as" ? x.as : key == "mode" ? x.mode : x.chmod) = *v;
      if (key == "as") x.as_text = node.Scalar();
    }
    if (x.loc.line == 0) x.loc = loc;
  }
  return x;
}

// The default files in `dir`: the first of Compose's names, and its override file if any.
std::vector<std::string> default_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const char* name : {"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"})
    if (exists(dir + "/" + name)) {
      out.push_back(dir + "/" + name);
      break;
    }
  if (out.empty()) return out;
  for (const char* name : {"compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml",
                           "docker-compose.override.yml"})
    if (exists(dir + "/" + name)) {
      out.push_back(dir + "/" + name);
      break;
    }
  return out;
}

// read_compose, or (`check_only`) its steps up to the check of the files the Compose CLI would
// read: an empty project when they pass.
Result<ComposeProject> read_compose(const ComposeOptions& o, bool check_only) {
  ComposeProject project;
  const auto& env = o.environment;
  auto getenv = [&](const std::string& k) -> std::string {
    auto it = env.find(k);
    return it == env.end() ? "" : it->second;
  };
  // 1. The files: -f, else COMPOSE_FILE, else the default names in the project directory (or
  // the current one and its parents, as Compose looks).
  std::vector<std::string> files;
  for (const auto& f : o.files) files.push_back(absolute_from(o.cwd, f));
  if (files.empty() && !getenv("COMPOSE_FILE").empty()) {
    std::string list = getenv("COMPOSE_FILE");
    size_t s = 0;
    for (;;) {
      size_t colon = list.find(':', s);
      if (colon > s) files.push_back(absolute_from(o.cwd, list.substr(s, colon - s)));
      if (colon == std::string::npos) break;
      s = colon + 1;
    }
  }
  if (files.empty()) {
    std::string dir = o.project_directory ? absolute_from(o.cwd, *o.project_directory) : o.cwd;
    for (;;) {
      files = default_files(dir);
      if (!files.empty() || o.project_directory || dir == "/") break;
      dir = fs::path(dir).parent_path().string();
    }
    if (files.empty())
      return usage_error("no compose file (compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml) in " +
                         (o.project_directory ? absolute_from(o.cwd, *o.project_directory)
                                              : o.cwd + " or a directory above it") +
                         "; name one with -f");
  }
  for (const auto& f : files)
    if (!exists(f) && !o.resolved_text) return usage_error(f + ": no such compose file");
  project.files = files;
  project.directory = o.project_directory ? absolute_from(o.cwd, *o.project_directory)
                                          : fs::path(files[0]).parent_path().string();
  auto dir = resolve_path(project.directory, false);
  if (!dir) return Error{dir.error().code == kExitRefused ? kExitRefused : kExitConfig,
                         "the project directory: " + dir.error().message};
  if (!S_ISDIR(dir->st.mode)) return config_error(project.directory + ": the project directory is not a directory");
  project.real_directory = dir->real;
  project.owner = dir->st.uid;
  project.dev_major = dir->st.dev_major;
  project.dev_minor = dir->st.dev_minor;
  project.ino = dir->st.ino;

  // 2. The variables: the environment over the project's .env.
  Variables vars = env;
  std::string env_file = o.env_file ? absolute_from(o.cwd, *o.env_file) : project.directory + "/.env";
  std::vector<std::string> ignored;
  if (o.resolved_text) {  // interpolated already: only $$ is left to read as $
    vars.clear();
  } else if (o.env_file || exists(env_file)) {
    std::string real;
    auto text = read_small_file(env_file, project.owner, nullptr, &real);
    if (!text) return text.error();
    project.control_files.push_back(real);
    auto parsed = parse_env_file(*text, env_file, env);
    if (!parsed) return parsed.error();
    for (const auto& [k, v] : *parsed) vars.emplace(k, v);  // the environment wins
  }
  std::string home = vars.count("HOME") ? vars.at("HOME") : "/root";
  if (!o.resolved_text)
    if (auto checked = check_referenced_files(files, project.directory, project.owner, vars, project.control_files);
        !checked)
      return checked.error();
  std::sort(project.control_files.begin(), project.control_files.end());
  project.control_files.erase(std::unique(project.control_files.begin(), project.control_files.end()),
                              project.control_files.end());
  if (check_only) {
    ComposeProject checked;
    checked.directory = project.directory;
    checked.owner = project.owner;
    checked.control_files = std::move(project.control_files);
    return checked;
  }

  // 3. Each file, then the merge in -f order.
  std::map<std::string, Source> sources;
  std::vector<PartialService> merged;
  std::map<std::string, std::pair<std::optional<std::string>, Loc>> secrets, configs;
  std::optional<std::string> name;
  for (const auto& f : files) {
    auto& warnings = o.resolved_text ? ignored : project.warnings;
    auto pf = parse_file(f, project.owner, vars, warnings, home, o.resolved_text);
    if (!pf) return pf.error();
    sources.emplace(f, Source{f, &vars, &warnings});
    if (pf->name) name = pf->name;
    for (auto& [k, v] : pf->secrets) secrets[k] = v;
    for (auto& [k, v] : pf->configs) configs[k] = v;
    for (auto& s : pf->services) {
      auto same = std::find_if(merged.begin(), merged.end(), [&](const PartialService& m) { return m.name == s.name; });
      if (same != merged.end()) merge_into(*same, std::move(s));
      else merged.push_back(std::move(s));
    }
  }
  if (!getenv("COMPOSE_PROJECT_NAME").empty()) project.name = getenv("COMPOSE_PROJECT_NAME");
  else if (vars.count("COMPOSE_PROJECT_NAME") && !vars.at("COMPOSE_PROJECT_NAME").empty())
    project.name = vars.at("COMPOSE_PROJECT_NAME");
  else if (name) project.name = *name;
  else project.name = normalize_project_name(fs::path(project.directory).filename().string());

  // 4. The model: paths absolute, secrets and configs to their files.
  for (auto& p : merged) {
    ComposeService s;
    s.name = p.name;
    s.loc = p.loc;
    s.image = p.image;
    s.build = p.build.value_or(false);
    s.user = p.user;
    s.user_loc = p.user_loc;
    if (!o.resolved_text) s.user_text = p.user_text;  // a CLI's output has the values only
    s.userns_mode = p.userns_mode;
    s.network_mode = p.network_mode;
    s.privileged = p.privileged.value_or(false);
    s.profiles = p.profiles.value_or(std::vector<std::string>{});
    for (const auto& [k, v] : p.environment)
      if (v) s.environment[k] = *v;
      else if (auto it = env.find(k); it != env.end()) s.environment[k] = it->second;
    s.volumes_from = p.volumes_from;
    s.depends_on = p.depends_on;
    for (auto& m : p.volumes) {
      if (m.kind == ComposeMount::kBind) m.source = absolute_from(project.directory, m.source);
      s.mounts.push_back(std::move(m));
    }
    for (const auto& r : p.refs) {
      const auto& table = r.config ? configs : secrets;
      auto it = table.find(r.name);
      if (it == table.end())
        return config_error(r.loc.str() + ": service " + s.name + " uses the " + (r.config ? "config " : "secret ") +
                            r.name + ", which the top-level " + (r.config ? "configs:" : "secrets:") +
                            " does not define");
      if (!it->second.first) continue;  // environment:, external: nothing on the host to prepare
      ComposeMount m;
      m.kind = r.config ? ComposeMount::kConfig : ComposeMount::kSecret;
      m.source = absolute_from(project.directory, *it->second.first);
      m.target = r.target;
      m.read_only = true;
      m.create_host_path = false;
      m.loc = r.loc;
      s.mounts.push_back(std::move(m));
    }
    // In target order: docker-compose 1 sorts the mounts it merges, Compose v2 does not.
    std::stable_sort(s.mounts.begin(), s.mounts.end(),
                     [](const ComposeMount& a, const ComposeMount& b) { return a.target < b.target; });
    auto x = parse_extension(p, sources);
    if (!x) return x.error();
    s.x = std::move(*x);
    project.services.push_back(std::move(s));
  }
  std::sort(project.services.begin(), project.services.end(),
            [](const ComposeService& a, const ComposeService& b) { return a.name < b.name; });
  return project;
}

}  // namespace

Result<ComposeProject> read_compose(const ComposeOptions& o) { return read_compose(o, false); }

Result<ComposeProject> check_compose_references(const ComposeOptions& o) { return read_compose(o, true); }

Result<std::vector<const ComposeService*>> select_services(const ComposeProject& project,
                                                          const std::vector<std::string>& names,
                                                          const std::map<std::string, std::string>& environment) {
  std::set<std::string> active_profiles;
  if (auto it = environment.find("COMPOSE_PROFILES"); it != environment.end()) {
    size_t s = 0;
    const std::string& list = it->second;
    for (;;) {
      size_t comma = list.find(',', s);
      if (comma > s) active_profiles.insert(list.substr(s, comma - s));
      if (comma == std::string::npos) break;
      s = comma + 1;
    }
  }
  std::set<std::string> chosen;
  std::vector<std::string> todo;
  if (names.empty()) {
    for (const auto& s : project.services) {
      bool active = s.profiles.empty() || active_profiles.count("*");
      for (const auto& p : s.profiles) active |= active_profiles.count(p) > 0;
      if (active) todo.push_back(s.name);
    }
  } else {
    for (const auto& n : names) {
      if (!project.find(n))
        return usage_error("no such service: " + n + " (the project " + project.name + " has " +
                           std::to_string(project.services.size()) + ": " + [&] {
                             std::string all;
                             for (const auto& s : project.services) all += (all.empty() ? "" : ", ") + s.name;
                             return all;
                           }() + ")");
      todo.push_back(n);
    }
  }
  // What they depend on starts with them.
  while (!todo.empty()) {
    std::string n = todo.back();
    todo.pop_back();
    if (!chosen.insert(n).second) continue;
    const ComposeService* s = project.find(n);
    if (!s) return config_error(n + ": a service named in depends_on that the project does not define");
    for (const auto& d : s->depends_on) todo.push_back(d);
  }
  std::vector<const ComposeService*> out;
  for (const auto& s : project.services)
    if (chosen.count(s.name)) out.push_back(&s);
  return out;
}

}  // namespace volprep
