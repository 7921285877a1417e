#include "volprep/report.h"

#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "volprep/capability.h"

namespace volprep {

uint64_t Summary::skipped_total() const {
  uint64_t n = 0;
  for (auto v : skipped) n += v;
  return n;
}

Summary& Summary::operator+=(const Summary& o) {
  scanned += o.scanned;
  changed += o.changed;
  unchanged += o.unchanged;
  failed += o.failed;
  vanished += o.vanished;
  not_attempted += o.not_attempted;
  set_id_kept += o.set_id_kept;
  for (size_t i = 0; i < skipped.size(); ++i) skipped[i] += o.skipped[i];
  return *this;
}

namespace {

std::string escape(std::string_view raw, bool backslash) {
  std::string out;
  out.reserve(raw.size());
  auto hex = [&](unsigned char b) {
    char buf[5];
    std::snprintf(buf, sizeof buf, "\\x%02x", b);
    out += buf;
  };
  for (size_t i = 0; i < raw.size();) {
    auto b = static_cast<unsigned char>(raw[i]);
    if (b == '\\' && backslash) { out += "\\\\"; ++i; continue; }
    if (b == '\n') { out += "\\n"; ++i; continue; }
    if (b == '\t') { out += "\\t"; ++i; continue; }
    if (b < 0x20 || b == 0x7f) { hex(b); ++i; continue; }
    if (b < 0x80) { out += char(b); ++i; continue; }
    // A UTF-8 sequence: its length, the smallest code point it may encode, then continuation
    // bytes. Overlong forms, surrogates and C1 controls are escaped byte by byte.
    size_t len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
    uint32_t cp = len == 4 ? b & 0x07 : len == 3 ? b & 0x0f : b & 0x1f;
    bool ok = len && i + len <= raw.size();
    for (size_t k = 1; ok && k < len; ++k) {
      auto cb = static_cast<unsigned char>(raw[i + k]);
      ok = (cb & 0xc0) == 0x80;
      cp = cp << 6 | (cb & 0x3f);
    }
    if (ok) {
      ok = !(len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
           !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0x80 && cp <= 0x9f);
    }
    if (!ok) { hex(b); ++i; continue; }
    out.append(raw.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace

std::string escape_path(std::string_view raw) { return escape(raw, true); }

std::string escape_control(std::string_view text) { return escape(text, false); }

namespace {

std::string ids(uint32_t u, uint32_t g) { return std::to_string(u) + ":" + std::to_string(g); }
std::string octal(uint32_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", m & 07777);
  return buf;
}
const char* type_name(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR: return "directory";
    case S_IFREG: return "file";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char device";
    case S_IFBLK: return "block device";
  }
  return "unknown";
}

}  // namespace

std::vector<std::string> acl_changes(const Change& c) {
  std::vector<std::string> out;
  for (const auto& x : c.xattrs) {
    bool is_default = x.name == kAclDefaultXattr;
    if (x.before == x.after || (!is_default && x.name != kAclAccessXattr)) continue;
    std::optional<Acl> before = x.before ? Acl::parse(*x.before) : std::nullopt;
    std::optional<Acl> after = x.after ? Acl::parse(*x.after) : std::nullopt;
    Acl b = before ? *before : is_default ? Acl{} : Acl::from_mode(c.before.mode);
    Acl a = after ? *after : is_default ? Acl{} : Acl::from_mode(c.mode);
    auto d = acl_diff(b, a, is_default ? "d:" : "");
    out.insert(out.end(), d.begin(), d.end());
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> capability_change(const Change& c) {
  auto text = [](const std::optional<std::string>& raw) -> std::string {
    if (!raw) return "none";
    auto caps = FileCaps::parse(*raw);
    return caps ? caps->describe() : std::to_string(raw->size()) + " bytes";
  };
  for (const auto& x : c.xattrs)
    if (x.name == kCapabilityXattr && x.before != x.after) return std::pair(text(x.before), text(x.after));
  return std::nullopt;
}

std::string summarize_path(std::string_view raw, size_t max) {
  if (raw.size() <= max) return std::string(raw);
  // Cut at slashes within the first and last quarter, so whole names are shown.
  size_t quarter = max / 4;
  size_t head = raw.rfind('/', quarter);
  size_t tail = raw.find('/', raw.size() - quarter);
  if (head == std::string_view::npos || head == 0) head = quarter;
  if (tail == std::string_view::npos) tail = raw.size() - quarter;
  return std::string(raw.substr(0, head)) + "/...[" + std::to_string(tail - head) + " bytes]..." +
         std::string(raw.substr(tail));
}

std::string format_change(std::string_view display, const Change& c) {
  std::string line(display);
  line += "  owner ";
  line += ids(c.before.uid, c.before.gid);
  if (c.changes_owner()) line += " -> " + ids(c.uid, c.gid);
  if (S_ISLNK(c.before.mode)) {
    line += "  symlink";
  } else {
    line += "  mode " + octal(c.before.mode);
    if (c.changes_mode()) line += " -> " + octal(c.mode);
    if (c.keeps_set_id()) line += " (setuid/setgid kept)";
  }
  auto acl = acl_changes(c);
  for (size_t i = 0; i < acl.size(); ++i) line += (i ? " " : "  acl ") + acl[i];
  if (auto caps = capability_change(c)) line += "  capability " + caps->first + " -> " + caps->second;
  return line;
}

std::string format_change_json(std::string_view display, const Change& c) {
  nlohmann::json j;
  j["path"] = std::string(display);
  j["type"] = type_name(c.before.mode);
  j["owner"] = {{"before", ids(c.before.uid, c.before.gid)}, {"after", ids(c.uid, c.gid)}};
  if (!S_ISLNK(c.before.mode))
    j["mode"] = {{"before", octal(c.before.mode)}, {"after", octal(c.mode)}};
  if (auto acl = acl_changes(c); !acl.empty()) j["acl"] = acl;
  if (auto caps = capability_change(c)) j["capability"] = {{"before", caps->first}, {"after", caps->second}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string format_summary(const Summary& s, bool dry_run) {
  std::string out = "scanned " + std::to_string(s.scanned) + (dry_run ? ", to change " : ", changed ") +
                    std::to_string(s.changed) + ", unchanged " + std::to_string(s.unchanged) +
                    ", skipped " + std::to_string(s.skipped_total());
  std::string reasons;
  for (size_t i = 0; i < s.skipped.size(); ++i)
    if (s.skipped[i])
      reasons += (reasons.empty() ? "" : ", ") + std::to_string(s.skipped[i]) + " " +
                 skip_name(Skip(i));
  if (!reasons.empty()) out += " (" + reasons + ")";
  if (!dry_run) out += ", failed " + std::to_string(s.failed);
  if (s.vanished) out += ", vanished " + std::to_string(s.vanished);
  if (s.not_attempted) out += ", not attempted " + std::to_string(s.not_attempted);
  if (s.set_id_kept) out += ", setuid/setgid kept on " + std::to_string(s.set_id_kept);
  return out;
}

std::string format_summary_json(const Summary& s, bool dry_run) {
  nlohmann::json skipped = nlohmann::json::object();
  for (size_t i = 0; i < s.skipped.size(); ++i) skipped[skip_name(Skip(i))] = s.skipped[i];
  nlohmann::json j = {{"scanned", s.scanned},
                      {dry_run ? "to_change" : "changed", s.changed},
                      {"unchanged", s.unchanged},
                      {"skipped", s.skipped_total()},
                      {"skipped_by_reason", skipped},
                      {"failed", s.failed},
                      {"vanished", s.vanished},
                      {"not_attempted", s.not_attempted},
                      {"setid_kept", s.set_id_kept},
                      {"dry_run", dry_run}};
  return nlohmann::json({{"summary", j}}).dump();
}

std::string format_failure_json(std::string_view display, std::string_view error) {
  nlohmann::json j = {{"failed", {{"path", std::string(display)}, {"error", std::string(error)}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> format_refusal(const Refusal& r) {
  const bool owners = r.first.starts_with("chown:");
  std::vector<std::string> out;
  const std::string who = r.volume + " (" + r.fs_type + ") refused ";
  if (r.stopped)
    out.push_back("stopped: " + who + "the first " + std::to_string(r.refused) + " changes volprep tried (" + r.first +
                  ") and allowed none, so it tried no more; " + r.so_far);
  else
    out.push_back(who + (r.refused == 1 ? "the one change" : "all " + std::to_string(r.refused) + " changes") +
                  " volprep tried (" + r.first + ") and let none complete");
  if (r.missing_cap) {
    out.push_back(std::string("cause: volprep runs as uid ") + std::to_string(r.euid) + " without " + r.missing_cap +
                  ": run it as root (sudo volprep ...)");
    return out;
  }
  // The filesystem's own cause first; on a local one, files that refuse even root.
  const std::string nfs =
      "an NFS export that squashes root (root_squash, the default: export it with no_root_squash to this host "
      "while volprep runs, or run volprep on the NFS server)";
  const std::string fuse = std::string("a FUSE or network filesystem that does not let root change ") +
                           (owners ? "owners" : "ACLs or modes") + " (sshfs; a FUSE server not running as root)";
  const std::string userns = std::string("volprep in a container or user namespace, without ") +
                             (owners ? "CAP_CHOWN" : "CAP_FOWNER") + " over these files";
  const std::string immutable =
      "immutable or append-only files (chattr +i, +a: lsattr shows them, chattr -i -a lets them change)";
  std::vector<std::string> causes;
  if (r.fs_type.starts_with("fuse") || r.fs_type == "smb" || r.fs_type == "smb2" || r.fs_type == "cifs" ||
      r.fs_type == "ceph" || r.fs_type == "9p")
    causes = {fuse, nfs, userns};
  else if (r.fs_type == "ext4" || r.fs_type == "xfs" || r.fs_type == "btrfs" || r.fs_type == "tmpfs" ||
           r.fs_type == "ramfs" || r.fs_type == "overlay")
    causes = {immutable, userns};
  else
    causes = {nfs, fuse, userns};
  std::string line = "likely causes: ";
  for (size_t i = 0; i < causes.size(); ++i) line += (i ? "; " : "") + causes[i];
  out.push_back(line);
  return out;
}

std::string format_refusal_json(const Refusal& r) {
  // The cause is the text's second line without its lead-in ("cause: ", "likely causes: ").
  std::string cause = format_refusal(r)[1];
  cause.erase(0, cause.find(": ") + 2);
  nlohmann::json j = {{r.stopped ? "stopped" : "refused_all",
                       {{"path", r.volume},
                        {"reason", "refused"},
                        {"refused", r.refused},
                        {"error", r.first},
                        {"fs_type", r.fs_type},
                        {r.missing_cap ? "cause" : "likely_causes", cause}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace volprep
