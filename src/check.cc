#include "volprep/check.h"

#include <cerrno>
#include <cstring>
#include <tbb/concurrent_vector.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_sort.h>

namespace volprep {
namespace {

// The walk's mark on a directory: 1, the user can reach what is inside it; k >= 2, it cannot,
// and blockers[k - 2] is the topmost directory on the way that it cannot enter.
constexpr uint32_t kReachable = 1;
using Blockers = tbb::concurrent_vector<std::string>;

// Why an entry the walk left alone was not checked, for the filesystems it did not enter;
// null for what a check leaves out by design (symlinks are counted apart).
const char* not_checked(Skip why, bool is_dir) {
  switch (why) {
    case Skip::kMountPoint:
      return is_dir ? "mount point: not checked (--cross-filesystems checks it, unless it is proc, sysfs or the like)"
                    : "a file mounted over this name: not checked";
    case Skip::kSubvolume: return "btrfs subvolume: not checked (--cross-filesystems checks it)";
    case Skip::kReadOnlySubvolume:
      return "read-only btrfs subvolume: not checked (nothing in it can be written; --need r checks it)";
    case Skip::kReadOnlyMount: return "read-only mount: not checked (nothing in it can be written; --need r checks it)";
    case Skip::kSubvolumePlaceholder: return "btrfs subvolume placeholder: not checked";
    default: return nullptr;
  }
}

struct CheckState {
  CheckResult r;
};

class CheckVisitor final : public WalkVisitor {
 public:
  CheckVisitor(const CheckConfig& c, CheckState& ts, Blockers& b, bool single_file)
      : config_(c), ts_(ts), blockers_(b), single_file_(single_file) {}

  Visit visit(const DirView& dir, std::span<Entry> entries) override {
    // The root batch holds the root itself, reachable by definition (the bind mount); a
    // single-file volume's only batch holds that file.
    const bool root_batch = single_file_ || (entries.size() == 1 && entries[0].name.empty());
    const bool reachable = root_batch || dir.mark == kReachable;
    for (Entry& e : entries) {
      if (e.skip) {
        if (const char* why = not_checked(*e.skip, S_ISDIR(e.st.mode))) {
          ++ts_.r.mounts_not_checked;
          ts_.r.not_checked.push_back({join_path(dir.path, e.name), why});
        }
        continue;
      }
      std::string rel = join_path(dir.path, e.name);
      if (S_ISLNK(e.st.mode)) {
        ++ts_.r.symlinks;
        continue;
      }
      ++ts_.r.checked;
      CheckedEntry c;
      c.uid = e.st.uid;
      c.gid = e.st.gid;
      c.mode = e.st.mode;
      std::optional<Acl> acl;
      std::string raw;
      if (int rc = get_xattr_at(dir.fd, e.name, kAclAccessXattr, raw); rc == 0) {
        acl = Acl::parse(raw);
        c.has_acl = acl.has_value();
      } else if (rc != -ENODATA && rc != -EOPNOTSUPP) {
        ts_.r.errors.push_back({rel, std::string("cannot read its ACL: ") + std::strerror(-rc)});
      }
      AccessRequest who = config_.who;
      who.dac_override = config_.container_uid == 0 && config_.uid_map && config_.gid_map &&
                         config_.uid_map->to_container(e.st.uid) && config_.gid_map->to_container(e.st.gid);
      AccessVerdict v = access_of(e.st.uid, e.st.gid, e.st.mode, acl, who);
      for (uint16_t p : v.perms) c.granted |= p;
      c.klass = v.klass;
      const bool is_dir = S_ISDIR(e.st.mode);
      uint16_t need = config_.need;
      // The requests the kernel makes, each answered whole: for a file, reading, writing and
      // executing; for a directory, listing it (r), entering it (x), and creating or deleting
      // in it (w and x in one request).
      if (is_dir) {
        if (need & 6) need |= 1;
        if ((need & 4) && !v.allows(4)) c.missing |= 4;
        if ((need & 1) && !v.allows(1)) c.missing |= 1;
        if ((need & 2) && !v.allows(3)) c.missing |= 2;
      } else {
        for (uint16_t bit : {4, 2, 1})
          if ((need & bit) && !v.allows(bit)) c.missing |= bit;
      }
      if (is_dir) {
        if (!reachable) e.mark = dir.mark;
        else if (v.allows(1)) e.mark = kReachable;
        else e.mark = uint32_t(blockers_.push_back(rel.empty() ? "." : rel) - blockers_.begin()) + 2;
      }
      if (!reachable) {
        c.blocked_by = blockers_[dir.mark - 2];
        c.missing = need;
      }
      if (reachable) ++ts_.r.reachable;
      if (c.missing) ++ts_.r.denied;
      if (c.missing || config_.all) {
        c.path = std::move(rel);
        ts_.r.entries.push_back(std::move(c));
      }
    }
    return Visit::kContinue;
  }
  void vanished(const std::string&) override { ++ts_.r.vanished; }
  // Not examined: the answer is incomplete. A pseudo filesystem (proc, sysfs) is never
  // entered, by design: named and counted as a mount not checked.
  void skipped(const std::string& path, Skip why, const char* what) override {
    if (why == Skip::kPseudoFs) {
      ++ts_.r.mounts_not_checked;
      ts_.r.not_checked.push_back({path, "pseudo filesystem (proc, sysfs and the like): never entered, not checked"});
      return;
    }
    ts_.r.errors.push_back({path, what});
  }
  void error(const std::string& path, int err, const char* what) override {
    ts_.r.errors.push_back({path, std::string(what) + ": " + std::strerror(err)});
  }

 private:
  const CheckConfig& config_;
  CheckState& ts_;
  Blockers& blockers_;
  const bool single_file_;
};

}  // namespace

CheckResult check_volume(const VolumeRoot& volume, const CheckConfig& config) {
  tbb::enumerable_thread_specific<CheckState> states;
  Blockers blockers;
  WalkOptions walk;
  walk.cross_filesystems = config.cross_filesystems;
  walk.in_flight = int(config.threads);
  // Without w to check, a read-only mount or subvolume is checked as any other; with it, every
  // write there fails (EROFS) whatever the modes say: not checked, said so.
  walk.enter_read_only = !(config.need & 2);
  walk_volume(volume, std::move(walk), [&] {
    return std::make_unique<CheckVisitor>(config, states.local(), blockers, !volume.file_name.empty());
  });
  CheckResult out;
  for (auto& ts : states) {
    out.checked += ts.r.checked;
    out.denied += ts.r.denied;
    out.reachable += ts.r.reachable;
    out.symlinks += ts.r.symlinks;
    out.vanished += ts.r.vanished;
    out.mounts_not_checked += ts.r.mounts_not_checked;
    std::move(ts.r.entries.begin(), ts.r.entries.end(), std::back_inserter(out.entries));
    std::move(ts.r.not_checked.begin(), ts.r.not_checked.end(), std::back_inserter(out.not_checked));
    std::move(ts.r.errors.begin(), ts.r.errors.end(), std::back_inserter(out.errors));
  }
  tbb::parallel_sort(out.entries.begin(), out.entries.end(),
                     [](auto& a, auto& b) { return a.path < b.path; });
  std::sort(out.errors.begin(), out.errors.end());
  std::sort(out.not_checked.begin(), out.not_checked.end());
  return out;
}

std::string describe_denial(const CheckedEntry& e, const CheckConfig& config) {
  char head[96];
  std::snprintf(head, sizeof head, "mode %04o owner %u:%u", e.mode & 07777, e.uid, e.gid);
  std::string s = head;
  if (e.has_acl) s += " (ACL)";
  s += "; container " + std::to_string(config.container_uid) + " -> host " +
       std::to_string(config.who.uid) + " is \"" + e.klass + "\" (" + perm_text(e.granted) + ")";
  return s;
}

}  // namespace volprep
