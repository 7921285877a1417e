// Report: what a run would change or changed, in the dry-run diff format, as JSON Lines, and
// the closing summary. Paths are printed escaped (see escape_path), one entry per line.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/plan.h"

namespace volprep {

struct Summary {
  uint64_t scanned = 0;
  uint64_t changed = 0;     // to change, in a dry run
  uint64_t unchanged = 0;
  uint64_t failed = 0;
  uint64_t vanished = 0;
  uint64_t not_attempted = 0;  // planned, left alone because the run stopped
  uint64_t set_id_kept = 0;  // setuid/setgid bits put back after chown
  std::array<uint64_t, size_t(Skip::kCount)> skipped{};
  uint64_t skipped_total() const;
  Summary& operator+=(const Summary& o);
};

// Escapes a raw path for one line of output: bytes that are not printable UTF-8 become
// \xNN, and newline, tab and backslash become \n, \t and \\. Printable UTF-8 is kept.
std::string escape_path(std::string_view raw);
// The same for a message that may hold text from outside (a path, a config value) and
// paths already escaped: everything but backslash, so that escaping twice changes nothing.
// What it returns is printable UTF-8 on one line: no terminal escape gets through.
std::string escape_control(std::string_view text);

// A path longer than `max` bytes (a tree hundreds of levels deep; four times PATH_MAX) shown as its first and last
// components with the middle summarized: "a/b/...[40960 bytes].../y/z". Printing such paths
// whole makes output quadratic in the depth; short paths come back as they are.
std::string summarize_path(std::string_view raw, size_t max = 16 << 10);

// "jenkins_home/secrets/key  owner 1000:1000 -> 501000:501000  mode 0600"
std::string format_change(std::string_view display_path, const Change& c);
// The ACL entries a change adds or alters: "+u:501000:rwx", "mask::r-- -> rw-", "+d:u:...".
std::vector<std::string> acl_changes(const Change& c);
// A change of file capabilities, as each side reads: "v2", "v3 rootid 500000", "none".
std::optional<std::pair<std::string, std::string>> capability_change(const Change& c);
// The same as one JSON object (no newline).
std::string format_change_json(std::string_view display_path, const Change& c);

// "scanned N, to change N, unchanged N, skipped N (...)" or, after a real run,
// "scanned N, changed N, unchanged N, skipped N (...), failed N".
std::string format_summary(const Summary& s, bool dry_run);
std::string format_summary_json(const Summary& s, bool dry_run);

// A failed entry as one JSON object: {"failed": {"path": ..., "error": ...}}.
std::string format_failure_json(std::string_view display_path, std::string_view error);

// A run whose filesystem refused every change it tried (engine.h's RefusalWatch): stopped
// there, or ended (a tree of fewer entries than the stop takes).
struct Refusal {
  std::string volume;   // as given
  std::string fs_type;  // fs_type_name(): "nfs", "fuse", "ext4"
  uint64_t refused = 0;
  std::string first;    // "chown: Operation not permitted"
  // The capability the refused step needs (CAP_CHOWN for an owner, CAP_FOWNER for an ACL or
  // a mode) when volprep does not have it, with its uid; null when it has it.
  const char* missing_cap = nullptr;
  uint32_t euid = 0;
  std::string so_far;   // "nothing changed", or the journals that undo what changed (stopped only)
  bool stopped = true;  // false: the run ended, every change it tried refused
};
// What happened, then its cause or the likely ones, the filesystem's first: two lines. The
// only place their words live, for a run stopped and for one that ended so.
std::vector<std::string> format_refusal(const Refusal& r);
// {"stopped": {"path": ..., "reason": "refused", "refused": N, "error": ..., "fs_type": ...,
// "likely_causes": ...}} ("cause" when it is known); "refused_all" for a run that ended so.
std::string format_refusal_json(const Refusal& r);

}  // namespace volprep
