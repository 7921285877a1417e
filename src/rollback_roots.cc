// Where rollback finds a journal's volume roots and renamed entries, and how it renames an
// entry back.
#include <stdio.h>  // renameat2

#include <cerrno>
#include <cstring>

#include "volprep/idmount.h"
#include "volprep/rollback.h"

namespace volprep {

Result<UniqueFd> open_journal_root(const JournalRoot& h, bool& single_file) {
  int fd = open_absolute(h.volume, O_PATH);
  if (fd < 0)
    return Error{fd == -ENOENT ? kExitConfig : kExitRefused,
                 "cannot open the volume " + h.volume + " without following a symlink: " +
                     std::strerror(-fd)};
  UniqueFd root(fd);
  // The tree's owner may mount a FUSE filesystem of its own (fusermount3) over the root it
  // owns: its server answers as it decides, or never, and one request could hang rollback for
  // good. Refused from the kernel's cache and mountinfo before any request, as a run refuses it.
  if (auto user = fuse_user_of(cached_mount_id(root.get())); user && *user != 0)
    return Error{kExitRefused, h.volume + " is a FUSE mount served for uid " + std::to_string(*user) +
                                   ", whose server decides every answer, or gives none (unmount it); refusing"};
  EntryStat st;
  if (int rc = stat_at(root.get(), "", st); rc < 0)
    return config_error(h.volume + ": " + std::strerror(-rc));
  if (S_ISLNK(st.mode))  // opened itself, never followed
    return Error{kExitRefused, h.volume + " is a symlink now, not the tree the run changed (rollback follows none); "
                                          "refusing"};
  if (st.ino != h.ino || st.dev_major != h.dev_major || st.dev_minor != h.dev_minor)
    return Error{kExitRefused, h.volume + " is no longer the tree the run changed (device " +
                                   std::to_string(st.dev_major) + ":" + std::to_string(st.dev_minor) +
                                   " inode " + std::to_string(st.ino) + ", the journal says " +
                                   std::to_string(h.dev_major) + ":" + std::to_string(h.dev_minor) +
                                   " inode " + std::to_string(h.ino) + "); refusing"};
  single_file = !S_ISDIR(st.mode);
  if (single_file) {
    // A single-file volume: its records are named relative to its parent.
    auto cut = h.volume.rfind('/');
    int parent = open_absolute(cut == 0 ? "/" : h.volume.substr(0, cut), O_RDONLY | O_DIRECTORY);
    if (parent < 0) return config_error(h.volume + ": cannot open its directory: " + std::strerror(-parent));
    return UniqueFd(parent);
  }
  int dir = open_beneath(root.get(), "", O_RDONLY | O_DIRECTORY);
  if (dir < 0) return config_error(h.volume + ": " + std::strerror(-dir));
  return UniqueFd(dir);
}

std::string journal_path(const JournalRoot& root, bool single_file, std::string_view rel) {
  if (rel.empty()) return root.volume;
  std::string base = single_file ? root.volume.substr(0, root.volume.rfind('/')) : root.volume;
  if (base == "/") base.clear();
  return base + "/" + std::string(rel);
}

namespace {

// `path` with the rename `m` made (forward) or undone (back), where it is at or below the
// renamed entry; else as it is.
std::string renamed(const std::string& path, const JournalMove& m, bool back) {
  const std::string from = journal_path({m.from_dir}, false, m.from_name);
  const std::string to = journal_path({m.to_dir}, false, m.to_name);
  const std::string& src = back ? to : from;
  const std::string& dst = back ? from : to;
  if (path == src) return dst;
  if (path.starts_with(src + "/")) return dst + path.substr(src.size());
  return path;
}

}  // namespace

Result<FoundRoot> locate_root(const Journal& j, size_t at) {
  const JournalRoot& recorded = j.roots[j.segments[at].root];
  FoundRoot found;
  auto fd = open_journal_root(recorded, found.single_file);
  if (fd) {
    found.fd = std::move(*fd);
    found.root = recorded;
    return found;
  }
  for (bool back : {true, false}) {
    JournalRoot moved = recorded;
    if (back) {
      for (size_t s = at; s-- > 0;)
        if (auto m = j.segments[s].move) moved.volume = renamed(moved.volume, j.moves[*m], true);
    } else {
      for (size_t s = at + 1; s < j.segments.size(); ++s)
        if (auto m = j.segments[s].move) moved.volume = renamed(moved.volume, j.moves[*m], false);
    }
    if (moved.volume == recorded.volume) continue;
    if (auto there = open_journal_root(moved, found.single_file)) {
      found.fd = std::move(*there);
      found.root = std::move(moved);
      return found;
    }
  }
  return fd.error();
}

Result<bool> check_journal_roots(const Journal& j) {
  for (size_t s = 0; s < j.segments.size(); ++s)
    if (!j.segments[s].move)
      if (auto root = locate_root(j, s); !root) return root.error();
  return true;
}

// The entry now at its new name, pinned and checked to be the recorded inode, goes back under
// its old name with
// renameat2(RENAME_NOREPLACE). A name cannot be renamed through a descriptor: both
// directories must be writable by no one but us, so that nobody swaps the name between the
// check and the rename; the old name must be free. Counts into `out`.
void undo_move(const JournalMove& m, const RollbackConfig& config, RollbackResult& out) {
  const std::string now_path = journal_path({m.to_dir}, false, m.to_name);
  const std::string old_path = journal_path({m.from_dir}, false, m.from_name);
  auto note = [&](uint64_t& count, std::string text) {
    ++count;
    out.notes.push_back({now_path, std::move(text)});
  };
  // The directory `dir` the journal names, as the move left it; or why not.
  auto open_parent = [&](const std::string& dir, uint64_t ino, UniqueFd& fd) -> std::string {
    int f = open_absolute(dir, O_RDONLY | O_DIRECTORY);
    if (f < 0) return "cannot open " + dir + " without following a symlink: " + std::strerror(-f);
    fd.reset(f);
    EntryStat st;
    if (int rc = stat_at(f, "", st); rc < 0) return dir + ": " + std::strerror(-rc);
    if (st.ino != ino || st.dev_major != m.dev_major || st.dev_minor != m.dev_minor)
      return dir + " is no longer the directory the rename saw";
    if ((st.mode & (S_IWGRP | S_IWOTH)) || st.uid != ::geteuid())
      return dir + " is writable by someone else, who could swap names while it is renamed back";
    return "";
  };
  UniqueFd from_dir, to_dir;
  for (auto why : {open_parent(m.from_dir, m.from_dir_ino, from_dir), open_parent(m.to_dir, m.to_dir_ino, to_dir)})
    if (!why.empty()) return note(out.conflicts, "not moved back to " + old_path + ": " + why + "; left alone");
  auto is_recorded = [&](const EntryStat& st) {
    return st.ino == m.ino && st.dev_major == m.dev_major && st.dev_minor == m.dev_minor &&
           (st.mode & S_IFMT) == (m.mode & S_IFMT) && !(m.btime_ns && st.btime_ns && st.btime_ns != m.btime_ns);
  };
  auto pinned_is_recorded = [&](int dirfd, const std::string& name, UniqueFd& pin) {
    int fd = open_entry(dirfd, name.c_str(), config.cross_filesystems);
    pin.reset(fd);
    EntryStat st;
    return fd >= 0 && stat_at(fd, "", st) == 0 && is_recorded(st);
  };
  UniqueFd pin;
  if (!pinned_is_recorded(to_dir.get(), m.to_name, pin)) {
    UniqueFd back;
    if (pinned_is_recorded(from_dir.get(), m.from_name, back)) {
      ++out.already;  // never moved (a crash between the record and the rename), or moved back
      return;
    }
    return note(out.missing, pin.valid() ? "another entry has this name now: not moved back to " + old_path
                                         : "gone: not moved back to " + old_path);
  }
  EntryStat taken;
  if (stat_at(from_dir.get(), m.from_name.c_str(), taken) == 0)
    return note(out.conflicts, "not moved back: its old name " + old_path + " is taken now; left alone");
  if (config.dry_run) {
    ++out.restored;
    out.moves.push_back({now_path, old_path});
    return;
  }
  if (config.journal) {  // the rename back, journaled before it is made
    JournalMove back = m;
    std::swap(back.from_dir, back.to_dir);
    std::swap(back.from_name, back.to_name);
    std::swap(back.from_dir_ino, back.to_dir_ino);
    if (auto r = config.journal->record_move(back); !r) {
      out.stopped = r.error().message;
      return;
    }
  }
  if (::renameat2(to_dir.get(), m.to_name.c_str(), from_dir.get(), m.from_name.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) return note(out.conflicts, "not moved back: its old name " + old_path + " is taken now; left alone");
    ++out.failed;
    out.errors.push_back({now_path, "rename back to " + old_path + ": " + std::strerror(errno)});
    return;
  }
  EntryStat pinned, moved;
  if (stat_at(pin.get(), "", pinned) != 0 || stat_at(from_dir.get(), m.from_name.c_str(), moved) != 0 ||
      !moved.same_inode(pinned)) {
    ++out.failed;
    out.errors.push_back({old_path, "renamed back, but it is not the entry checked: renamed meanwhile"});
    return;
  }
  ++out.restored;
  out.moves.push_back({now_path, old_path});
}

}  // namespace volprep
