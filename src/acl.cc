#include "volprep/acl.h"

#include <sys/stat.h>

#include <algorithm>

namespace volprep {
namespace {

constexpr uint32_t kAclVersion = 2;

uint32_t rd32(const unsigned char* p) { return uint32_t(p[0]) | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24; }
uint16_t rd16(const unsigned char* p) { return uint16_t(p[0] | p[1] << 8); }
void wr32(std::string& o, uint32_t v) { for (int i = 0; i < 4; ++i) o.push_back(char(v >> (8 * i))); }
void wr16(std::string& o, uint16_t v) { o.push_back(char(v)); o.push_back(char(v >> 8)); }

bool kernel_order(const AclEntry& a, const AclEntry& b) {
  return a.tag != b.tag ? a.tag < b.tag : a.id < b.id;
}

}  // namespace

std::optional<Acl> Acl::parse(const std::string& raw) {
  if (raw.size() < 4 || (raw.size() - 4) % 8 != 0) return std::nullopt;
  auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  if (rd32(p) != kAclVersion) return std::nullopt;
  Acl acl;
  for (size_t off = 4; off < raw.size(); off += 8)
    acl.entries.push_back({rd16(p + off), rd16(p + off + 2), rd32(p + off + 4)});
  return acl;
}

Acl Acl::from_mode(uint32_t mode) {
  Acl acl;
  acl.entries = {{kAclUserObj, uint16_t((mode >> 6) & 7), UINT32_MAX},
                 {kAclGroupObj, uint16_t((mode >> 3) & 7), UINT32_MAX},
                 {kAclOther, uint16_t(mode & 7), UINT32_MAX}};
  return acl;
}

std::string Acl::serialize() const {
  std::string out;
  wr32(out, kAclVersion);
  for (const auto& e : entries) {
    wr16(out, e.tag);
    wr16(out, e.perm);
    wr32(out, e.id);
  }
  return out;
}

const AclEntry* Acl::find(uint16_t tag, uint32_t id) const {
  for (const auto& e : entries)
    if (e.tag == tag && (id == UINT32_MAX || e.id == id)) return &e;
  return nullptr;
}

bool Acl::grant(uint16_t tag, uint32_t id, uint16_t perm) {
  for (auto& e : entries)
    if (e.tag == tag && e.id == id) {
      if ((e.perm & perm) == perm) return false;
      e.perm |= perm;
      return true;
    }
  entries.push_back({tag, perm, id});
  std::sort(entries.begin(), entries.end(), kernel_order);
  return true;
}

void Acl::recompute_mask() {
  uint16_t group_class = 0;
  bool named = false;
  for (const auto& e : entries) {
    if (e.tag == kAclUser || e.tag == kAclGroup) named = true;
    if (e.tag == kAclUser || e.tag == kAclGroup || e.tag == kAclGroupObj) group_class |= e.perm;
  }
  for (auto& e : entries)
    if (e.tag == kAclMask) {
      e.perm = group_class;
      return;
    }
  if (named) {
    entries.push_back({kAclMask, group_class, UINT32_MAX});
    std::sort(entries.begin(), entries.end(), kernel_order);
  }
}

uint32_t Acl::mode_bits(uint32_t mode) const {
  uint32_t bits = mode & 07000;
  const AclEntry* mask = find(kAclMask);
  for (const auto& e : entries) {
    if (e.tag == kAclUserObj) bits |= uint32_t(e.perm) << 6;
    if (e.tag == kAclOther) bits |= e.perm;
    if (e.tag == kAclGroupObj && !mask) bits |= uint32_t(e.perm) << 3;
  }
  if (mask) bits |= uint32_t(mask->perm) << 3;
  return bits;
}

bool Acl::extended() const { return entries.size() > 3; }

std::string perm_text(uint16_t p) {
  return std::string() + (p & 4 ? 'r' : '-') + (p & 2 ? 'w' : '-') + (p & 1 ? 'x' : '-');
}

std::string acl_entry_text(const AclEntry& e) {
  switch (e.tag) {
    case kAclUserObj: return "u::" + perm_text(e.perm);
    case kAclUser: return "u:" + std::to_string(e.id) + ":" + perm_text(e.perm);
    case kAclGroupObj: return "g::" + perm_text(e.perm);
    case kAclGroup: return "g:" + std::to_string(e.id) + ":" + perm_text(e.perm);
    case kAclMask: return "mask::" + perm_text(e.perm);
    case kAclOther: return "o::" + perm_text(e.perm);
  }
  return "?";
}

std::vector<std::string> acl_diff(const Acl& before, const Acl& after, const char* prefix) {
  std::vector<std::string> out;
  for (const auto& a : after.entries) {
    const AclEntry* b = nullptr;
    for (const auto& e : before.entries)
      if (e.tag == a.tag && e.id == a.id) b = &e;
    if (!b)
      out.push_back(std::string("+") + prefix + acl_entry_text(a));
    else if (b->perm != a.perm)
      out.push_back(prefix + acl_entry_text(*b) + " -> " + perm_text(a.perm));
  }
  for (const auto& b : before.entries) {
    bool kept = false;
    for (const auto& a : after.entries) kept |= a.tag == b.tag && a.id == b.id;
    if (!kept) out.push_back(std::string("-") + prefix + acl_entry_text(b));
  }
  return out;
}

Result<AclGrant> AclGrant::parse_perms(const std::string& text, uint32_t uid, std::optional<uint32_t> gid) {
  AclGrant g;
  g.uid = uid;
  g.gid = gid;
  g.perm = 0;
  g.cond_x = false;
  if (text.empty()) return usage_error("--acl-perms \"\": expected r, rw, rwX, rX or rwx");
  for (char c : text) {
    if (c == 'r') g.perm |= 4;
    else if (c == 'w') g.perm |= 2;
    else if (c == 'x') g.perm |= 1;
    else if (c == 'X') g.cond_x = true;
    else return usage_error("--acl-perms \"" + text + "\": expected r, rw, rwX, rX or rwx");
  }
  return g;
}

uint16_t AclGrant::perm_for(uint32_t mode) const {
  uint16_t p = perm;
  if (cond_x && (S_ISDIR(mode) || (mode & 0111))) p |= 1;
  return p;
}

std::optional<AclPlan> plan_acl(uint32_t mode, const std::optional<std::string>& access_raw,
                                const std::optional<std::string>& default_raw, const AclGrant& g) {
  const uint16_t want = g.perm_for(mode);
  AclPlan plan;
  std::optional<Acl> parsed = access_raw ? Acl::parse(*access_raw) : std::nullopt;
  Acl before = parsed ? *parsed : Acl::from_mode(mode);
  Acl after = before;
  after.grant(kAclUser, g.uid, want);
  if (g.gid) after.grant(kAclGroup, *g.gid, want);
  after.recompute_mask();
  if (after != before) {
    plan.access_after = after.serialize();
    plan.diff = acl_diff(before, after, "");
  }
  plan.mode_after = after.mode_bits(mode);

  if (S_ISDIR(mode)) {
    std::optional<Acl> d = default_raw ? Acl::parse(*default_raw) : std::nullopt;
    // With no default ACL, setfacl starts the new one from the access ACL.
    Acl dbefore = d ? *d : after;
    Acl dafter = dbefore;
    dafter.grant(kAclUser, g.uid, want);
    if (g.gid) dafter.grant(kAclGroup, *g.gid, want);
    dafter.recompute_mask();
    if (!d || dafter != dbefore) {
      plan.default_after = dafter.serialize();
      auto dd = acl_diff(d ? dbefore : Acl{}, dafter, "d:");
      plan.diff.insert(plan.diff.end(), dd.begin(), dd.end());
    }
  }
  if (!plan.access_after && !plan.default_after) return std::nullopt;
  return plan;
}

AccessVerdict access_of(uint32_t file_uid, uint32_t file_gid, uint32_t mode,
                        const std::optional<Acl>& acl_in, const AccessRequest& who) {
  AccessVerdict v;
  if (who.dac_override) {
    // CAP_DAC_OVERRIDE: read and write anything; execute a file only if some x bit is set.
    v.perms = {uint16_t(6 | ((S_ISDIR(mode) || (mode & 0111)) ? 1 : 0))};
    v.klass = "root override";
    return v;
  }
  if (who.uid == file_uid) {
    v.perms = {uint16_t((mode >> 6) & 7)};
    v.klass = "owner";
    return v;
  }
  // Linux consults an ACL only while the mode's group bits (the mask) are not all clear.
  std::optional<Acl> none;
  const std::optional<Acl>& acl = (mode & 070) ? acl_in : none;
  const AclEntry* mask = acl ? acl->find(kAclMask) : nullptr;
  uint16_t m = mask ? mask->perm : 7;
  if (acl)
    if (const AclEntry* e = acl->find(kAclUser, who.uid)) {
      v.perms = {uint16_t(e->perm & m)};
      v.klass = "named user";
      return v;
    }
  auto in_groups = [&](uint32_t gid) {
    return std::find(who.gids.begin(), who.gids.end(), gid) != who.gids.end();
  };
  if (in_groups(file_gid)) {
    const AclEntry* go = acl ? acl->find(kAclGroupObj) : nullptr;
    v.perms.push_back(uint16_t(go ? go->perm & m : (mode >> 3) & 7));
  }
  if (acl)
    for (const auto& e : acl->entries)
      if (e.tag == kAclGroup && in_groups(e.id)) v.perms.push_back(uint16_t(e.perm & m));
  if (!v.perms.empty()) {
    v.klass = "group";
    return v;
  }
  v.perms = {uint16_t(mode & 7)};
  v.klass = "other";
  return v;
}

}  // namespace volprep
