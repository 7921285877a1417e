#include "volprep/chmod_spec.h"

#include <sys/stat.h>

namespace volprep {

Result<ChmodSpec> ChmodSpec::parse(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    return usage_error("--chmod \"" + spec + "\": " + why);
  };
  ChmodSpec out;
  if (spec.empty()) return bad("empty mode");
  if (spec.find_first_not_of("01234567") == std::string::npos) {
    if (spec.size() > 4) return bad("an octal mode has at most 4 digits");
    // chmod's "=" for every class: what it leaves out of setuid and setgid is kept on a
    // directory (chmod does so for up to 4 digits).
    Clause cl;
    cl.who = 07777;
    cl.op = '=';
    cl.perm = uint32_t(std::stoul(spec, nullptr, 8));
    out.clauses_.push_back(cl);
    return out;
  }
  size_t i = 0;
  while (i <= spec.size()) {
    uint32_t who = 0;
    for (; i < spec.size(); ++i) {
      char c = spec[i];
      if (c == 'u') who |= S_ISUID | S_IRWXU;
      else if (c == 'g') who |= S_ISGID | S_IRWXG;
      else if (c == 'o') who |= S_ISVTX | S_IRWXO;
      else if (c == 'a') who |= S_ISUID | S_ISGID | S_ISVTX | 0777;
      else break;
    }
    if (who == 0) who = S_ISUID | S_ISGID | S_ISVTX | 0777;
    if (i < spec.size() && spec[i] >= '0' && spec[i] <= '7')
      return bad("a numeric mode stands alone (755), not in a list of symbolic ones (at offset " +
                 std::to_string(i) + ")");
    if (i >= spec.size() || (spec[i] != '+' && spec[i] != '-' && spec[i] != '='))
      return bad("expected +, - or = at offset " + std::to_string(i));
    while (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == '=')) {
      Clause cl;
      cl.who = who;
      cl.op = spec[i++];
      for (; i < spec.size() && spec[i] != ',' && spec[i] != '+' && spec[i] != '-' &&
             spec[i] != '=';
           ++i) {
        switch (spec[i]) {
          case 'r': cl.perm |= 0444; break;
          case 'w': cl.perm |= 0222; break;
          case 'x': cl.perm |= 0111; break;
          case 'X': cl.cond_x = true; break;
          case 's': cl.perm |= S_ISUID | S_ISGID; break;
          case 't': cl.perm |= S_ISVTX; break;
          case 'u': cl.copy = true; cl.copy_from = 6; break;
          case 'g': cl.copy = true; cl.copy_from = 3; break;
          case 'o': cl.copy = true; cl.copy_from = 0; break;
          default: return bad(std::string("unknown permission '") + spec[i] + "'");
        }
      }
      out.clauses_.push_back(cl);
    }
    if (i == spec.size()) break;
    if (spec[i] != ',') return bad("expected ',' at offset " + std::to_string(i));
    ++i;
    if (i == spec.size()) return bad("trailing ','");
  }
  return out;
}

uint32_t ChmodSpec::apply(uint32_t mode) const {
  uint32_t perms = mode & 07777;
  const bool is_dir = S_ISDIR(mode);
  for (const Clause& cl : clauses_) {
    uint32_t bits = cl.perm;
    // X looks at the mode as it stands before this clause, as chmod does.
    if (cl.cond_x && (is_dir || (perms & 0111))) bits |= 0111;
    if (cl.copy) {
      uint32_t from = (perms >> cl.copy_from) & 7;
      bits |= from << 6 | from << 3 | from;
    }
    // chmod keeps a directory's setuid and setgid bits unless the clause names them (an 's'
    // for a class that has the bit, or an octal mode that sets it).
    const uint32_t kept = is_dir ? (S_ISUID | S_ISGID) & ~(cl.who & cl.perm) : 0;
    bits &= cl.who & ~kept;
    switch (cl.op) {
      case '+': perms |= bits; break;
      case '-': perms &= ~bits; break;
      case '=': perms = (perms & (~cl.who | kept)) | bits; break;
    }
  }
  return perms;
}

}  // namespace volprep
