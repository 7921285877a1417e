// The journal reader, through read_journal(path) alone: rollback believes what it reads.
// The first byte picks how the rest becomes a file: odd, raw bytes; even, records framed with
// valid checksums (so that the fuzzer gets past them): the magic, a version byte, then
// records of kind byte, 16-bit little-endian length and payload.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "fuzz_input.h"
#include "volprep/journal.h"

using namespace volprep;

namespace {
std::string path;
int fd = -1;

std::string framed_file(std::string_view in) {
  std::string out(kJournalMagic, sizeof kJournalMagic);
  uint32_t version = in.empty() ? kJournalVersion : uint8_t(in[0]);
  if (!in.empty()) in.remove_prefix(1);
  for (int i = 0; i < 4; ++i) out.push_back(char(version >> (8 * i)));
  while (in.size() >= 3) {
    char kind = in[0];
    size_t length = uint8_t(in[1]) | size_t(uint8_t(in[2])) << 8;
    in.remove_prefix(3);
    auto payload = in.substr(0, length);
    in.remove_prefix(payload.size());
    out += frame(kind, payload);
  }
  out += in;  // a torn tail
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char name[] = "/tmp/volprep-fuzz-journal.XXXXXX";
  fd = ::mkstemp(name);  // 0600, ours: read_journal believes only such a file
  if (fd < 0) std::abort();
  path = name;
  std::atexit([] { ::unlink(path.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto in = fuzz::as_text(data, size);
  std::string file = !in.empty() && (in[0] & 1) ? std::string(in.substr(1))
                                                 : framed_file(in.empty() ? in : in.substr(1));
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, file.data(), file.size(), 0) != ssize_t(file.size()))
    std::abort();
  if (auto j = read_journal(path)) {
    for (const auto& r : j->records) (void)path_of(*j, r);
  }
  (void)read_journal(path, JournalRead::kSummary);
  return 0;
}
