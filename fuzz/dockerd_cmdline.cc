// A running dockerd's command line, /proc/PID/cmdline, read through read_dockerd_process from
// a fake proc directory whose process 1 is a root-owned dockerd (the fuzzer runs as root).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fuzz_input.h"
#include "volprep/daemon_config.h"

using namespace volprep;

namespace {
std::string proc_root;

void write_file(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), std::streamsize(content.size()));
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  proc_root = fuzz::temp_dir("proc");
  std::filesystem::create_directories(proc_root + "/bin");
  std::filesystem::create_directories(proc_root + "/1");
  write_file(proc_root + "/bin/dockerd", "");
  ::chmod((proc_root + "/bin/dockerd").c_str(), 0755);
  write_file(proc_root + "/1/status", "Name:\tdockerd\nUid:\t0\t0\t0\t0\n");
  std::filesystem::create_symlink(proc_root + "/bin/dockerd", proc_root + "/1/exe");
  // What read_dockerd_process requires of the binary, so that every input reaches cmdline.
  if (::geteuid() != 0) {
    std::fprintf(stderr, "dockerd_cmdline: run as root (the fake dockerd must be root's)\n");
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_file(proc_root + "/1/cmdline", fuzz::as_text(data, size));
  auto process = read_dockerd_process(proc_root, 1);
  if (!process) __builtin_trap();  // the fake daemon is always trusted
  auto flags = parse_dockerd_args(process->args);
  (void)flags;
  return 0;
}
