#include "volprep/shift_history.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "volprep/clock.h"

namespace volprep {

namespace {

std::string base_name(const std::string& p) { return p.substr(p.rfind('/') + 1); }

// The words of a journal's command line (split at spaces, as it was recorded) before "--".
std::vector<std::string_view> option_words(std::string_view command_line) {
  std::vector<std::string_view> words;
  for (size_t at = 0; at <= command_line.size();) {
    size_t end = command_line.find(' ', at);
    if (end == std::string::npos) end = command_line.size();
    std::string_view word = command_line.substr(at, end - at);
    at = end + 1;
    if (word == "--") break;
    words.push_back(word);
  }
  return words;
}

// The value a run gave --reverse on its command line, read as CLI11 reads a flag: "--reverse"
// or "--reverse=VALUE" (true/false, on/off, yes/no, enable/disable, a number), the last one
// counting; words after "--" are operands. Only for journals older than version 5, which do
// not record the direction: a path with " --reverse " in it is still misread.
bool reverse_in_text(const std::string& command_line) {
  bool reverse = false;
  for (std::string_view word : option_words(command_line)) {
    if (word == "--reverse") {
      reverse = true;
    } else if (word.starts_with("--reverse=")) {
      std::string value(word.substr(10));
      for (char& c : value) c = char(std::tolower(static_cast<unsigned char>(c)));
      if (value == "true" || value == "on" || value == "yes" || value == "enable" || value == "+")
        reverse = true;
      else if (value == "false" || value == "off" || value == "no" || value == "disable" || value == "-")
        reverse = false;
      else if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos)
        reverse = value.find_first_not_of('0') != std::string::npos;
    }
  }
  return reverse;
}

bool finished(const Journal& j) { return j.end && !j.end->failed; }

// "journal FILE of DATE": which run, for messages.
std::string journal_of(const std::string& path, const JournalHeader& h) {
  return "journal " + path + " of " + format_utc(h.start_ns);
}

// The refusal for a run that did not finish and whose journal cannot be read.
Error unreadable_unfinished_run(const std::string& given, const std::string& noun, const std::string& path,
                                const JournalHeader& header, const std::string& reason,
                                const std::string& journal_dir) {
  return Error{kExitRefused,
               given + ": an earlier " + noun + " of it (" + journal_of(path, header) + ") did not finish, and its " +
                   "journal cannot be read (" + reason + "): which entries it shifted is unknown, and shifting now " +
                   "might shift them twice; nothing changed. Compare the tree with what `volprep journal show " + path +
                   "` can read, put right by hand what that run left half done, then move the journal out of " +
                   journal_dir};
}

}  // namespace

Error unreadable_unfinished_shift(const std::string& given, const std::string& path, const JournalHeader& header,
                                  const std::string& reason, const std::string& journal_dir) {
  return unreadable_unfinished_run(given, "shift", path, header, reason, journal_dir);
}

bool is_run_of(const std::string& command_line, std::string_view command) {
  const auto words = option_words(command_line);  // the program, its global flags, the command
  for (size_t i = 1; i < words.size(); ++i)
    if (!words[i].empty() && words[i][0] != '-') return words[i] == command;
  return false;
}

bool is_reverse_run(const std::string& command_line) { return reverse_in_text(command_line); }

bool gives_option(const std::string& command_line, std::string_view option) {
  for (std::string_view word : option_words(command_line)) {
    if (word == option || (word.starts_with(option) && word.substr(option.size()).starts_with('='))) return true;
  }
  return false;
}

bool is_run_of(const JournalHeader& h, std::string_view command) {
  return h.command.empty() ? is_run_of(h.command_line, command) : h.command == command;
}

bool is_reverse_run(const JournalHeader& h) { return h.command.empty() ? is_reverse_run(h.command_line) : h.reverse; }

RunsOf shifts_of(const JournalRoot& volume, const std::string& given) {
  return {"shift", "shift", given, "this tree", [volume](const JournalHeader& h) { return root_of(h) == volume; }};
}

Result<RunHistory> run_history(std::span<const Journal> journals, std::span<const UnreadJournal> unread,
                               const RunsOf& runs, const std::string& journal_dir) {
  auto of_target = [&](const JournalHeader& h) { return is_run_of(h, runs.command) && runs.on_target(h); };
  auto undone = [&](const std::string& path) {
    return std::any_of(journals.begin(), journals.end(), [&](const Journal& r) {
      return r.header.rollback_of == base_name(path) && finished(r);
    });
  };
  auto stands = [&](const Journal& j) { return of_target(j.header) && finished(j) && !undone(j.path); };

  // A journal that might be an unfinished run on the target and cannot say which entries it
  // shifted: going on could shift them twice. One a finished rollback undid was read whole
  // by it, and every entry it changed put back.
  for (const UnreadJournal& u : unread) {
    if (u.headerless) continue;  // nothing in it was ever synced: it changed nothing
    if (!u.header)
      return Error{kExitRefused,
                   runs.given + ": the journal " + u.path + " cannot be read (" + u.reason + "), so whether it is a " +
                       runs.noun + " of " + runs.target + " that did not finish is unknown, and shifting now might " +
                       "shift twice what that run changed; nothing changed. `volprep journal show " + u.path +
                       "` shows what can be read of it; move it out of " + journal_dir + " once you know it is no " +
                       "unfinished " + runs.noun + " of " + runs.given};
    if (of_target(*u.header) && !undone(u.path))
      return unreadable_unfinished_run(runs.given, runs.noun, u.path, *u.header, u.reason, journal_dir);
  }

  // Finished reverse runs through the same map, after a forward run, that took the target
  // back (one of the whole target, or reverses of parts (migrate-volumes --volume) that
  // together took back every part the forward run took): that forward run is used up, and a
  // second --reverse must not take its map again.
  auto reversed = [&](const Journal& forward) {
    std::set<std::string> left;
    if (runs.parts)
      for (std::string& part : runs.parts(forward)) left.insert(std::move(part));
    const bool took_parts = !left.empty();
    for (const Journal& r : journals) {
      if (r.header.start_ns <= forward.header.start_ns || !stands(r) || !is_reverse_run(r.header) ||
          r.header.uid_map != forward.header.uid_map || r.header.gid_map != forward.header.gid_map)
        continue;
      if (!(runs.partial && runs.partial(r.header))) return true;
      if (runs.parts)
        for (const std::string& part : runs.parts(r)) left.erase(part);
    }
    return took_parts && left.empty();
  };
  RunHistory out;
  for (const Journal& j : journals) {
    if (stands(j) && !is_reverse_run(j.header)) {  // newest wins
      out.forward = reversed(j) ? std::nullopt : std::optional(j);
      out.back.reset();
    } else if (stands(j) && !(runs.partial && runs.partial(j.header))) {
      out.back = j;
    }
    if (finished(j) || !of_target(j.header) || undone(j.path)) continue;
    bool settled = std::any_of(journals.begin(), journals.end(), [&](const Journal& later) {
      return later.header.start_ns > j.header.start_ns && stands(later);
    });
    if (!settled) out.unfinished.push_back(j);
  }
  return out;
}

Result<ShiftHistory> shift_history(std::span<const Journal> journals, std::span<const UnreadJournal> unread,
                                   const JournalRoot& volume, const std::string& given,
                                   const std::string& journal_dir) {
  return run_history(journals, unread, shifts_of(volume, given), journal_dir);
}

bool shifts_ids(const Mapping& m) {
  return !m.remapping_off && !m.uid_map.empty() && !m.gid_map.empty() && !m.uid_map.is_identity() &&
         !m.gid_map.is_identity();
}

Result<ReverseMap> choose_reverse_map(const Mapping& options, bool named, std::span<const ForwardShift> forwards,
                                      const std::string& journal_dir, const std::string& noun) {
  ReverseMap out;
  // Each PATH's forward shift, its maps read back.
  struct Read {
    const ForwardShift* forward;
    IdMap uid_map, gid_map;
  };
  std::vector<Read> read;
  for (const ForwardShift& f : forwards) {
    if (!f.journal) continue;
    const JournalHeader& h = f.journal->header;
    auto uid = IdMap::parse_proc(h.uid_map, f.journal->path + " (uid map)");
    auto gid = IdMap::parse_proc(h.gid_map, f.journal->path + " (gid map)");
    if (!uid || !gid) return Error{kExitConfig, (uid ? gid : uid).error().message};
    read.push_back({&f, std::move(*uid), std::move(*gid)});
  }
  auto describe = [](const IdMap& u, const IdMap& g) {
    return "uid map " + u.describe() + " and gid map " + g.describe();
  };

  if (shifts_ids(options)) {
    out.uid_map = options.uid_map;
    out.gid_map = options.gid_map;
    out.source = options.source;
    for (const Read& r : read)
      if (r.uid_map != out.uid_map || r.gid_map != out.gid_map)
        out.warnings.push_back(r.forward->given + ": its forward " + noun + " (" +
                               journal_of(r.forward->journal->path, r.forward->journal->header) + ") ran through " +
                               describe(r.uid_map, r.gid_map) + ", not this map; shifting back through " +
                               describe(out.uid_map, out.gid_map) + " from " + options.source + " as told");
    return out;
  }
  const std::string name_it = ": name the map that was in use (--userns-remap default, --map 0:500000:65536, ...)";
  if (named)
    return config_error(options.source + ": remapping is off, so container ids are host ids and there is nothing "
                                         "to shift back" + name_it);
  for (const ForwardShift& f : forwards)
    if (!f.journal)
      return config_error("remapping is off (" + options.source + "), and no finished " + noun + " of " + f.given +
                          " stands in " + journal_dir + " to take the map it went through from" + name_it);
  const Read& first = read.front();
  for (const Read& r : read)
    if (r.uid_map != first.uid_map || r.gid_map != first.gid_map)
      return config_error(first.forward->given + " and " + r.forward->given +
                          " were shifted through different maps (" +
                          journal_of(first.forward->journal->path, first.forward->journal->header) + ": " +
                          describe(first.uid_map, first.gid_map) + "; " +
                          journal_of(r.forward->journal->path, r.forward->journal->header) + ": " +
                          describe(r.uid_map, r.gid_map) + "): shift them back one at a time");
  out.uid_map = first.uid_map;
  out.gid_map = first.gid_map;
  out.source = "the forward " + noun + (read.size() == 1 ? "'s " : "s' ");
  for (size_t i = 0; i < read.size(); ++i)
    out.source += (i ? ", " : "") + journal_of(read[i].forward->journal->path, read[i].forward->journal->header);
  return out;
}

}  // namespace volprep
