#include "volprep/plan.h"

namespace volprep {

std::optional<Change> plan_entry(const Entry& entry, const Target& target) {
  const EntryStat& st = entry.st;
  uint32_t mode = st.mode & 07777;
  if (target.chmod && !S_ISLNK(st.mode)) mode = target.chmod->apply(st.mode);
  if (st.uid == target.uid && st.gid == target.gid && mode == (st.mode & 07777))
    return std::nullopt;
  Change c;
  c.name = entry.name;
  c.before = st;
  c.uid = target.uid;
  c.gid = target.gid;
  c.mode = mode;
  return c;
}

}  // namespace volprep
