// ChmodSpec: chmod's symbolic mode syntax ("u+rwX,g+rX,o-rwx", "a=rX", or octal "0750").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "volprep/error.h"

namespace volprep {

class ChmodSpec {
 public:
  // Parses SPEC; errors are usage errors naming the text. Unlike chmod(1), a clause with no
  // who ("+x") means "a" and does not consult the umask: volprep's result must not depend
  // on the environment it runs in.
  static Result<ChmodSpec> parse(const std::string& spec);

  // The permission bits (07777) after applying the spec to `mode` (with its type bits).
  uint32_t apply(uint32_t mode) const;

 private:
  struct Clause {
    uint32_t who = 0;    // mask of the bits the clause may touch (o: rwx and sticky)
    char op = '=';       // '+', '-', '='
    uint32_t perm = 0;   // bits from r, w, x, s, t (or an octal mode)
    bool cond_x = false; // X: execute only for directories or if some execute bit is set
    bool copy = false;   // u, g or o as the permission: copy from that class
    int copy_from = 0;   // shift of the class to copy (6 u, 3 g, 0 o)
  };
  std::vector<Clause> clauses_;  // an octal mode is one '=' clause for every class
};

}  // namespace volprep
