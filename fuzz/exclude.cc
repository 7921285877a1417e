// --exclude GLOB against entry paths: the first line is the path (a name in the tree may be
// anything but NUL and '/'), the rest are the patterns (command-line strings).
#include "fuzz_input.h"
#include "volprep/prepare.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto lines = fuzz::split(fuzz::as_text(data, size), '\n');
  std::string path = fuzz::c_string(lines[0]);
  std::vector<std::string> patterns;
  for (size_t i = 1; i < lines.size(); ++i) patterns.push_back(fuzz::c_string(lines[i]));
  const ExcludeSet excludes(patterns);
  (void)excludes.matches(path, false);
  (void)excludes.matches(path, true);
  (void)excludes.unmatched();
  return 0;
}
