#include "volprep/prepare.h"

namespace volprep {

PrepareResult prepare_volume(const VolumeRoot& volume, const PrepareConfig& config, Progress* progress) {
  return run_tree(volume, *make_prepare_policy(config.target), config, progress);
}

}  // namespace volprep
