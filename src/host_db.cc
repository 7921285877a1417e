#include "volprep/host_db.h"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

#include "volprep/id_map.h"

namespace volprep {

Result<std::optional<std::string>> read_text_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return config_error("cannot open " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return config_error("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
    if (out.size() > (64u << 20)) {
      ::close(fd);
      return config_error(path + " is larger than 64 MiB; refusing to read it");
    }
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
}

namespace {

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = line.find(sep, start);
    out.push_back(line.substr(start, pos == std::string::npos ? pos : pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

class FileHostDb final : public HostDb {
 public:
  explicit FileHostDb(std::string root) : root_(std::move(root)) {
    while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  }

  Result<std::optional<PwEntry>> user_by_name(const std::string& name) const override {
    return find_user([&](const PwEntry& e) { return e.name == name; });
  }
  Result<std::optional<PwEntry>> user_by_uid(uint32_t uid) const override {
    return find_user([&](const PwEntry& e) { return e.uid == uid; });
  }
  Result<std::optional<GrEntry>> group_by_name(const std::string& name) const override {
    return find_group([&](const GrEntry& e) { return e.name == name; });
  }
  Result<std::optional<GrEntry>> group_by_gid(uint32_t gid) const override {
    return find_group([&](const GrEntry& e) { return e.gid == gid; });
  }

  Result<std::optional<HostFile>> read(const std::string& host_path) const override {
    auto path = local_path(host_path);
    auto text = read_text_file(path);
    if (!text) return text.error();
    if (!*text) return std::optional<HostFile>();
    return std::optional<HostFile>(HostFile{std::move(**text), path});
  }
  std::string local_path(const std::string& host_path) const override {
    return root_ + (host_path.starts_with('/') ? "" : "/") + host_path;
  }
  bool is_host_root() const override { return true; }

 private:
  // Lines of a colon-separated database, with at least `min_fields` fields.
  template <class Fn>
  Result<bool> scan(const std::string& host_path, size_t min_fields, Fn&& fn) const {
    auto file = read(host_path);
    if (!file) return file.error();
    if (!*file) return config_error(local_path(host_path) + " does not exist");
    size_t start = 0;
    const std::string& text = (*file)->content;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      std::string line = text.substr(start, nl == std::string::npos ? nl : nl - start);
      start = nl == std::string::npos ? text.size() : nl + 1;
      if (line.empty() || line[0] == '#') continue;
      auto fields = split(line, ':');
      if (fields.size() < min_fields) continue;
      if (fn(fields)) return true;
    }
    return false;
  }

  template <class Pred>
  Result<std::optional<PwEntry>> find_user(Pred&& pred) const {
    std::optional<PwEntry> found;
    auto r = scan("/etc/passwd", 4, [&](const std::vector<std::string>& f) {
      auto uid = parse_u32(f[2]), gid = parse_u32(f[3]);
      if (!uid || !gid) return false;
      PwEntry e{f[0], *uid, *gid, f.size() > 5 ? f[5] : ""};
      if (!pred(e)) return false;
      found = std::move(e);
      return true;
    });
    if (!r) return r.error();
    return found;
  }

  template <class Pred>
  Result<std::optional<GrEntry>> find_group(Pred&& pred) const {
    std::optional<GrEntry> found;
    auto r = scan("/etc/group", 3, [&](const std::vector<std::string>& f) {
      auto gid = parse_u32(f[2]);
      if (!gid) return false;
      GrEntry e{f[0], *gid};
      if (!pred(e)) return false;
      found = std::move(e);
      return true;
    });
    if (!r) return r.error();
    return found;
  }

  std::string root_;
};

class SystemHostDb final : public HostDb {
 public:
  Result<std::optional<PwEntry>> user_by_name(const std::string& name) const override {
    return lookup_pw([&](passwd* pw, char* buf, size_t len, passwd** res) {
      return getpwnam_r(name.c_str(), pw, buf, len, res);
    });
  }
  Result<std::optional<PwEntry>> user_by_uid(uint32_t uid) const override {
    return lookup_pw([&](passwd* pw, char* buf, size_t len, passwd** res) {
      return getpwuid_r(uid, pw, buf, len, res);
    });
  }
  Result<std::optional<GrEntry>> group_by_name(const std::string& name) const override {
    return lookup_gr([&](group* gr, char* buf, size_t len, group** res) {
      return getgrnam_r(name.c_str(), gr, buf, len, res);
    });
  }
  Result<std::optional<GrEntry>> group_by_gid(uint32_t gid) const override {
    return lookup_gr([&](group* gr, char* buf, size_t len, group** res) {
      return getgrgid_r(gid, gr, buf, len, res);
    });
  }
  Result<std::optional<HostFile>> read(const std::string& host_path) const override {
    auto text = read_text_file(host_path);
    if (!text) return text.error();
    if (!*text) return std::optional<HostFile>();
    return std::optional<HostFile>(HostFile{std::move(**text), host_path});
  }
  std::string local_path(const std::string& host_path) const override { return host_path; }
  bool is_host_root() const override { return false; }

 private:
  // getpw*_r wants a caller buffer; grow it on ERANGE as the man page says.
  template <class Fn>
  static Result<std::optional<PwEntry>> lookup_pw(Fn&& fn) {
    std::vector<char> buf(4096);
    for (;;) {
      passwd pw{}, *res = nullptr;
      int rc = fn(&pw, buf.data(), buf.size(), &res);
      if (rc == ERANGE && buf.size() < (1u << 24)) {
        buf.resize(buf.size() * 2);
        continue;
      }
      if (rc != 0 && rc != ENOENT && rc != ESRCH)
        return config_error(std::string("user database lookup failed: ") + std::strerror(rc));
      if (!res) return std::optional<PwEntry>();
      return std::optional<PwEntry>(PwEntry{pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir});
    }
  }
  template <class Fn>
  static Result<std::optional<GrEntry>> lookup_gr(Fn&& fn) {
    std::vector<char> buf(4096);
    for (;;) {
      group gr{}, *res = nullptr;
      int rc = fn(&gr, buf.data(), buf.size(), &res);
      if (rc == ERANGE && buf.size() < (1u << 24)) {
        buf.resize(buf.size() * 2);
        continue;
      }
      if (rc != 0 && rc != ENOENT && rc != ESRCH)
        return config_error(std::string("group database lookup failed: ") + std::strerror(rc));
      if (!res) return std::optional<GrEntry>();
      return std::optional<GrEntry>(GrEntry{gr.gr_name, gr.gr_gid});
    }
  }
};

}  // namespace

std::unique_ptr<HostDb> make_file_host_db(std::string root) {
  return std::make_unique<FileHostDb>(std::move(root));
}
std::unique_ptr<HostDb> make_system_host_db() { return std::make_unique<SystemHostDb>(); }

}  // namespace volprep
