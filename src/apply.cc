#include "volprep/apply.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "volprep/journal.h"

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
  bool apply(const SharedFd& dir, const std::string& dir_path, std::span<Change> changes,
             ChangeSink& sink) override {
    for (Change& c : changes) {
      apply_change(dir->get(), c);
      sink.done(dir_path, c);
    }
    return true;
  }
};

class JournalingApplier final : public Applier {
 public:
  explicit JournalingApplier(JournalWriter& journal) : journal_(journal) {}

  bool apply(const SharedFd& dir, const std::string& dir_path, std::span<Change> changes,
             ChangeSink& sink) override {
    if (failed_) return false;
    Pending p;
    p.dir = dir;
    p.dir_path = dir_path;
    p.changes.assign(changes.begin(), changes.end());
    // The directory once, then each entry by name: records stay small however deep the tree.
    records_ += frame('D', encode_directory(dir_path));
    for (const Change& c : p.changes) records_ += frame('C', encode_record(record_of(c.name, c)));
    count_ += p.changes.size();
    pending_.push_back(std::move(p));
    // One fdatasync covers many directories; a batch holds each one's descriptor open.
    if (count_ >= kBatchChanges || pending_.size() >= kBatchDirs) return flush(sink);
    return true;
  }

  bool flush(ChangeSink& sink) override {
    if (failed_) return false;
    if (pending_.empty()) return true;
    if (auto r = journal_.append(records_); !r) {
      error_ = r.error().message;
      failed_ = true;
      pending_.clear();
      return false;
    }
    for (Pending& p : pending_)
      for (Change& c : p.changes) {
        apply_change(p.dir->get(), c);
        sink.done(p.dir_path, c);
      }
    pending_.clear();
    records_.clear();
    count_ = 0;
    return true;
  }

  std::string error() const override { return error_; }

 private:
  static constexpr size_t kBatchChanges = 4096;
  static constexpr size_t kBatchDirs = 512;
  struct Pending {
    SharedFd dir;
    std::string dir_path;
    std::vector<Change> changes;
  };
  JournalWriter& journal_;
  std::vector<Pending> pending_;
  std::string records_;
  size_t count_ = 0;
  bool failed_ = false;
  std::string error_;
};

class DryRunApplier final : public Applier {
 public:
  explicit DryRunApplier(std::vector<RecordedChange>& out) : out_(out) {}
  bool apply(const SharedFd&, const std::string& dir_path, std::span<Change> changes,
             ChangeSink& sink) override {
    for (const Change& c : changes) {
      out_.push_back({join_path(dir_path, c.name), c});
      sink.done(dir_path, c);
    }
    return true;
  }

 private:
  std::vector<RecordedChange>& out_;
};

}  // namespace

int apply_change(int dirfd, Change& c) {
  if (c.changes_owner()) {
    int flags = AT_SYMLINK_NOFOLLOW | (c.name.empty() ? AT_EMPTY_PATH : 0);
    if (::fchownat(dirfd, c.name.c_str(), c.uid, c.gid, flags) != 0) {
      c.err = errno;
      c.failed_step = "chown";
      return c.err;
    }
  }
  if (!S_ISLNK(c.before.mode) && ((c.changes_mode() && !c.mode_by_acl) || c.restores_set_id())) {
    if (int rc = chmod_entry(dirfd, c); rc < 0) {
      c.err = -rc;
      c.failed_step = "chmod";
      return c.err;
    }
  }
  // After the chown, which removes capabilities: set what must be there, remove what must not.
  for (const XattrChange& x : c.xattrs) {
    int rc = 0;
    if (x.after && (x.after != x.before || c.changes_owner()))
      rc = set_xattr_at(dirfd, c.name, x.name.c_str(), *x.after);
    else if (!x.after && x.before)
      rc = remove_xattr_at(dirfd, c.name, x.name.c_str());
    if (rc < 0) {
      c.err = -rc;
      c.failed_step = x.name == kCapabilityXattr ? "restore file capabilities" : "set ACL";
      return c.err;
    }
  }
  return c.err;
}

std::unique_ptr<Applier> make_real_applier() { return std::make_unique<RealApplier>(); }
std::unique_ptr<Applier> make_journaling_applier(JournalWriter& journal) {
  return std::make_unique<JournalingApplier>(journal);
}
std::unique_ptr<Applier> make_dry_run_applier(std::vector<RecordedChange>& out) {
  return std::make_unique<DryRunApplier>(out);
}

}  // namespace volprep
