#include "volprep/host_db.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "volprep/fd.h"
#include "volprep/id_map.h"

namespace volprep {

namespace {

constexpr size_t kMaxHostFile = 16u << 20;

const char* file_type_name(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFDIR: return "a directory";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symlink";
    default: return "not a regular file";
  }
}

// Reads the regular file open on `fd`, at most kMaxHostFile bytes. The caller opened it
// O_NONBLOCK, so a FIFO put in a file's place is refused here instead of blocking.
Result<std::optional<std::string>> read_regular_file(const UniqueFd& fd, const std::string& path) {
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0)
    return config_error("cannot stat " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return config_error(path + " is " + file_type_name(st.st_mode) +
                        ", not a regular file; refusing to read it");
  auto too_large = [&] {
    return config_error(path + " is larger than 16 MiB; refusing to read it");
  };
  if (uint64_t(st.st_size) > kMaxHostFile) return too_large();
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return config_error("cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
    // /proc files and files growing meanwhile report no size, or a smaller one.
    if (out.size() > kMaxHostFile) return too_large();
  }
  return std::optional<std::string>(std::move(out));
}

Result<std::optional<std::string>> open_failed(const std::string& path) {
  if (errno == ENOENT) return std::optional<std::string>();
  if (errno == ELOOP)
    return config_error("cannot open " + path + ": it is reached through a symlink, which volprep "
                        "does not follow under --host-root on this kernel");
  return config_error("cannot open " + path + ": " + std::strerror(errno));
}

// Opens `rel` under the directory `root` as if `root` were "/": symlinks resolve inside it
// (openat2 RESOLVE_IN_ROOT), so a host root's "/etc/subuid -> /srv/subuid" reads its own
// /srv/subuid and nothing outside. Without openat2, symlinks are refused.
int open_in_root(int root, const std::string& rel, int flags) {
  open_how how{};
  how.flags = uint64_t(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = openat2_retrying(root, rel.c_str(), &how);
  if (fd >= 0) return int(fd);
  if (errno != ENOSYS && errno != EPERM) return -1;
  fd = open_beneath(root, rel, flags);
  if (fd >= 0) return int(fd);
  errno = int(-fd);
  return -1;
}

constexpr int kHostFileFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

// The path the kernel gives an open descriptor; empty if it cannot be read.
std::string fd_path(int fd) {
  std::vector<char> buf(PATH_MAX + 1);
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf.data(), buf.size());
  if (n < 0 || size_t(n) >= buf.size()) return {};
  return std::string(buf.data(), size_t(n));
}

// What a directory opened as O_PATH resolved to, or nullopt if `fd` failed with ENOENT.
Result<std::optional<std::string>> resolved_dir(int fd, const std::string& shown) {
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    if (errno == ENOTDIR)
      return config_error("the data root " + shown + " is not a directory");
    return config_error("cannot resolve " + shown + ": " + std::strerror(errno));
  }
  UniqueFd owned(fd);
  std::string path = fd_path(fd);
  if (path.empty()) return config_error("cannot resolve " + shown + ": " + std::strerror(errno));
  return std::optional<std::string>(path);
}

}  // namespace

Result<std::optional<std::string>> read_text_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), kHostFileFlags | O_CLOEXEC));
  if (!fd.valid()) return open_failed(path);
  return read_regular_file(fd, path);
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
    UniqueFd root(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid())
      return config_error("cannot open the host root " + root_ + ": " + std::strerror(errno));
    size_t skip = host_path.find_first_not_of('/');
    std::string rel = skip == std::string::npos ? "." : host_path.substr(skip);
    UniqueFd fd(open_in_root(root.get(), rel, kHostFileFlags));
    auto text = fd.valid() ? read_regular_file(fd, path) : open_failed(path);
    if (!text) return text.error();
    if (!*text) return std::optional<HostFile>();
    return std::optional<HostFile>(HostFile{std::move(**text), path});
  }
  Result<std::optional<std::string>> resolve_dir(const std::string& host_path) const override {
    UniqueFd root(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid())
      return config_error("cannot open the host root " + root_ + ": " + std::strerror(errno));
    std::string root_real = fd_path(root.get());
    size_t skip = host_path.find_first_not_of('/');
    std::string rel = skip == std::string::npos ? "." : host_path.substr(skip);
    auto real = resolved_dir(open_in_root(root.get(), rel, O_PATH | O_DIRECTORY),
                             local_path(host_path));
    if (!real || !*real) return real;
    // Back to the host's view: the part below the host root.
    std::string inside = **real == root_real ? "/" : **real;
    if (root_real != "/" && inside != "/") {
      if (!inside.starts_with(root_real + "/"))
        return config_error("cannot resolve " + local_path(host_path) + ": it leads out of " + root_);
      inside = inside.substr(root_real.size());
    }
    return std::optional<std::string>(inside);
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
  Result<std::optional<std::string>> resolve_dir(const std::string& host_path) const override {
    return resolved_dir(::open(host_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), host_path);
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
