#include "volprep/apply.h"

#include <cerrno>
#include <cstdio>

namespace volprep {
namespace {

// chmod of the entry `name` in `dirfd`, never following a symlink: open it O_PATH|O_NOFOLLOW,
// check it is still the inode that was planned, then chmod through /proc/self/fd (fchmod
// refuses O_PATH descriptors on the kernels we support).
int chmod_entry(int dirfd, const Change& c) {
  if (c.name.empty()) return ::fchmod(dirfd, c.mode) == 0 ? 0 : -errno;
  UniqueFd fd(::openat(dirfd, c.name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return -errno;
  EntryStat now;
  if (int rc = stat_at(fd.get(), "", now); rc < 0) return rc;
  if (!now.same_inode(c.before) || S_ISLNK(now.mode)) return -ESTALE;
  char proc_path[40];
  std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd.get());
  return ::chmod(proc_path, c.mode) == 0 ? 0 : -errno;
}

class RealApplier final : public Applier {
 public:
  void apply(int dirfd, const std::string&, std::span<Change> changes) override {
    for (Change& c : changes) {
      if (c.changes_owner()) {
        int flags = AT_SYMLINK_NOFOLLOW | (c.name.empty() ? AT_EMPTY_PATH : 0);
        if (::fchownat(dirfd, c.name.c_str(), c.uid, c.gid, flags) != 0) {
          c.err = errno;
          c.failed_step = "chown";
          continue;
        }
      }
      if (!S_ISLNK(c.before.mode) && (c.changes_mode() || c.restores_set_id())) {
        if (int rc = chmod_entry(dirfd, c); rc < 0) {
          c.err = -rc;
          c.failed_step = "chmod";
        }
      }
    }
  }
};

class DryRunApplier final : public Applier {
 public:
  explicit DryRunApplier(std::vector<RecordedChange>& out) : out_(out) {}
  void apply(int, const std::string& dir_path, std::span<Change> changes) override {
    for (const Change& c : changes) out_.push_back({join_path(dir_path, c.name), c});
  }

 private:
  std::vector<RecordedChange>& out_;
};

}  // namespace

std::unique_ptr<Applier> make_real_applier() { return std::make_unique<RealApplier>(); }
std::unique_ptr<Applier> make_dry_run_applier(std::vector<RecordedChange>& out) {
  return std::make_unique<DryRunApplier>(out);
}

}  // namespace volprep
