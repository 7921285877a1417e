// prepare_volume: the run `volprep prepare` makes of one volume, the engine (engine.h) with
// the policy its target asks for (policy.h).
#pragma once

#include "volprep/engine.h"

namespace volprep {

struct PrepareConfig : RunConfig {
  Target target;
};
using PrepareResult = RunResult;

PrepareResult prepare_volume(const VolumeRoot& volume, const PrepareConfig& config,
                             Progress* progress = nullptr);

}  // namespace volprep
