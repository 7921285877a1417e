// The shift policy (see policy.h): every id an entry holds translated through the map.
#include <sys/stat.h>

#include <algorithm>
#include <string_view>

#include "volprep/capability.h"
#include "volprep/policy.h"
#include "volprep/shift.h"

namespace volprep {

std::optional<uint32_t> ShiftSpec::translate_uid(uint32_t id) const {
  return reverse ? uid_map.to_container(id) : uid_map.to_host(id);
}
std::optional<uint32_t> ShiftSpec::translate_gid(uint32_t id) const {
  return reverse ? gid_map.to_container(id) : gid_map.to_host(id);
}

namespace {

// A filesystem without ACLs has none to translate; one without capabilities, none to keep.
constexpr XattrRead kFileReads[] = {{kAclAccessXattr, "cannot read its ACL; left alone", true},
                                    {kCapabilityXattr, "cannot read its file capabilities; left alone", true}};
constexpr XattrRead kDirReads[] = {{kAclAccessXattr, "cannot read its ACL; left alone", true},
                                   {kAclDefaultXattr, "cannot read its default ACL; left alone", true}};
constexpr XattrRead kOtherReads[] = {{kAclAccessXattr, "cannot read its ACL; left alone", true}};

bool is_acl(std::string_view name) { return name == kAclAccessXattr || name == kAclDefaultXattr; }

// The id an entry gets: translated, else as --unmapped says (kRefuse: the census refused
// every tree holding one, so one here is new since; it stays, as with kSkip).
uint32_t shifted(const ShiftSpec& s, bool gid, uint32_t id) {
  auto to = gid ? s.translate_gid(id) : s.translate_uid(id);
  if (to) return *to;
  return s.unmapped == Unmapped::kNobody ? (gid ? s.nobody_gid : s.nobody_uid) : id;
}

// The ACL with its named entries translated, in the kernel's order (by tag, then id: a
// multi-extent map may reorder them); entries that now name the same id (--unmapped=nobody)
// merged, their permissions joined. An ACL that does not parse stays as it is.
std::string shift_acl(const ShiftSpec& s, const std::string& raw) {
  auto acl = Acl::parse(raw);
  if (!acl) return raw;
  for (AclEntry& e : acl->entries)
    if (e.tag == kAclUser || e.tag == kAclGroup) e.id = shifted(s, e.tag == kAclGroup, e.id);
  auto& es = acl->entries;
  std::stable_sort(es.begin(), es.end(), [](const AclEntry& a, const AclEntry& b) {
    return a.tag != b.tag ? a.tag < b.tag : a.id < b.id;
  });
  std::vector<AclEntry> merged;
  for (const AclEntry& e : es) {
    if (!merged.empty() && merged.back().tag == e.tag && merged.back().id == e.id)
      merged.back().perm |= e.perm;
    else
      merged.push_back(e);
  }
  es = std::move(merged);
  return acl->serialize();
}

// The capability with its root id translated. Forward, a revision 2 one (no root id: it
// grants on the host too) is for container root. Reversed, revision 2 stays the host's, and a
// root id that becomes 0 is written as revision 2, as the kernel shows such a value anyway.
// A value that does not parse stays as it is.
std::string shift_caps(const ShiftSpec& s, const std::string& raw) {
  auto caps = FileCaps::parse(raw);
  if (!caps || (s.reverse && caps->revision != 3)) return raw;
  const uint32_t root = caps->revision == 3 ? caps->root_id : 0;
  auto to = s.translate_uid(root);
  if (!to && s.unmapped != Unmapped::kNobody) return raw;
  caps->root_id = to ? *to : s.nobody_uid;
  caps->revision = s.reverse && caps->root_id == 0 ? 2 : 3;
  if (caps->revision == 2) caps->root_id = 0;
  return caps->serialize();
}

// Where an entry stands against its journal record, part by part (owner, mode, each xattr
// recorded): every part after, every part before, some of each or a part between (a step of
// the change made, a side effect of the chown not yet undone), or a part in neither state.
class Parts {
 public:
  void add(bool is_before, bool is_after, bool between = false) {
    neither_ |= !is_before && !is_after && !between;
    all_before_ &= is_before;
    all_after_ &= is_after;
  }
  ResumedShift::State state() const {
    using State = ResumedShift::State;
    return neither_ ? State::kConflict : all_after_ ? State::kAfter : all_before_ ? State::kBefore : State::kBetween;
  }

 private:
  bool neither_ = false, all_before_ = true, all_after_ = true;
};

// Owner and mode. The chown of a non-directory clears its set-id bits, which the change puts
// back after it: bits missing once the owner is the new one are a state between.
Parts stat_parts(const JournalRecord& r, const EntryStat& st) {
  Parts p;
  const bool owner_after = st.uid == r.uid_after && st.gid == r.gid_after;
  p.add(st.uid == r.uid_before && st.gid == r.gid_before, owner_after);
  const uint32_t mode = st.mode & 07777, before = r.mode_before & 07777;
  p.add(mode == before, mode == r.mode_after,
        owner_after && !S_ISDIR(st.mode) && (mode == (before & ~06000u) || mode == (r.mode_after & ~06000u)));
  if ((st.mode & S_IFMT) != (r.mode_before & S_IFMT)) p.add(false, false);
  return p;
}

// The value of `name` among `values`, read as shift_reads(st) says; nullopt where absent or
// not read.
std::optional<std::string> value_of(const EntryStat& st, std::span<const std::optional<std::string>> values,
                                    const std::string& name) {
  const auto reads = shift_reads(st);
  for (size_t i = 0; i < reads.size() && i < values.size(); ++i)
    if (name == reads[i].name) return values[i];
  return std::nullopt;
}

class ShiftPolicy final : public Policy {
 public:
  ShiftPolicy(const ShiftSpec& spec, std::shared_ptr<const BareInodes> bare, std::shared_ptr<const ResumedShift> resumed)
      : spec_(spec), bare_(std::move(bare)), resumed_(std::move(resumed)) {}

  Triage triage(const EntryStat& st) const override {
    if (shift_skips(st)) return Triage::skipped(Skip::kDevice, "device node: owner left alone");
    if (const JournalRecord* r = resumed_ ? resumed_->find(st) : nullptr) {
      if (ResumedShift::stat_state(*r, st) == ResumedShift::State::kConflict)
        return Triage::skipped(Skip::kReplaced, "changed since the unfinished shift recorded it: left alone");
      return Triage::may_change();
    }
    if (spec_.unmapped == Unmapped::kRefuse && (!spec_.translate_uid(st.uid) || !spec_.translate_gid(st.gid)))
      return Triage::skipped(Skip::kReplaced,
                             "an owner the map cannot translate, new since the check before the run: left alone");
    // Every other entry changes, or may: its ACLs and capabilities are read once it is pinned.
    return Triage::may_change();
  }

  // The census read this inode as it is now (the same ctime): it has none of them.
  std::span<const XattrRead> reads(const EntryStat& st) const override {
    if (resumed_ && resumed_->find(st)) return shift_reads(st);
    if (bare_ && bare_->contains(st)) return {};
    return shift_reads(st);
  }

  std::optional<Change> plan(const EntryStat& st, std::span<const std::optional<std::string>> xattrs) const override {
    if (const JournalRecord* r = resumed_ ? resumed_->find(st) : nullptr) {
      switch (ResumedShift::state(*r, st, xattrs)) {
        case ResumedShift::State::kBefore: break;  // shifted as any other entry
        case ResumedShift::State::kBetween: return finish(*r, st, xattrs);
        case ResumedShift::State::kAfter: return std::nullopt;
        case ResumedShift::State::kConflict: return std::nullopt;  // xattrs changed since: left alone
      }
    }
    Change c;
    c.before = st;
    c.uid = shifted(spec_, false, st.uid);
    c.gid = shifted(spec_, true, st.gid);
    c.mode = st.mode & 07777;  // set-id bits put back after the chown (Change::restores_set_id)
    // Reversed, what becomes root's from container root's gets no set-id bit it had.
    const bool to_root_uid = spec_.reverse && !spec_.keep_setid && c.uid == 0 && st.uid != 0;
    const bool to_root_gid = spec_.reverse && !spec_.keep_setid && c.gid == 0 && st.gid != 0;
    if (!S_ISDIR(st.mode) && !S_ISLNK(st.mode)) {
      if (to_root_uid) c.mode &= ~uint32_t(S_ISUID);
      if (to_root_gid) c.mode &= ~uint32_t(S_ISGID);
    }
    const auto reads = shift_reads(st);
    for (size_t i = 0; i < reads.size() && i < xattrs.size(); ++i) {
      if (!xattrs[i]) continue;
      const std::string& before = *xattrs[i];
      if (is_acl(reads[i].name)) {
        if (std::string after = shift_acl(spec_, before); after != before)
          c.xattrs.push_back({reads[i].name, before, std::move(after)});
      } else {  // capabilities: set after the chown, which removes them, changed or not
        std::string after = shift_caps(spec_, before);
        // Revision 2 (root id 0) reversed from container root's: it would grant on the host.
        auto caps = FileCaps::parse(after);
        if (spec_.reverse && !spec_.keep_setid && caps && caps->revision == 2 && after != before)
          c.xattrs.push_back({reads[i].name, before, std::nullopt});
        else
          c.xattrs.push_back({reads[i].name, before, std::move(after)});
      }
    }
    if (!c.changes_owner() && !c.changes_xattrs() && !c.changes_mode()) return std::nullopt;
    return c;
  }

 private:
  // The rest of a change the unfinished shift began: to the state its journal recorded.
  static std::optional<Change> finish(const JournalRecord& r, const EntryStat& st,
                                      std::span<const std::optional<std::string>> xattrs) {
    Change c;
    c.before = st;
    c.uid = r.uid_after;
    c.gid = r.gid_after;
    c.mode = r.mode_after;
    for (const XattrChange& x : r.xattrs) c.xattrs.push_back({x.name, value_of(st, xattrs, x.name), x.after});
    if (!c.changes_owner() && !c.changes_mode() && !c.changes_xattrs()) return std::nullopt;
    return c;
  }

  ShiftSpec spec_;
  std::shared_ptr<const BareInodes> bare_;
  std::shared_ptr<const ResumedShift> resumed_;
};

}  // namespace

bool shift_skips(const EntryStat& st) { return S_ISCHR(st.mode) || S_ISBLK(st.mode); }

std::span<const XattrRead> shift_reads(const EntryStat& st) {
  if (S_ISLNK(st.mode) || shift_skips(st)) return {};
  if (S_ISREG(st.mode)) return kFileReads;
  if (S_ISDIR(st.mode)) return kDirReads;
  return kOtherReads;
}

void shift_held_ids(const ShiftSpec& spec, const EntryStat& st, std::span<const std::optional<std::string>> xattrs,
                    std::vector<HeldId>& out) {
  out.push_back({IdRole::kOwner, st.uid});
  out.push_back({IdRole::kGroup, st.gid});
  const auto reads = shift_reads(st);
  for (size_t i = 0; i < reads.size() && i < xattrs.size(); ++i) {
    if (!xattrs[i]) continue;
    if (is_acl(reads[i].name)) {
      if (auto acl = Acl::parse(*xattrs[i]))
        for (const AclEntry& e : acl->entries)
          if (e.tag == kAclUser || e.tag == kAclGroup)
            out.push_back({e.tag == kAclUser ? IdRole::kAclUser : IdRole::kAclGroup, e.id});
    } else if (auto caps = FileCaps::parse(*xattrs[i])) {
      if (caps->revision == 3) out.push_back({IdRole::kCapabilityRoot, caps->root_id});
      else if (!spec.reverse) out.push_back({IdRole::kCapabilityRoot, 0});
    }
  }
}

std::unique_ptr<Policy> make_shift_policy(const ShiftSpec& spec) {
  return std::make_unique<ShiftPolicy>(spec, nullptr, nullptr);
}
std::unique_ptr<Policy> make_shift_policy(const ShiftSpec& spec, std::shared_ptr<const BareInodes> bare,
                                          std::shared_ptr<const ResumedShift> resumed) {
  return std::make_unique<ShiftPolicy>(spec, std::move(bare), std::move(resumed));
}

void ResumedShift::add(const JournalRecord& r) {
  records_.try_emplace(Key{uint64_t(r.dev_major) << 32 | r.dev_minor, r.ino, r.btime_ns}, r);
}

const JournalRecord* ResumedShift::find(const EntryStat& st) const {
  if (records_.empty()) return nullptr;
  auto it = records_.find(Key{uint64_t(st.dev_major) << 32 | st.dev_minor, st.ino, st.btime_ns});
  return it == records_.end() ? nullptr : &it->second;
}

ResumedShift::State ResumedShift::stat_state(const JournalRecord& r, const EntryStat& st) {
  return stat_parts(r, st).state() == State::kConflict ? State::kConflict : State::kBetween;
}

ResumedShift::State ResumedShift::state(const JournalRecord& r, const EntryStat& st,
                                        std::span<const std::optional<std::string>> values) {
  Parts p = stat_parts(r, st);
  const bool owner_after = st.uid == r.uid_after && st.gid == r.gid_after;
  const auto reads = shift_reads(st);
  for (const XattrChange& x : r.xattrs) {
    if (std::none_of(reads.begin(), reads.end(), [&](const XattrRead& read) { return x.name == read.name; })) {
      p.add(false, false);  // not one the shift reads of this type
      continue;
    }
    const std::optional<std::string> now = value_of(st, values, x.name);
    // The chown removed the capability the change puts back after it.
    p.add(now == x.before, now == x.after, x.name == kCapabilityXattr && !now && owner_after);
  }
  return p.state();
}

}  // namespace volprep
