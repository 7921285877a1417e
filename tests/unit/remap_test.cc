// The remap engine, end to end over host trees built in temporary directories, and the
// Docker-side inputs it reads (daemon.json, dockerd's command line, fake /proc, --version).
#include "volprep/remap.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "volprep/daemon_config.h"
#include "volprep/host_db.h"

namespace volprep {
namespace {

namespace fs = std::filesystem;

// A directory made with mkdtemp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/volprep-unit-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  void write(const std::string& rel, const std::string& content, bool executable = false) const {
    fs::path p = fs::path(path_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + p.string());
    if (executable) ::chmod(p.c_str(), 0755);
  }
  void mkdir(const std::string& rel) const { fs::create_directories(fs::path(path_) / rel); }
  void remove(const std::string& rel) const { fs::remove(fs::path(path_) / rel); }

 private:
  std::string path_;
};

const char kPasswd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "dockremap:x:999:999::/home/dockremap:/usr/sbin/nologin\n"
    "yadutaf:x:1000:1000:Yadutaf:/home/yadutaf:/bin/bash\n"
    "alice:x:1001:1001:Alice:/home/alice:/bin/bash\n"
    "testuser:x:1002:1002::/home/testuser:/bin/bash\n"
    "bob:x:1003:100:Bob:/home/bob:/bin/bash\n";

const char kGroup[] =
    "root:x:0:\n"
    "staff:x:50:\n"
    "users:x:100:bob\n"
    "dockremap:x:999:\n"
    "yadutaf:x:1000:\n"
    "alice:x:1001:\n"
    "testuser:x:1002:\n";

std::string remap_json(const std::string& value) {
  return "{\n  \"log-driver\": \"json-file\",\n  \"userns-remap\": \"" + value + "\"\n}\n";
}

// A host tree with the users and groups, an empty fake /proc, and helpers.
class RemapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.write("etc/passwd", kPasswd);
    host_.write("etc/group", kGroup);
    db_ = make_file_host_db(host_.path());
  }

  // Writes the subid files; either may be given as nullptr to leave it absent.
  void subids(const char* subuid, const char* subgid) {
    if (subuid) host_.write("etc/subuid", subuid);
    if (subgid) host_.write("etc/subgid", subgid);
  }
  void same_subids(const std::string& both) {
    host_.write("etc/subuid", both);
    host_.write("etc/subgid", both);
  }
  void daemon_json(const std::string& text) { host_.write("etc/docker/daemon.json", text); }
  void remap(const std::string& value) { daemon_json(remap_json(value)); }

  RemapOptions options(const char* docker_version = "28.0") const {
    RemapOptions o;
    o.proc_root = proc_.path();
    o.scan_for_daemon = false;
    if (docker_version) o.docker_version = docker_version;
    return o;
  }

  Mapping resolve_ok(const RemapOptions& o) {
    auto r = resolve_mapping(o, *db_);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : Mapping{};
  }
  Mapping resolve_ok(const char* docker_version = "28.0") {
    return resolve_ok(options(docker_version));
  }
  Error resolve_error(const RemapOptions& o) {
    auto r = resolve_mapping(o, *db_);
    EXPECT_FALSE(r.ok()) << "resolved to uid map " << (r.ok() ? r->uid_map.describe() : "");
    return r.ok() ? Error{kExitOk, "(no error)"} : r.error();
  }
  Error resolve_error(const char* docker_version = "28.0") {
    return resolve_error(options(docker_version));
  }

  std::string etc(const std::string& file) const { return host_ / ("etc/" + file); }

  static bool has_finding(const Mapping& m, Finding::Level level, const std::string& where,
                          const std::string& text) {
    for (const auto& f : m.findings)
      if (f.level == level && (where.empty() || f.where == where) &&
          f.message.find(text) != std::string::npos)
        return true;
    return false;
  }
  static std::string all_findings(const Mapping& m) {
    std::string s;
    for (const auto& f : m.findings) s += f.text() + "\n";
    return s;
  }

  TempDir host_, proc_;
  std::unique_ptr<HostDb> db_;
};

#define EXPECT_CONTAINS(haystack, needle)                                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                 \
      << "expected to find: " << (needle) << "\n                in: " << (haystack)

// ---- Docker userns-remap ----------------------------------------------------------------

TEST_F(RemapTest, DockremapUser) {
  remap("dockremap");
  same_subids("dockremap:500000:65536\n");
  Mapping m = resolve_ok();
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_EQ(m.uid_map.to_host(0), 500000u);
  EXPECT_EQ(m.uid_map.to_host(1000), 501000u);
  EXPECT_FALSE(m.uid_map.to_host(65536).has_value());
  EXPECT_EQ(m.gid_map.to_host(1000), 501000u);
  ASSERT_TRUE(m.data_root.has_value());
  EXPECT_EQ(*m.data_root, "/var/lib/docker/500000.500000");
  EXPECT_FALSE(m.remapping_off);
  EXPECT_FALSE(m.has_errors()) << all_findings(m);
  EXPECT_TRUE(m.findings.empty()) << all_findings(m);
  EXPECT_CONTAINS(m.source, "\"dockremap\"");
  EXPECT_CONTAINS(m.source, etc("docker/daemon.json") + ":3");
  ASSERT_EQ(m.uid_origins.size(), 1u);
  EXPECT_CONTAINS(m.uid_origins[0], etc("subuid") + ":1");
  ASSERT_EQ(m.gid_origins.size(), 1u);
  EXPECT_CONTAINS(m.gid_origins[0], etc("subgid") + ":1");
}

TEST_F(RemapTest, DefaultMeansDockremap) {
  remap("default");
  same_subids("dockremap:100000:65536\n");
  Mapping m = resolve_ok();
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_EQ(*m.data_root, "/var/lib/docker/100000.100000");
}

// "default" before dockremap exists: dockerd creates the user and appends 65536 ids from
// 100000, past the ranges it looks at (moby v28.5.2 internal/usergroup/add_linux.go
// findNextRangeStart: root's own lines; v27.5.0 pkg/idtools/usergroupadd_linux.go:131: every
// line), unless dockremap has lines already.
TEST_F(RemapTest, DefaultWithoutDockremapUser) {
  host_.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/h:/bin/sh\n");
  remap("default");
  same_subids("alice:100000:65536\nroot:300000:10\n");
  Mapping m = resolve_ok("28.0");
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));  // 28 ignores alice's line
  EXPECT_EQ(m.gid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_CONTAINS(m.source, "after dockerd creates it");
  EXPECT_TRUE(has_finding(m, Finding::kWarning, "", "does not exist yet")) << all_findings(m);
  EXPECT_EQ(m.data_root.value_or("(none)"), "/var/lib/docker/100000.100000");

  m = resolve_ok("27.5");  // every line: past alice's
  EXPECT_EQ(m.uid_map, IdMap({{0, 165536, 65536}}));
  same_subids("root:100000:65536\nalice:165536:65536\n");
  EXPECT_EQ(resolve_ok("28.0").uid_map, IdMap({{0, 165536, 65536}}));
  EXPECT_EQ(resolve_ok("20.10").uid_map, IdMap({{0, 231072, 65536}}));

  // Lines of its own already: dockerd uses them.
  same_subids("dockremap:500000:65536\n");
  EXPECT_EQ(resolve_ok("28.0").uid_map, IdMap({{0, 500000, 65536}}));
}

TEST_F(RemapTest, UserAndGroupLooksUpSubgidByUser) {
  remap("testuser:staff");
  subids("testuser:231072:65536\n", "testuser:300000:65536\nstaff:400000:65536\n");
  Mapping m = resolve_ok();
  EXPECT_EQ(m.uid_map, IdMap({{0, 231072, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 300000, 65536}}));
  EXPECT_EQ(*m.data_root, "/var/lib/docker/231072.300000");
  EXPECT_CONTAINS(m.source, "group \"staff\"");
}

TEST_F(RemapTest, UidBehavesAsItsUser) {
  subids("testuser:231072:65536\n", "testuser:300000:65536\nstaff:400000:65536\n");
  remap("testuser");
  Mapping by_name = resolve_ok();
  remap("1002");
  Mapping by_uid = resolve_ok();
  EXPECT_EQ(by_uid.uid_map, by_name.uid_map);
  EXPECT_EQ(by_uid.gid_map, by_name.gid_map);
  EXPECT_EQ(by_uid.uid_map, IdMap({{0, 231072, 65536}}));
  EXPECT_EQ(by_uid.gid_map, IdMap({{0, 300000, 65536}}));
  EXPECT_CONTAINS(by_uid.source, "user \"testuser\", group \"testuser\"");
}

TEST_F(RemapTest, UidAndGid) {
  subids("testuser:231072:65536\n", "testuser:300000:65536\n");
  remap("1002:50");
  Mapping m = resolve_ok();
  EXPECT_EQ(m.uid_map, IdMap({{0, 231072, 65536}}));
  EXPECT_CONTAINS(m.source, "group \"staff\"");
}

TEST_F(RemapTest, UidWithoutSameNumberedGroupFails) {
  same_subids("bob:100000:65536\n");
  remap("1003");
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "Gid 1003 has no entry in /etc/group");
  // With an explicit group it works.
  remap("1003:100");
  Mapping m = resolve_ok();
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
}

TEST_F(RemapTest, UnknownUserOrGroup) {
  same_subids("dockremap:100000:65536\n");
  remap("nosuch");
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "Error during uid lookup for \"nosuch\"");

  remap("4242");
  e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "Uid 4242 has no entry in /etc/passwd");

  remap("dockremap:nogroup");
  e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "Error during groupname lookup for \"nogroup\"");

  remap("dockremap:4242");
  e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "Gid 4242 has no entry");

  // bob has no group of his own name.
  remap("bob");
  e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "Error during gid lookup for \"bob\"");
}

TEST_F(RemapTest, UserWithoutSubuidRanges) {
  subids("dockremap:100000:65536\n", "alice:100000:65536\n");
  remap("alice");
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "no subuid ranges found for user \"alice\"");
}

// Docker's words, by release: 20.10 to 27 name the file (moby v20.10.24
// pkg/idtools/idtools_unix.go:293); 28 reads both files with one function that says "subuid"
// (v28.0.0 internal/usergroup/lookup_unix.go:173); the prefix is errors.Wrap's "Can't create
// ID mappings" up to 29.6 (v20.10.24 daemon/daemon_unix.go:1193) and "error creating ID
// mappings" since 29.7.0 (docker-v29.7.0 daemon/daemon_unix.go:1373).
TEST_F(RemapTest, UserWithoutSubgidRanges) {
  subids("alice:100000:65536\n", "dockremap:100000:65536\n");
  remap("alice");
  struct Case {
    const char* version;
    const char* words;
  } cases[] = {
      {"20.10", "Can't create ID mappings: no subgid ranges found for user \"alice\""},
      {"27.5", "Can't create ID mappings: no subgid ranges found for user \"alice\""},
      {"28.0", "Can't create ID mappings: no subuid ranges found for user \"alice\""},
      {"29.6", "Can't create ID mappings: no subuid ranges found for user \"alice\""},
      {"29.7", "error creating ID mappings: no subuid ranges found for user \"alice\""},
      {nullptr, "error creating ID mappings: no subuid ranges found for user \"alice\""},
  };
  for (const auto& c : cases) {
    Error e = resolve_error(c.version);
    EXPECT_EQ(e.code, kExitConfig);
    EXPECT_EQ(e.message.rfind(c.words, 0), 0u) << (c.version ? c.version : "none") << ": " << e.message;
  }
  // A line 20.10 cannot parse fails the mapping too, behind the same prefix.
  subids("alice:100000\n", "alice:100000:65536\n");
  EXPECT_EQ(resolve_error("20.10").message.rfind(
                "Can't create ID mappings: Cannot parse subuid/gid information: ", 0),
            0u);
}

TEST_F(RemapTest, SeveralRangesForOneUser) {
  same_subids("yadutaf:1000:1\nyadutaf:100000:65535\n");
  remap("yadutaf");
  for (const char* version : {"28.0", "20.10"}) {
    Mapping m = resolve_ok(version);
    EXPECT_EQ(m.uid_map, IdMap({{0, 1000, 1}, {1, 100000, 65535}})) << version;
    EXPECT_EQ(m.uid_map.to_host(0), 1000u);
    EXPECT_EQ(m.uid_map.to_host(2), 100001u);
    EXPECT_EQ(m.uid_map.to_host(65535), 165534u);
    EXPECT_FALSE(m.uid_map.to_host(65536).has_value());
    EXPECT_EQ(*m.data_root, "/var/lib/docker/1000.1000");
    EXPECT_EQ(m.uid_origins.size(), 2u);
    EXPECT_FALSE(m.has_errors()) << all_findings(m);
  }
}

const char kNoisySubid[] =
    "# ranges for dockerd\n"
    "\n"
    "this line is garbage\n"
    "dockremap:500000:65536\n";

TEST_F(RemapTest, GarbageLineUnderDocker28IsAWarning) {
  remap("dockremap");
  same_subids(kNoisySubid);
  Mapping m = resolve_ok("28.0");
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_FALSE(m.has_errors()) << all_findings(m);
  EXPECT_TRUE(has_finding(m, Finding::kWarning, etc("subuid") + ":3", "garbage"))
      << all_findings(m);
  EXPECT_TRUE(has_finding(m, Finding::kWarning, etc("subgid") + ":3", "garbage"))
      << all_findings(m);
  bool found = false;
  for (const auto& d : m.details)
    if (d.find("Docker 28") != std::string::npos && d.find("--docker-version") != std::string::npos)
      found = true;
  EXPECT_TRUE(found);
}

TEST_F(RemapTest, GarbageLineUnderDocker2010IsFatal) {
  remap("dockremap");
  same_subids(kNoisySubid);
  Error e = resolve_error("20.10");
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "Format not correct");
  EXPECT_CONTAINS(e.message, etc("subuid") + ":3");
}

TEST_F(RemapTest, JunkStartUnderDocker28MapsOntoHostRoot) {
  remap("dockremap");
  same_subids("dockremap:abc:65536\n");
  Mapping m = resolve_ok("28.0");
  EXPECT_EQ(m.uid_map, IdMap({{0, 0, 65536}}));
  EXPECT_EQ(m.uid_map.to_host(0), 0u);
  EXPECT_TRUE(m.has_errors());
  EXPECT_TRUE(has_finding(m, Finding::kError, etc("subuid") + ":1", "\"abc\"")) << all_findings(m);
  EXPECT_EQ(*m.data_root, "/var/lib/docker/0.0");

  Error e = resolve_error("20.10");
  EXPECT_CONTAINS(e.message, "String to int conversion failed");
}

TEST_F(RemapTest, UidKeyedLinesByRelease) {
  remap("dockremap");
  same_subids(
      "dockremap:100000:65536\n"
      "999:200000:65536\n"
      "dockremap:300000:65536\n");
  Mapping old_rules = resolve_ok("20.10");
  EXPECT_EQ(old_rules.uid_map, IdMap({{0, 200000, 65536}}));
  EXPECT_EQ(old_rules.gid_map, IdMap({{0, 200000, 65536}}));
  EXPECT_EQ(*old_rules.data_root, "/var/lib/docker/200000.200000");

  Mapping new_rules = resolve_ok("28.0");
  EXPECT_EQ(new_rules.uid_map,
            IdMap({{0, 100000, 65536}, {65536, 200000, 65536}, {131072, 300000, 65536}}));
  EXPECT_EQ(*new_rules.data_root, "/var/lib/docker/100000.100000");
}

// Which 20.10 reads the file how (moby v20.10.0 and v20.10.4 pkg/idtools/idtools_unix.go).
TEST_F(RemapTest, UidKeyedLinesBy2010PatchRelease) {
  remap("dockremap");
  same_subids("dockremap:100000:65536\n999:500000:65536\n");
  EXPECT_EQ(resolve_ok("20.10.3").uid_map, IdMap({{0, 100000, 65536}, {65536, 500000, 65536}}));
  EXPECT_EQ(resolve_ok("20.10.4").uid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_EQ(resolve_ok("20.10").uid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_EQ(resolve_ok("28.0").uid_map, IdMap({{0, 100000, 65536}, {65536, 500000, 65536}}));
}

// Docker 19.03 (moby v19.03.15 daemon/daemon_unix.go:1179-1204, pkg/idtools/idtools.go:120):
// subgid by the remap group's name, then the fallbacks uid:group, user:gid, uid:gid with the
// user's primary gid, keeping the first try's words.
TEST_F(RemapTest, Docker1903ReadsSubgidByTheGroup) {
  remap("testuser:staff");
  subids("testuser:100000:65536\n", "staff:300000:65536\n");
  Mapping m = resolve_ok("19.03");
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 300000, 65536}}));
  EXPECT_EQ(m.data_root.value_or("(none)"), "/var/lib/docker/100000.300000");
  EXPECT_CONTAINS(resolve_error("20.10").message, "no subgid ranges found for user \"testuser\"");

  // uid:group, then user:primary gid.
  subids("1002:100000:65536\n", "staff:300000:65536\n");
  EXPECT_EQ(resolve_ok("19.03").uid_map, IdMap({{0, 100000, 65536}}));
  subids("testuser:100000:65536\n", "1002:400000:65536\n");
  EXPECT_EQ(resolve_ok("19.03").gid_map, IdMap({{0, 400000, 65536}}));

  // Every try failing: the first one's words.
  subids("alice:100000:65536\n", "staff:300000:65536\n");
  EXPECT_EQ(resolve_error("19.03").message,
            "Can't create ID mappings: No subuid ranges found for user \"testuser\"");

  // Older releases are not modelled.
  Error e = resolve_error("18.09");
  EXPECT_EQ(e.code, kExitUsage);
  EXPECT_CONTAINS(e.message, "volprep models (19.03 and later)");
}

TEST_F(RemapTest, CountZeroLine) {
  remap("dockremap");
  same_subids("dockremap:100000\ndockremap:500000:65536\n");
  Mapping m = resolve_ok("28.0");
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 0}, {0, 500000, 65536}}));
  EXPECT_TRUE(has_finding(m, Finding::kWarning, etc("subuid") + ":1", "count of 0"))
      << all_findings(m);
  // resolve_mapping adds the kernel's verdict.
  EXPECT_TRUE(has_finding(m, Finding::kError, "", "the kernel will refuse this uid map"))
      << all_findings(m);
  EXPECT_TRUE(has_finding(m, Finding::kError, "", "the kernel will refuse this gid map"))
      << all_findings(m);
  EXPECT_TRUE(m.has_errors());
}

// Docker 28's reader (moby/sys user/v0.4.0 user/user.go parseParts) ignores the error of
// strconv.ParseInt, so a trailing comment makes the count 0; with no extent holding container
// id 0, Docker's root pair is -1, -1 (user/idtools.go getRootUIDGID) and its data root
// <data-root>/-1.-1 (moby v28.5.2 daemon/daemon_unix.go:1420).
TEST_F(RemapTest, TrailingCommentUnderDocker28GivesDataRootMinusOne) {
  remap("dockremap");
  same_subids("dockremap:500000:65536 # for userns-remap\n");
  Mapping m = resolve_ok("28.0");
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 0}}));
  EXPECT_EQ(m.data_root.value_or("(none)"), "/var/lib/docker/-1.-1");
  EXPECT_TRUE(has_finding(m, Finding::kError, "", "no extent of the uid map holds container id 0"))
      << all_findings(m);
  // Only the gid map lacking it is enough.
  subids("dockremap:500000:65536\n", "dockremap:500000:65536 # x\n");
  m = resolve_ok("29.7");
  EXPECT_EQ(m.data_root.value_or("(none)"), "/var/lib/docker/-1.-1");
  // A later extent holding container id 0 is what Docker uses.
  same_subids("dockremap:100000:0\ndockremap:500000:65536\n");
  EXPECT_EQ(resolve_ok("28.0").data_root.value_or("(none)"), "/var/lib/docker/500000.500000");
}

TEST_F(RemapTest, DockerRemapMappingAndValidationFindings) {
  same_subids("dockremap:100000\ndockremap:500000:65536\n");
  RemappedRoot root{"dockremap", "dockremap", 999, false};
  auto r = docker_remap_mapping(root, SubidRules::kDocker28, *db_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->uid_map, IdMap({{0, 100000, 0}, {0, 500000, 65536}}));
  EXPECT_FALSE(r->has_errors()) << all_findings(*r);
  add_validation_findings(*r);
  EXPECT_TRUE(r->has_errors());
  EXPECT_TRUE(has_finding(*r, Finding::kError, "", "count of 0")) << all_findings(*r);
}

TEST_F(RemapTest, RootMeansRemappingIsOff) {
  same_subids("dockremap:100000:65536\n");
  for (const char* value : {"root", "0", "0:0", "root:root", "0:root"}) {
    remap(value);
    Mapping m = resolve_ok();
    EXPECT_TRUE(m.remapping_off) << value;
    EXPECT_TRUE(m.uid_map.is_identity()) << value;
    EXPECT_TRUE(m.gid_map.is_identity()) << value;
    // dockerd still keeps its data below <data-root>/0.0 (moby v20.10.24
    // daemon/daemon_unix.go:1230; v28.5.2 daemon/daemon_unix.go:1419).
    EXPECT_EQ(m.data_root.value_or("(none)"), "/var/lib/docker/0.0") << value;
    EXPECT_FALSE(m.has_errors()) << value << ": " << all_findings(m);
    EXPECT_CONTAINS(m.source, "remapping is off");
  }
  daemon_json("{\"userns-remap\": \"root\", \"data-root\": \"/srv/docker/\"}");
  EXPECT_EQ(resolve_ok().data_root.value_or("(none)"), "/srv/docker/0.0");
  daemon_json("{}");
  EXPECT_FALSE(resolve_ok().data_root.has_value());
}

TEST_F(RemapTest, TooManyColons) {
  remap("a:b:c");
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_EQ(e.message, "Invalid user/group specification in --userns-remap: \"a:b:c\"");
}

TEST_F(RemapTest, FlagAndFileConflict) {
  remap("testuser");
  same_subids("testuser:231072:65536\ndockremap:100000:65536\n");
  RemapOptions o = options();
  o.userns_remap = "default";
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "specified both as a flag and in the configuration file");
  EXPECT_CONTAINS(e.message, "from flag: default");
  EXPECT_CONTAINS(e.message, "from file: testuser");
}

TEST_F(RemapTest, FlagWithoutFile) {
  same_subids("dockremap:100000:65536\n");
  RemapOptions o = options();
  o.userns_remap = "default";
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_CONTAINS(m.source, "--userns-remap");
  // A daemon.json without userns-remap does not conflict.
  daemon_json("{\"debug\": true}\n");
  m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
}

TEST_F(RemapTest, SixRanges) {
  std::string text;
  for (int i = 1; i <= 6; ++i) text += "dockremap:" + std::to_string(i * 100000) + ":1000\n";
  same_subids(text);
  remap("dockremap");
  Mapping m = resolve_ok();
  ASSERT_EQ(m.uid_map.extents().size(), 6u);
  EXPECT_EQ(m.uid_map.extents()[5], (Extent{5000, 600000, 1000}));
  EXPECT_EQ(m.uid_map.to_host(999), 100999u);
  EXPECT_EQ(m.uid_map.to_host(1000), 200000u);
  EXPECT_EQ(m.uid_map.to_host(5999), 600999u);
  EXPECT_FALSE(m.uid_map.to_host(6000).has_value());
  EXPECT_EQ(m.uid_map.validate(), "");
  EXPECT_FALSE(m.has_errors()) << all_findings(m);
  EXPECT_TRUE(has_finding(m, Finding::kWarning, "", "6 extents")) << all_findings(m);
  EXPECT_TRUE(has_finding(m, Finding::kWarning, "", "at most 5")) << all_findings(m);
}

TEST_F(RemapTest, FiveRangesDoNotWarn) {
  std::string text;
  for (int i = 1; i <= 5; ++i) text += "dockremap:" + std::to_string(i * 100000) + ":1000\n";
  same_subids(text);
  remap("dockremap");
  Mapping m = resolve_ok();
  EXPECT_EQ(m.uid_map.extents().size(), 5u);
  EXPECT_TRUE(m.findings.empty()) << all_findings(m);
}

TEST_F(RemapTest, OverlappingRangesAreRefused) {
  same_subids("dockremap:100000:65536\ndockremap:150000:65536\n");
  remap("dockremap");
  Mapping m = resolve_ok();
  EXPECT_TRUE(has_finding(m, Finding::kWarning, etc("subuid") + ":2", "overlaps"))
      << all_findings(m);
  EXPECT_TRUE(has_finding(m, Finding::kError, "", "host ids")) << all_findings(m);
}

// A map onto id 4294967295, (uid_t)-1, makes every chown a no-op reported as a change:
// refused from every source, as an error --force does not override.
TEST_F(RemapTest, IdsReachingMinusOneAreRefusedFromEverySource) {
  remap("dockremap");
  for (const char* line : {"dockremap:4294967295:1\n", "dockremap:4294901760:65536\n",
                           "dockremap:4294967290:100\n"}) {
    same_subids(line);
    Error e = resolve_error();
    EXPECT_EQ(e.code, kExitConfig) << line;
    EXPECT_CONTAINS(e.message, etc("subuid") + ":1: ");
    EXPECT_CONTAINS(e.message, "4294967295");
  }
  subids("dockremap:100000:65536\n", "dockremap:100000:65536\ndockremap:4294967295:1\n");
  EXPECT_CONTAINS(resolve_error().message, etc("subgid") + ":2: ");
  // Container ids run past the top through the running total of overlapping host ranges.
  same_subids("dockremap:1:3000000000\ndockremap:1:3000000000\n");
  Error e = resolve_error();
  EXPECT_CONTAINS(e.message, etc("subuid") + ":2: ");
  EXPECT_CONTAINS(e.message, "container ids 3000000000..5999999999");

  // Rootless: the ranges, and the user's own id.
  same_subids("alice:4294967000:1000\n");
  RemapOptions o = options();
  o.rootless_user = "alice";
  EXPECT_CONTAINS(resolve_error(o).message, etc("subuid") + ":1: ");
  host_.write("etc/passwd", std::string(kPasswd) + "minus:x:4294967295:4294967295::/:/bin/sh\n");
  o.rootless_user = "minus";
  EXPECT_CONTAINS(resolve_error(o).message, "user \"minus\"'s own id: host ids 4294967295");

  // A process's maps, as a fake /proc may give them.
  for (const char* map : {"0 4294967295 1\n", "4294967295 0 1\n", "0 4294967200 100\n"}) {
    proc_.write("9/uid_map", std::string("0 100000 10\n") + map);
    proc_.write("9/gid_map", "0 100000 10\n");
    o = options();
    o.pid = 9;
    e = resolve_error(o);
    EXPECT_EQ(e.code, kExitConfig) << map;
    EXPECT_CONTAINS(e.message, proc_ / "9/uid_map:2: ");
  }
  // The initial namespace's identity map stops short of it.
  proc_.write("9/uid_map", "0 0 4294967295\n");
  proc_.write("9/gid_map", "0 0 4294967295\n");
  EXPECT_TRUE(resolve_ok(o).remapping_off);

  // Explicit maps: a bad command line.
  for (auto field : {&RemapOptions::maps, &RemapOptions::uid_maps, &RemapOptions::gid_maps}) {
    for (const char* spec : {"0:4294967295:1", "4294967295:0:1", "0:4294967200:100"}) {
      o = options();
      o.maps = {"0:100000:10"};
      o.*field = {spec};
      e = resolve_error(o);
      EXPECT_EQ(e.code, kExitUsage) << spec;
      EXPECT_CONTAINS(e.message, "runs past 4294967294");
    }
  }
}

// ---- daemon.json and its location ---------------------------------------------------------

TEST_F(RemapTest, NoDaemonJsonMeansNoRemapping) {
  same_subids("dockremap:100000:65536\n");
  Mapping m = resolve_ok();
  EXPECT_TRUE(m.remapping_off);
  EXPECT_TRUE(m.uid_map.is_identity());
  EXPECT_TRUE(m.gid_map.is_identity());
  EXPECT_FALSE(m.data_root.has_value());
  EXPECT_CONTAINS(m.source, "absent");
  EXPECT_TRUE(m.findings.empty()) << all_findings(m);
}

TEST_F(RemapTest, DaemonJsonWithoutRemap) {
  daemon_json("{\"debug\": true}\n");
  Mapping m = resolve_ok();
  EXPECT_TRUE(m.remapping_off);
  EXPECT_TRUE(m.uid_map.is_identity());
  remap("");
  m = resolve_ok();
  EXPECT_TRUE(m.remapping_off);
  EXPECT_FALSE(m.data_root_named);  // the default is not taken for a named one
  // Docker's default, where it is, is known all the same: refused as a PATH, as with remapping on.
  host_.mkdir("var/lib/docker");
  m = resolve_ok();
  EXPECT_EQ(m.base_data_root.value_or("(none)"), "/var/lib/docker");
  EXPECT_FALSE(m.data_root_named);
}

// With remapping off, a data root that does not resolve (a file, say) is not known, and a
// detail says why: remapping off needs none, so it is no error.
TEST_F(RemapTest, DaemonJsonWithoutRemapNamesADataRootThatIsNoDirectory) {
  host_.write("notadir", "x");
  daemon_json("{\"data-root\": \"/notadir\"}\n");
  Mapping m = resolve_ok();
  EXPECT_TRUE(m.remapping_off);
  EXPECT_FALSE(m.base_data_root.has_value());
  EXPECT_FALSE(m.data_root_named);
  EXPECT_CONTAINS(m.data_root_unusable, "notadir");
  std::string details;
  for (const auto& d : m.details) details += d + "\n";
  EXPECT_CONTAINS(details, "data root not known: ");
}

// With remapping off, a data root daemon.json names is kept (migrate-volumes --reverse moves
// volumes back there); there is no remapped root.
TEST_F(RemapTest, DaemonJsonWithoutRemapNamesADataRoot) {
  daemon_json("{\"data-root\": \"/srv/docker/\"}\n");
  Mapping m = resolve_ok();
  EXPECT_TRUE(m.remapping_off);
  EXPECT_FALSE(m.data_root.has_value());
  EXPECT_EQ(m.base_data_root.value_or("(none)"), "/srv/docker");
  EXPECT_TRUE(m.data_root_named);
}

TEST_F(RemapTest, NoSubuidFile) {
  remap("dockremap");
  subids(nullptr, "dockremap:100000:65536\n");
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "/etc/subuid");
  EXPECT_CONTAINS(e.message, "no such file");
}

TEST_F(RemapTest, NoSubgidFile) {
  remap("dockremap");
  subids("dockremap:100000:65536\n", nullptr);
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "/etc/subgid");
}

TEST_F(RemapTest, ExplicitConfigFile) {
  same_subids("dockremap:100000:65536\n");
  remap("root");  // the default location, not read
  host_.write("etc/docker/other.json", remap_json("dockremap"));
  RemapOptions o = options();
  o.config_file = "/etc/docker/other.json";
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_CONTAINS(m.source, host_ / "etc/docker/other.json:3");
}

TEST_F(RemapTest, ExplicitConfigFileMissing) {
  same_subids("dockremap:100000:65536\n");
  RemapOptions o = options();
  o.config_file = "/etc/docker/nosuch.json";
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "/etc/docker/nosuch.json");
  EXPECT_CONTAINS(e.message, "no such file or directory");
}

TEST_F(RemapTest, RelativeConfigFileIsReadFromTheWorkingDirectory) {
  same_subids("dockremap:100000:65536\n");
  TempDir cwd;
  cwd.write("daemon.json", remap_json("dockremap"));
  auto old = fs::current_path();
  fs::current_path(cwd.path());
  RemapOptions o = options();
  o.config_file = "daemon.json";
  auto r = resolve_mapping(o, *db_);
  fs::current_path(old);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->uid_map, IdMap({{0, 100000, 65536}}));
}

TEST_F(RemapTest, MalformedDaemonJson) {
  daemon_json("{\n  \"userns-remap\": \"default\"\n  \"debug\": true\n}\n");
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, etc("docker/daemon.json") + ":3:");
}

TEST_F(RemapTest, NonStringRemapValue) {
  daemon_json("{\"userns-remap\": 1000}\n");
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "\"userns-remap\" must be a string");
}

TEST_F(RemapTest, DataRootFromDaemonJson) {
  same_subids("dockremap:100000:65536\n");
  daemon_json("{\"userns-remap\": \"dockremap\", \"data-root\": \"/srv/docker/\"}\n");
  EXPECT_EQ(*resolve_ok().data_root, "/srv/docker/100000.100000");
  // "graph" is data-root to 20.10 only (moby v20.10.24 daemon/config/config.go:449).
  daemon_json("{\"userns-remap\": \"dockremap\", \"graph\": \"/old/docker\"}\n");
  EXPECT_EQ(*resolve_ok("20.10").data_root, "/old/docker/100000.100000");
  EXPECT_CONTAINS(resolve_error("28.0").message,
                  "the following directives don't match any configuration option: graph");
}

// A misspelt directive makes dockerd refuse to start, of every release (moby v20.10.24
// daemon/config/config.go:506, findConfigurationConflicts; the same at docker-v29.7.2); remap
// is not off, there is no daemon at all.
TEST_F(RemapTest, MisspeltUsernsRemapMakesDockerdRefuseToStart) {
  same_subids("dockremap:100000:65536\n");
  daemon_json("{\n  \"userns_remap\": \"default\"\n}\n");
  for (const char* version : {"20.10", "23.0", "28.0", "29.7"}) {
    Error e = resolve_error(version);
    EXPECT_EQ(e.code, kExitConfig);
    EXPECT_CONTAINS(e.message, etc("docker/daemon.json") + ":2:3: unable to configure the Docker "
                                   "daemon with file " + etc("docker/daemon.json") +
                                   ": the following directives don't match any configuration "
                                   "option: userns_remap");
  }
  EXPECT_CONTAINS(resolve_error(nullptr).message, "don't match any configuration option");
}

// An empty daemon.json: 20.10's json.Decoder says EOF and dockerd exits (v20.10.24
// daemon/config/config.go:399); since 23.0 it is an empty configuration (v23.0.0
// daemon/config/config.go:474).
TEST_F(RemapTest, EmptyDaemonJsonByRelease) {
  daemon_json(" \n");
  EXPECT_CONTAINS(resolve_error("20.10").message, "daemon.json: EOF (dockerd 20.10 refuses");
  EXPECT_TRUE(resolve_ok("23.0").remapping_off);
  EXPECT_TRUE(resolve_ok(nullptr).remapping_off);
}

// An existing data root is used with its symlinks resolved (moby v20.10.24 daemon/daemon.go:1541,
// v28.5.2 daemon/daemon.go:1541: fileutils.ReadSymlinkedDirectory); a missing one as written.
TEST_F(RemapTest, DataRootSymlinksAreResolved) {
  same_subids("dockremap:100000:65536\n");
  remap("dockremap");
  EXPECT_EQ(resolve_ok().data_root.value_or("(none)"), "/var/lib/docker/100000.100000");
  host_.mkdir("srv/docker");
  host_.mkdir("var/lib");
  ASSERT_EQ(::symlink("/srv/docker", (host_ / "var/lib/docker").c_str()), 0);
  Mapping m = resolve_ok();
  EXPECT_EQ(m.data_root.value_or("(none)"), "/srv/docker/100000.100000");
  // Relative links too, and a trailing slash in the setting.
  host_.mkdir("data/d");
  ASSERT_EQ(::symlink("../data/d", (host_ / "srv/link").c_str()), 0);
  daemon_json("{\"userns-remap\": \"dockremap\", \"data-root\": \"/srv/link/\"}");
  EXPECT_EQ(resolve_ok().data_root.value_or("(none)"), "/data/d/100000.100000");
  // A file is not a data root.
  host_.write("srv/file", "");
  daemon_json("{\"userns-remap\": \"dockremap\", \"data-root\": \"/srv/file\"}");
  EXPECT_EQ(resolve_error().code, kExitConfig);
}

TEST_F(RemapTest, BadDockerVersion) {
  same_subids("dockremap:100000:65536\n");
  remap("dockremap");
  Error e = resolve_error("twenty");
  EXPECT_EQ(e.code, kExitUsage);
  EXPECT_CONTAINS(e.message, "twenty");
}

const char kDpkgStatus[] =
    "Package: adduser\nStatus: install ok installed\nVersion: 3.134\n\n"
    "Package: docker.io\nStatus: install ok installed\nPriority: optional\n"
    "Description: Linux container runtime\n continued: Version: 99.0\n"
    "Version: 20.10.24+dfsg1-1+deb12u1\n\n"
    "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n";

// The Docker release comes from the host root's package database. Nothing under --host-root
// is ever run: its owner controls it.
TEST_F(RemapTest, DockerVersionFromTheHostsPackagesNeverByRunningItsFiles) {
  remap("dockremap");
  same_subids(kNoisySubid);
  host_.write("usr/bin/dockerd", "#!/bin/sh\ntouch '" + host_ / "ran" + "'\n"
              "echo 'Docker version 28.0.1, build 068a01e'\n", true);
  host_.write("usr/sbin/dockerd", "#!/bin/sh\ntouch '" + host_ / "ran" + "'\n", true);
  host_.write("var/lib/dpkg/status", kDpkgStatus);
  Error e = resolve_error(nullptr);
  EXPECT_CONTAINS(e.message, "Format not correct");

  same_subids("dockremap:500000:65536\n");
  Mapping m = resolve_ok(nullptr);
  std::string details;
  for (const auto& d : m.details) details += d + "\n";
  EXPECT_CONTAINS(details, "Docker 20.10 (strict), from " + host_ / "var/lib/dpkg/status" +
                               ": docker.io 20.10.24+dfsg1-1+deb12u1");

  // No package: Docker 28's rules, and still nothing run.
  host_.remove("var/lib/dpkg/status");
  same_subids(kNoisySubid);
  m = resolve_ok(nullptr);
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 65536}}));
  details.clear();
  for (const auto& d : m.details) details += d + "\n";
  EXPECT_CONTAINS(details, "no Docker version found");
  EXPECT_FALSE(fs::exists(host_ / "ran")) << "volprep ran a dockerd from the host root";
}

// ---- a running dockerd, in a fake /proc ---------------------------------------------------

const char kRootUids[] = "0\t0\t0\t0";

// A process in a fake /proc: comm, cmdline, the "Uid:" line of status, and exe pointing at
// `binary` (by default PROC/bin/dockerd, made by whoever runs the tests).
void fake_process(const TempDir& proc, int pid, const std::string& comm,
                  const std::vector<std::string>& argv, const std::string& uids = kRootUids,
                  std::string binary = "") {
  std::string cmdline;
  for (const auto& a : argv) cmdline += a + '\0';
  std::string dir = std::to_string(pid) + "/";
  proc.write(dir + "comm", comm + "\n");
  proc.write(dir + "cmdline", cmdline);
  proc.write(dir + "status", "Name:\t" + comm + "\nUmask:\t0022\nUid:\t" + uids + "\nGid:\t0\t0\t0\t0\n");
  if (binary.empty()) {
    binary = proc / "bin/dockerd";
    if (!fs::exists(binary)) proc.write("bin/dockerd", "#!/bin/sh\n", true);
  }
  fs::create_symlink(binary, proc / (dir + "exe"));
}

// Trusting a process means root owns it and its binary; the tests must run as root to fake one.
class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs to run as root to fake a root-owned dockerd";
  }
  TempDir proc_;
};

TEST_F(FakeProcTest, FindsOnlyDockerd) {
  fake_process(proc_, 100, "bash", {"bash"});
  fake_process(proc_, 4242, "dockerd", {"/usr/bin/dockerd", "--userns-remap=default", "-H", "fd://"});
  fake_process(proc_, 77, "dockerd", {"dockerd"});
  fake_process(proc_, 300, "containerd", {"containerd"});
  fake_process(proc_, 301, "dockerd-rootle", {"dockerd-rootless.sh"});
  proc_.mkdir("self");
  proc_.write("sys/comm", "dockerd\n");
  proc_.mkdir("555");  // a process that exited: no comm

  auto found = find_dockerd_processes(proc_.path());
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->trusted.size(), 2u);
  EXPECT_TRUE(found->ignored.empty());
  EXPECT_EQ(found->trusted[0].pid, 77);
  EXPECT_TRUE(found->trusted[0].args.empty());
  const DockerdProcess& d = found->trusted[1];
  EXPECT_EQ(d.pid, 4242);
  EXPECT_EQ(d.args, (std::vector<std::string>{"--userns-remap=default", "-H", "fd://"}));
  EXPECT_EQ(d.exe, proc_ / "4242/exe");
}

// Any user can run a process named dockerd, with any command line, or a setuid program under
// that name: none of them is the daemon.
TEST_F(FakeProcTest, OnlyRootsOwnDockerdIsTrusted) {
  fake_process(proc_, 10, "dockerd", {"dockerd"});
  fake_process(proc_, 11, "dockerd", {"dockerd"}, "1000\t1000\t1000\t1000");
  fake_process(proc_, 12, "dockerd", {"dockerd"}, "1000\t0\t0\t0");  // setuid su
  fake_process(proc_, 13, "dockerd", {"dockerd"}, "0\t0\t1000\t0");
  proc_.write("users/dockerd", "#!/bin/sh\n", true);
  ASSERT_EQ(::chown((proc_ / "users/dockerd").c_str(), 65534, 65534), 0);
  fake_process(proc_, 14, "dockerd", {"dockerd"}, kRootUids, proc_ / "users/dockerd");
  proc_.write("group/dockerd", "#!/bin/sh\n", true);
  ASSERT_EQ(::chmod((proc_ / "group/dockerd").c_str(), 0775), 0);
  fake_process(proc_, 15, "dockerd", {"dockerd"}, kRootUids, proc_ / "group/dockerd");
  proc_.write("bin/sleep", "#!/bin/sh\n", true);
  fake_process(proc_, 16, "dockerd", {"dockerd"}, kRootUids, proc_ / "bin/sleep");
  fake_process(proc_, 17, "dockerd", {"dockerd"}, kRootUids, proc_ / "bin/missing/dockerd");
  fake_process(proc_, 18, "dockerd", {"dockerd"}, "");

  auto found = find_dockerd_processes(proc_.path());
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->trusted.size(), 1u);
  EXPECT_EQ(found->trusted[0].pid, 10);
  const char* why[] = {
      "dockerd (pid 11) is not root's: its real, effective and saved uids are 1000, 1000, 1000",
      "dockerd (pid 12) is not root's: its real, effective and saved uids are 1000, 0, 0",
      "dockerd (pid 13) is not root's: its real, effective and saved uids are 0, 0, 1000",
      "dockerd (pid 14): its binary ",
      "dockerd (pid 15): its binary ",
      "dockerd (pid 16): its binary is ",
      "dockerd (pid 17): cannot open its binary",
      "dockerd (pid 18) is not root's: its real, effective and saved uids are unknown"};
  ASSERT_EQ(found->ignored.size(), std::size(why));
  for (size_t i = 0; i < std::size(why); ++i) EXPECT_CONTAINS(found->ignored[i], why[i]);
  EXPECT_CONTAINS(found->ignored[3], "users/dockerd is owned by uid 65534, not root");
  EXPECT_CONTAINS(found->ignored[4], "group/dockerd is writable by its group or others");
  EXPECT_CONTAINS(found->ignored[5], "bin/sleep, not dockerd");

  auto p = read_dockerd_process(proc_.path(), 11);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, found->ignored[0]);
  EXPECT_TRUE(read_dockerd_process(proc_.path(), 10).ok());
}

TEST(DockerdProcesses, EmptyAndMissingProc) {
  TempDir proc;
  auto found = find_dockerd_processes(proc.path());
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->trusted.empty());
  EXPECT_TRUE(found->ignored.empty());
  found = find_dockerd_processes(proc / "nosuch");
  EXPECT_FALSE(found.ok());
  auto p = read_dockerd_process(proc.path(), 12345);
  ASSERT_FALSE(p.ok());
  EXPECT_CONTAINS(p.error().message, "12345");
}

class RunningDockerdTest : public RemapTest {
 protected:
  void SetUp() override {
    RemapTest::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "needs to run as root to fake a root-owned dockerd";
  }
  RemapOptions scanning() const {
    RemapOptions o = options();
    o.scan_for_daemon = true;
    return o;
  }
};

TEST_F(RunningDockerdTest, FlagsOfTheRunningDaemon) {
  same_subids("dockremap:500000:65536\n");
  fake_process(proc_, 4242, "dockerd",
               {"/usr/bin/dockerd", "--userns-remap", "default", "--data-root=/data/docker"});
  Mapping m = resolve_ok(scanning());
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_EQ(*m.data_root, "/data/docker/500000.500000");
  EXPECT_CONTAINS(m.source, "pid 4242");
  ASSERT_FALSE(m.details.empty());
  EXPECT_CONTAINS(m.details[0], "4242");
}

TEST_F(RunningDockerdTest, DaemonFlagConflictsWithFile) {
  same_subids("dockremap:500000:65536\n");
  remap("dockremap");
  fake_process(proc_, 4242, "dockerd", {"dockerd", "--userns-remap=default"});
  Error e = resolve_error(scanning());
  EXPECT_CONTAINS(e.message, "specified both as a flag and in the configuration file");
}

TEST_F(RunningDockerdTest, DaemonConfigFileFlag) {
  same_subids("dockremap:500000:65536\n");
  host_.write("srv/daemon.json", remap_json("dockremap"));
  fake_process(proc_, 4242, "dockerd", {"dockerd", "--config-file", "/srv/daemon.json"});
  Mapping m = resolve_ok(scanning());
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_CONTAINS(m.source, host_ / "srv/daemon.json:3");
}

TEST_F(RunningDockerdTest, SeveralDaemons) {
  fake_process(proc_, 10, "dockerd", {"dockerd"});
  fake_process(proc_, 20, "dockerd", {"dockerd"});
  Error e = resolve_error(scanning());
  EXPECT_CONTAINS(e.message, "several dockerd processes");
  EXPECT_CONTAINS(e.message, "10, 20");

  remap("dockremap");
  same_subids("dockremap:500000:65536\n");
  RemapOptions o = scanning();
  o.dockerd_pid = 20;
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 65536}}));
}

// A user's process named dockerd neither decides the mapping nor makes every run fail as
// "several dockerd running"; `volprep map` names it as ignored.
TEST_F(RunningDockerdTest, AUsersDockerdIsIgnored) {
  same_subids("dockremap:500000:65536\nalice:100000:65536\n");
  fake_process(proc_, 31, "dockerd", {"dockerd", "--userns-remap=dockremap"});
  fake_process(proc_, 32, "dockerd", {"dockerd", "--userns-remap=alice"}, "1001\t1001\t1001\t1001");
  fake_process(proc_, 33, "dockerd", {"dockerd", "--userns-remap=alice"}, "1001\t0\t0\t0");
  Mapping m = resolve_ok(scanning());
  EXPECT_EQ(m.uid_map, IdMap({{0, 500000, 65536}}));
  EXPECT_CONTAINS(m.source, "pid 31");
  std::string details;
  for (const auto& d : m.details) details += d + "\n";
  EXPECT_CONTAINS(details, "ignored: dockerd (pid 32) is not root's");
  EXPECT_CONTAINS(details, "ignored: dockerd (pid 33) is not root's");

  // Alone, it is no daemon at all: no remapping, not alice's rootless maps.
  fs::remove_all(proc_ / "31");
  m = resolve_ok(scanning());
  EXPECT_TRUE(m.remapping_off);
  EXPECT_EQ(m.source.find("pid 32"), std::string::npos) << m.source;

  // Named with --dockerd-pid, it is refused with the reason.
  RemapOptions o = scanning();
  o.dockerd_pid = 32;
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "--dockerd-pid: dockerd (pid 32) is not root's");
}

TEST_F(RunningDockerdTest, ScanOffIgnoresTheDaemon) {
  same_subids("dockremap:500000:65536\n");
  fake_process(proc_, 4242, "dockerd", {"dockerd", "--userns-remap=default"});
  Mapping m = resolve_ok(options());
  EXPECT_TRUE(m.remapping_off);
}

// The daemon's own binary gives the release only when root alone controls it and the path
// it was started from: a binary in a directory others may write (here under /tmp) never runs.
TEST_F(RunningDockerdTest, DaemonBinaryRunsOnlyWhenRootAloneControlsIt) {
  remap("dockremap");
  same_subids(kNoisySubid);
  proc_.write("bin/dockerd", "#!/bin/sh\ntouch '" + proc_ / "ran" + "'\n"
              "echo 'Docker version 20.10.24, build 1'\n", true);
  fake_process(proc_, 4242, "dockerd", {"dockerd"});
  Mapping m = resolve_ok(scanning());  // Docker 28's lenient rules: the version was not read
  EXPECT_FALSE(fs::exists(proc_ / "ran"));
  EXPECT_FALSE(docker_version_of(DockerdProcess{4242, {}, proc_ / "4242/exe"}).has_value());
  EXPECT_FALSE(fs::exists(proc_ / "ran"));

  // The host's own dockerd, where root alone controls it, does run.
  const char* installed = "/usr/sbin/dockerd";
  if (!fs::exists(installed)) GTEST_SKIP() << "no " << installed;
  fs::remove(proc_ / "4242/exe");
  fs::create_symlink(installed, proc_ / "4242/exe");
  auto v = docker_version_of(DockerdProcess{4242, {}, proc_ / "4242/exe"});
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(v->major, 20);
}

TEST_F(RemapTest, DockerdPidThatDoesNotExist) {
  RemapOptions o = options();
  o.dockerd_pid = 31337;
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "--dockerd-pid");
  EXPECT_CONTAINS(e.message, "31337");
}

// ---- rootless Docker and Podman -----------------------------------------------------------

TEST_F(RemapTest, RootlessDocker) {
  same_subids("alice:100000:65536\n");
  RemapOptions o = options();
  o.rootless_user = "alice";
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 1001, 1}, {1, 100000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 1001, 1}, {1, 100000, 65536}}));
  EXPECT_EQ(m.uid_map.to_host(0), 1001u);
  EXPECT_EQ(m.uid_map.to_host(1), 100000u);
  EXPECT_EQ(m.uid_map.to_host(1000), 100999u);
  EXPECT_EQ(m.uid_map.to_host(65536), 165535u);
  EXPECT_FALSE(m.uid_map.to_host(65537).has_value());
  EXPECT_FALSE(m.remapping_off);
  EXPECT_FALSE(m.has_errors()) << all_findings(m);
  EXPECT_CONTAINS(m.source, "rootless Docker");
  EXPECT_EQ(m.uid_origins.size(), 2u);

  // By uid too.
  o.rootless_user = "1001";
  EXPECT_EQ(resolve_ok(o).uid_map, m.uid_map);
}

TEST_F(RemapTest, RootlessUsesPrimaryGid) {
  same_subids("bob:200000:65536\n");
  RemapOptions o = options();
  o.rootless_user = "bob";
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 1003, 1}, {1, 200000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 100, 1}, {1, 200000, 65536}}));
}

// RootlessKit refuses to start without ranges in both files (rootlesskit v3.0.1
// pkg/parent/idtools/idtools.go:31 and :34), or without the files (:57, os.Open).
TEST_F(RemapTest, RootlessWithoutRanges) {
  RemapOptions o = options();
  o.rootless_user = "alice";
  Error e = resolve_error(o);  // no subuid, no subgid file
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "RootlessKit refuses to start: open /etc/subuid: no such file");

  subids("alice:100000:65536\n", "bob:100000:65536\n");
  e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "RootlessKit refuses to start: No subgid ranges found for user 1001 "
                             "(\"alice\")");
  subids("bob:100000:65536\n", "alice:100000:65536\n");
  EXPECT_CONTAINS(resolve_error(o).message, "No subuid ranges found for user 1001 (\"alice\")");

  o.rootless_user = "nosuch";
  e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "\"nosuch\"");
}

TEST_F(RemapTest, RootlessPodmanSortsRanges) {
  same_subids("alice:300000:1000\nalice:100000:65536\n");
  RemapOptions o = options();
  o.podman_rootless_user = "alice";
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 1001, 1}, {1, 100000, 65536}, {65537, 300000, 1000}}));
  EXPECT_CONTAINS(m.source, "Podman");

  // Rootless Docker keeps file order.
  o = options();
  o.rootless_user = "alice";
  EXPECT_EQ(resolve_ok(o).uid_map,
            IdMap({{0, 1001, 1}, {1, 300000, 1000}, {1001, 100000, 65536}}));
}

// RootlessKit's auto source (v3.0.1 pkg/parent/parent.go:375): getsubids when installed,
// which skips what it cannot parse; else its own strict reader (pkg/parent/idtools/idtools.go:68).
TEST_F(RemapTest, RootlessKitSubidSourceDependsOnGetsubids) {
  RemapOptions o = options();
  o.rootless_user = "alice";
  same_subids("alice:100000:65536\njunk\n");
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "RootlessKit refuses to start: Cannot parse subuid/gid information: "
                             "Format not correct");
  host_.write("usr/bin/getsubids", "#!/bin/sh\n", true);
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 1001, 1}, {1, 100000, 65536}}));
  std::string details;
  for (const auto& d : m.details) details += d + "\n";
  EXPECT_CONTAINS(details, "RootlessKit runs " + host_ / "usr/bin/getsubids");
}

// Podman: when containers/storage gives no ranges for either file (NewIDMappings fails:
// containers/storage pkg/idtools/idtools.go NewIDMappings), podman's GetConfiguredMappings
// (pkg/rootless/rootless_linux.go) has neither, and becomeRootInUserNS writes the single
// mapping, 0 -> own id, for uids and gids alike.
TEST_F(RemapTest, RootlessPodmanWithoutRangesInEitherFileUsesTheSingleMapping) {
  RemapOptions o = options();
  o.podman_rootless_user = "bob";
  for (auto [subuid, subgid] :
       {std::pair{"bob:100000:65536\n", "alice:100000:65536\n"},  // no subgid ranges
        std::pair{"alice:100000:65536\n", "bob:100000:65536\n"},  // no subuid ranges
        // a line storage's parser refuses, among the user's own
        std::pair{"bob:100000:65536\nbob:x:1\n", "bob:100000:65536\n"},
        std::pair{"bob:100000:65536\njunk\n", "bob:100000:65536\n"}}) {
    subids(subuid, subgid);
    Mapping m = resolve_ok(o);
    EXPECT_EQ(m.uid_map, IdMap({{0, 1003, 1}})) << subuid << subgid;
    EXPECT_EQ(m.gid_map, IdMap({{0, 100, 1}})) << subuid << subgid;
    EXPECT_TRUE(has_finding(m, Finding::kWarning, "", "single mapping")) << all_findings(m);
    EXPECT_FALSE(m.has_errors()) << all_findings(m);
  }
  host_.remove("etc/subgid");
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.gid_map, IdMap({{0, 100, 1}}));
  EXPECT_EQ(m.uid_map, IdMap({{0, 1003, 1}}));
}

TEST_F(RemapTest, RootlessPodmanRefusesOwnIdInARange) {
  same_subids("alice:1000:65536\n");
  RemapOptions o = options();
  o.podman_rootless_user = "alice";
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "1001");
  EXPECT_CONTAINS(e.message, etc("subuid") + ":1");
}

// ---- explicit maps and --pid --------------------------------------------------------------

TEST_F(RemapTest, ExplicitMaps) {
  RemapOptions o = options();
  o.maps = {"0:100000:1000", "1000:1000:1", "1001:101001:64535"};
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 1000}, {1000, 1000, 1}, {1001, 101001, 64535}}));
  EXPECT_EQ(m.gid_map, m.uid_map);
  EXPECT_EQ(m.uid_map.to_host(0), 100000u);
  EXPECT_EQ(m.uid_map.to_host(1000), 1000u);
  EXPECT_EQ(m.uid_map.to_host(1001), 101001u);
  EXPECT_EQ(m.uid_map.to_host(65535), 165535u);
  EXPECT_FALSE(m.uid_map.to_host(65536).has_value());
  EXPECT_FALSE(m.remapping_off);
  EXPECT_TRUE(m.findings.empty()) << all_findings(m);
  EXPECT_CONTAINS(m.source, "command line");
}

TEST_F(RemapTest, ExplicitMapCountDefaultsToOne) {
  auto r = parse_map_specs({"0:1000"}, "--map");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, IdMap({{0, 1000, 1}}));
}

TEST_F(RemapTest, BadExplicitMaps) {
  for (const char* bad : {"0:1:2:3", "0:abc:1", "0", "", "0:1:0", "-1:1:1", "0:4294967295:1"}) {
    RemapOptions o = options();
    o.maps = {bad};
    Error e = resolve_error(o);
    EXPECT_EQ(e.code, kExitUsage) << bad;
    EXPECT_CONTAINS(e.message, "--map");
    if (std::string(bad) == "0:1:2:3" || std::string(bad) == "0:abc:1") {
      EXPECT_CONTAINS(e.message, std::string("\"") + bad + "\"");
    }
  }
  auto r = parse_map_specs({"0:abc:1"}, "--map");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "\"abc\"");
  // Overlapping extents are refused as the kernel would.
  r = parse_map_specs({"0:100000:1000", "500:1000:1"}, "--uid-map");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kExitUsage);
  EXPECT_CONTAINS(r.error().message, "--uid-map");
  EXPECT_CONTAINS(r.error().message, "overlaps");
}

TEST_F(RemapTest, SeparateUidAndGidMaps) {
  RemapOptions o = options();
  o.uid_maps = {"0:100000:65536"};
  o.gid_maps = {"0:200000:65536"};
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 200000, 65536}}));

  // --map fills in the side not given separately.
  o = options();
  o.maps = {"0:100000:65536"};
  o.gid_maps = {"0:300000:10"};
  m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 100000, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 300000, 10}}));

  o = options();
  o.uid_maps = {"0:100000:65536"};
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitUsage);
  EXPECT_CONTAINS(e.message, "--gid-map is missing");

  o = options();
  o.gid_maps = {"0:100000:65536"};
  e = resolve_error(o);
  EXPECT_EQ(e.code, kExitUsage);
  EXPECT_CONTAINS(e.message, "--uid-map is missing");

  o = options();
  o.uid_maps = {"0:100000:65536"};
  o.gid_maps = {"x"};
  e = resolve_error(o);
  EXPECT_EQ(e.code, kExitUsage);
  EXPECT_CONTAINS(e.message, "--gid-map \"x\"");
}

TEST_F(RemapTest, ExplicitMapsWinOverEverything) {
  remap("dockremap");
  same_subids("dockremap:500000:65536\n");
  RemapOptions o = options();
  o.maps = {"0:7000:10"};
  o.rootless_user = "alice";
  o.pid = 1;
  EXPECT_EQ(resolve_ok(o).uid_map, IdMap({{0, 7000, 10}}));
}

TEST_F(RemapTest, ProcessMaps) {
  proc_.write("4321/uid_map", "         0     231072      65536\n");
  proc_.write("4321/gid_map", "         0     300000      65536\n     65536       1000          1\n");
  RemapOptions o = options();
  o.pid = 4321;
  Mapping m = resolve_ok(o);
  EXPECT_EQ(m.uid_map, IdMap({{0, 231072, 65536}}));
  EXPECT_EQ(m.gid_map, IdMap({{0, 300000, 65536}, {65536, 1000, 1}}));
  EXPECT_FALSE(m.remapping_off);
  EXPECT_CONTAINS(m.source, "process 4321");
  EXPECT_TRUE(m.findings.empty()) << all_findings(m);
}

TEST_F(RemapTest, ProcessWithoutUserNamespace) {
  proc_.write("1/uid_map", "         0          0 4294967295\n");
  proc_.write("1/gid_map", "         0          0 4294967295\n");
  RemapOptions o = options();
  o.pid = 1;
  Mapping m = resolve_ok(o);
  EXPECT_TRUE(m.remapping_off);
  EXPECT_TRUE(m.uid_map.is_identity());
}

TEST_F(RemapTest, ProcessErrors) {
  RemapOptions o = options();
  o.pid = 999999;
  Error e = resolve_error(o);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, "no such process");

  proc_.write("5/uid_map", "0 0\n");
  proc_.write("5/gid_map", "0 0 1\n");
  o.pid = 5;
  e = resolve_error(o);
  EXPECT_CONTAINS(e.message, proc_ / "5/uid_map:1");
}

// ---- parse_remapped_root ------------------------------------------------------------------

TEST_F(RemapTest, ParseRemappedRoot) {
  auto r = parse_remapped_root("default", *db_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->user, "dockremap");
  EXPECT_EQ(r->group, "dockremap");
  EXPECT_EQ(r->uid, 999u);
  EXPECT_FALSE(r->is_root);

  r = parse_remapped_root("1002:staff", *db_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->user, "testuser");
  EXPECT_EQ(r->group, "staff");

  r = parse_remapped_root("0", *db_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_root);
  EXPECT_EQ(r->group, "root");

  r = parse_remapped_root("a:b:c", *db_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kExitConfig);
}

// ---- daemon_config pieces -----------------------------------------------------------------

TEST(DaemonJson, UsernsRemapAndItsLine) {
  auto r = parse_daemon_json(
      "{\n  \"debug\": true,\n  \"log-opts\": {\"max-size\": \"10m\"},\n  \"userns-remap\": "
      "\"testuser:staff\"\n}\n",
      "/etc/docker/daemon.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->origin, "/etc/docker/daemon.json");
  EXPECT_EQ(r->userns_remap, "testuser:staff");
  EXPECT_EQ(r->userns_remap_line, 4);
  EXPECT_FALSE(r->data_root.has_value());
}

TEST(DaemonJson, NoRemap) {
  auto r = parse_daemon_json("{}", "d.json");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->userns_remap.has_value());
  EXPECT_EQ(r->userns_remap_line, 0);
}

TEST(DaemonJson, MalformedNamesFileLineAndColumn) {
  auto r = parse_daemon_json("{\n  \"userns-remap\": \"default\"\n  \"debug\": true\n}\n",
                             "/etc/docker/daemon.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kExitConfig);
  // The string on line 3 should have been preceded by a comma; the column is where the
  // parser stopped, at the end of that token.
  EXPECT_EQ(r.error().message.rfind("/etc/docker/daemon.json:3:", 0), 0u) << r.error().message;
  EXPECT_CONTAINS(r.error().message, "invalid JSON: ");

  r = parse_daemon_json("{\n  \"a\": @\n}\n", "/etc/docker/daemon.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("/etc/docker/daemon.json:2:8: invalid JSON: ", 0), 0u)
      << r.error().message;

  r = parse_daemon_json("{\"a\": tru}", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("x.json:1:", 0), 0u) << r.error().message;

  r = parse_daemon_json("{\n\"a\": 1,\n", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("x.json:", 0), 0u) << r.error().message;
}

TEST(DaemonJson, TopLevelMustBeAnObject) {
  auto r = parse_daemon_json("[1, 2]", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "x.json");
}

TEST(DaemonJson, NonStringValues) {
  auto r = parse_daemon_json("{\"userns-remap\": 1000}", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kExitConfig);
  EXPECT_CONTAINS(r.error().message, "x.json");
  EXPECT_CONTAINS(r.error().message, "\"userns-remap\" must be a string, not number");

  r = parse_daemon_json("{\"data-root\": [\"/a\"]}", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "\"data-root\" must be a string");
}

// Every error nlohmann-json can raise is a configuration error at file:line:col, never an
// exception: numbers out of range, invalid UTF-8, broken escapes, NUL bytes, truncation.
TEST(DaemonJson, EveryKindOfJsonErrorIsAConfigErrorWithItsPosition) {
  struct Case {
    std::string text, position, why;
  } cases[] = {
      {"{\"a\": 1e400}", "x.json:1:11: ", "number overflow parsing '1e400'"},
      {"{\n  \"log-opts\": {\"x\": [1, -1e400]}\n}", "x.json:2:", "number overflow"},
      {"{\"userns-remap\": \"dock\xffremap\"}", "x.json:1:", "ill-formed UTF-8"},
      {"{\"\xc3\x28\": 1}", "x.json:1:", "ill-formed UTF-8"},
      {"{\"a\": \"\\ud800\"}", "x.json:1:", "surrogate"},
      {"{\"a\": \"\\x\"}", "x.json:1:", "after backslash"},
      {std::string("{\"a\": \"b\0c\"}", 12), "x.json:1:", "control character"},
      {"{\"a\": [[[[", "x.json:1:", "unexpected end of input"},
      {"{} {}", "x.json:1:", "expected end of input"},
  };
  for (const auto& c : cases) {
    auto r = parse_daemon_json(c.text, "x.json");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().code, kExitConfig);
    EXPECT_EQ(r.error().message.rfind(c.position, 0), 0u) << r.error().message;
    EXPECT_CONTAINS(r.error().message, ": invalid JSON: ");
    EXPECT_CONTAINS(r.error().message, c.why);
  }
}

TEST(DaemonJson, DeepNestingIsReadWithoutBuildingIt) {
  const size_t depth = 1u << 20;  // a parser that recursed, or built a tree, would overflow the stack
  std::string text = "{\"userns-remap\": \"default\", \"labels\": " + std::string(depth, '[') +
                     std::string(depth, ']') + "}";
  auto r = parse_daemon_json(text, "x.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->userns_remap, "default");
  r = parse_daemon_json("{\"a\": " + std::string(depth, '['), "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "x.json:1:");
}

TEST(DaemonJson, KnownKeysOfEveryWrongType) {
  for (const char* value : {"null", "true", "12", "1.5", "123456789012345678901234567890", "{}",
                            "[\"default\"]"}) {
    auto r = parse_daemon_json(std::string("{\"userns-remap\": ") + value + "}", "x.json");
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_EQ(r.error().code, kExitConfig);
    EXPECT_CONTAINS(r.error().message, "x.json: \"userns-remap\" must be a string, not ");
  }
  // An object that is not a flat option counts by its keys (moby v20.10.24
  // daemon/config/config.go:465, configValuesSet).
  auto r = parse_daemon_json("{\"graph\": {\"debug\": 1}}", "x.json");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "\"graph\" must be a string, not object");
  // Only the top level counts; a nested key of the same name is someone else's.
  r = parse_daemon_json("{\"x\": {\"userns-remap\": 1}, \"userns-remap\": \"default\"}", "x.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->userns_remap, "default");
  // A repeated key: the last one, as Go's decoder reads it.
  r = parse_daemon_json("{\"data-root\": \"/a\", \"data-root\": \"/b\"}", "x.json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_root, "/b");
}

DockerVersion docker(const char* v) { return *parse_docker_version(std::string("version ") + v); }

// moby v20.10.24 daemon/config/config.go:480 findConfigurationConflicts, and the flags of
// cmd/dockerd (daemon/command since docker-v29.0.0) at each release.
TEST(DaemonJson, DirectivesDockerdDoesNotKnowAreRefusedByRelease) {
  struct Case {
    const char* text;
    const char* version;  // nullptr: any release
    const char* unknown;  // nullptr: accepted
  } cases[] = {
      {"{\"userns_remap\": \"default\"}", "20.10.24", "userns_remap"},
      {"{\"userns_remap\": \"default\"}", nullptr, "userns_remap"},
      {"{\"zz\": 1, \"Userns-Remap\": \"x\"}", "28.5", "Userns-Remap, zz"},  // sorted
      {"{\"cluster-store\": \"consul://x\"}", "23.0", nullptr},
      {"{\"cluster-store\": \"consul://x\"}", "24.0", "cluster-store"},
      {"{\"cluster-store\": \"consul://x\"}", nullptr, nullptr},
      {"{\"default-stop-timeout\": 5}", "29.6", "default-stop-timeout"},
      {"{\"default-stop-timeout\": 5}", "29.7", nullptr},
      {"{\"api-cors-header\": \"*\"}", "29.0", "api-cors-header"},
      {"{\"oom-score-adjust\": -500}", "26.1", "oom-score-adjust"},
      // "proxies" is not a flat option: its keys are the directives, flags since 23.0.
      {"{\"proxies\": {\"http-proxy\": \"http://p\"}}", "20.10", "http-proxy"},
      {"{\"proxies\": {\"http-proxy\": \"http://p\"}}", "23.0", nullptr},
      // log-opts is flat: its keys are the log driver's, not directives.
      {"{\"log-opts\": {\"max-size\": \"10m\"}, \"features\": {\"buildkit\": true}}", "20.10",
       nullptr},
      {"{\"default-network-opts\": {\"bridge\": {\"mtu\": \"1400\"}}}", "24.0", nullptr},
      {"{\"default-network-opts\": {\"bridge\": {\"mtu\": \"1400\"}}}", "23.0", nullptr},
      {"{\"default-network-opts\": {\"overlay\": {}}}", "23.0", "overlay"},
  };
  for (const auto& c : cases) {
    std::optional<DockerVersion> v;
    if (c.version) v = docker(c.version);
    auto r = parse_daemon_json(c.text, "x.json", v);
    if (!c.unknown) {
      EXPECT_TRUE(r.ok()) << c.text << " " << (c.version ? c.version : "any") << ": "
                          << r.error().message;
      continue;
    }
    ASSERT_FALSE(r.ok()) << c.text << " " << (c.version ? c.version : "any");
    EXPECT_EQ(r.error().code, kExitConfig);
    EXPECT_CONTAINS(r.error().message,
                    std::string("unable to configure the Docker daemon with file x.json: the "
                                "following directives don't match any configuration option: ") +
                        c.unknown + " (dockerd ");
  }
  auto r = parse_daemon_json("{\n  \"debug\": true,\n    \"userns_remap\": \"x\"\n}", "x.json",
                             docker("20.10"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("x.json:3:5: ", 0), 0u) << r.error().message;
}

// 20.10 decodes the bytes as they are (v20.10.24 daemon/config/config.go:399); 23.0 drops a
// byte-order mark and trims the file, and empty is then an empty configuration (v23.0.0
// daemon/config/config.go:466-475).
TEST(DaemonJson, ByteOrderMarkAndEmptyFileByRelease) {
  const std::string bom = "\xef\xbb\xbf{\"userns-remap\": \"default\"}";
  auto r = parse_daemon_json(bom, "x.json", docker("20.10.24"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("x.json:1:1: unable to configure the Docker daemon with file "
                                    "x.json: invalid character '\xc3\xaf' looking for beginning of "
                                    "value (dockerd 20.10 refuses to start)", 0),
            0u)
      << r.error().message;
  for (auto v : {std::optional(docker("23.0")), std::optional<DockerVersion>()}) {
    r = parse_daemon_json(bom, "x.json", v);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->userns_remap, "default");
  }
  for (const char* empty : {"", " \n\t\n"}) {
    r = parse_daemon_json(empty, "x.json", docker("20.10"));
    ASSERT_FALSE(r.ok());
    EXPECT_CONTAINS(r.error().message, "x.json:1:1: unable to configure the Docker daemon with "
                                       "file x.json: EOF");
    for (auto v : {std::optional(docker("23.0")), std::optional<DockerVersion>()}) {
      r = parse_daemon_json(empty, "x.json", v);
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_FALSE(r->userns_remap);
    }
  }
}

// "graph": 20.10 takes it, refusing it beside data-root (v20.10.24 daemon/config/config.go:449);
// 23.0 refuses it (v23.0.0 daemon/config/config.go:619, Validate); 24.0 no longer has the flag.
TEST(DaemonJson, GraphByRelease) {
  auto r = parse_daemon_json("{\"graph\": \"/old\"}", "x.json", docker("20.10"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->data_root, "/old");
  r = parse_daemon_json("{\"data-root\": \"/new\", \"graph\": \"/old\"}", "x.json", docker("20.10"));
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message,
                  "x.json:1:23: unable to configure the Docker daemon with file x.json: cannot "
                  "specify both \"graph\" and \"data-root\" config file options");
  r = parse_daemon_json("{\"graph\": \"/old\"}", "x.json", docker("23.0.6"));
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message,
                  "configuration validation from file failed: the \"graph\" config file option "
                  "is deprecated; use \"data-root\" instead");
  r = parse_daemon_json("{\"graph\": \"/old\"}", "x.json", docker("24.0"));
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "don't match any configuration option: graph");
}

TEST(DaemonJson, DataRootAndGraph) {
  auto r = parse_daemon_json("{\"data-root\": \"/srv/docker\"}", "x.json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_root, "/srv/docker");

  r = parse_daemon_json("{\"graph\": \"/old/docker\"}", "x.json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_root, "/old/docker");

  r = parse_daemon_json("{\"graph\": \"/old\", \"data-root\": \"/new\"}", "x.json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_root, "/new");
}

TEST(DockerdArgs, Parse) {
  auto f = parse_dockerd_args({"--userns-remap=default", "--config-file", "/etc/d.json",
                               "--data-root", "/srv/docker", "-H", "fd://"});
  EXPECT_EQ(f.userns_remap, "default");
  EXPECT_EQ(f.config_file, "/etc/d.json");
  EXPECT_EQ(f.data_root, "/srv/docker");

  f = parse_dockerd_args({"--userns-remap", "testuser:staff", "--config-file=/x.json", "-g",
                          "/old"});
  EXPECT_EQ(f.userns_remap, "testuser:staff");
  EXPECT_EQ(f.config_file, "/x.json");
  EXPECT_EQ(f.data_root, "/old");

  f = parse_dockerd_args({"--graph=/older"});
  EXPECT_EQ(f.data_root, "/older");

  f = parse_dockerd_args({"--debug", "--userns-remapx=1", "--userns-remap"});
  EXPECT_FALSE(f.userns_remap.has_value());
  EXPECT_FALSE(f.config_file.has_value());
  EXPECT_FALSE(f.data_root.has_value());

  f = parse_dockerd_args({"--", "--userns-remap=default"});
  EXPECT_FALSE(f.userns_remap.has_value());

  // The last one wins, as with pflag.
  f = parse_dockerd_args({"--userns-remap=a", "--userns-remap=b"});
  EXPECT_EQ(f.userns_remap, "b");

  EXPECT_FALSE(parse_dockerd_args({}).userns_remap.has_value());
}

TEST(DockerVersion, Parse) {
  auto v = parse_docker_version("Docker version 20.10.24+dfsg1, build 5d6db84\n");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major, 20);
  EXPECT_EQ(v->minor, 10);
  EXPECT_EQ(v->patch, 24);
  EXPECT_EQ(v->text, "20.10.24+dfsg1");

  v = parse_docker_version("Docker version 28.0.1, build 068a01e");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major, 28);
  EXPECT_EQ(v->minor, 0);
  EXPECT_EQ(v->patch, 1);
  EXPECT_EQ(v->text, "28.0.1");

  v = parse_docker_version("version 20.10");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major, 20);
  EXPECT_EQ(v->minor, 10);
  EXPECT_EQ(v->patch, 0);
  EXPECT_FALSE(v->has_patch);
  EXPECT_TRUE(parse_docker_version("version 20.10.0")->has_patch);

  EXPECT_FALSE(parse_docker_version("").has_value());
  EXPECT_FALSE(parse_docker_version("Docker 28.0.1").has_value());
  EXPECT_FALSE(parse_docker_version("Docker version abc").has_value());
  EXPECT_FALSE(parse_docker_version("Docker version 28.").has_value());
  // Too many digits is not a version, and does not throw.
  EXPECT_FALSE(parse_docker_version("Docker version 99999999999999.0").has_value());
}

TEST(DockerVersion, FromDpkgStatus) {
  auto v = docker_version_from_dpkg(kDpkgStatus);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major, 20);
  EXPECT_EQ(v->minor, 10);
  EXPECT_EQ(v->text, "docker.io 20.10.24+dfsg1-1+deb12u1");

  // Docker's own package, with an epoch, as the last paragraph without a final newline.
  v = docker_version_from_dpkg(
      "Package: docker-ce\nStatus: install ok installed\nVersion: 5:28.0.1-1~debian.12~bookworm");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major, 28);
  EXPECT_EQ(v->minor, 0);
  EXPECT_EQ(v->text, "docker-ce 5:28.0.1-1~debian.12~bookworm");

  // Removed but its configuration kept: not installed.
  EXPECT_FALSE(docker_version_from_dpkg(
                   "Package: docker.io\nStatus: deinstall ok config-files\nVersion: 20.10.5\n\n")
                   .has_value());
  EXPECT_FALSE(docker_version_from_dpkg("Package: docker.io\nStatus: install ok installed\n"
                                        "Version: latest\n")
                   .has_value());
  EXPECT_FALSE(docker_version_from_dpkg("").has_value());
  EXPECT_FALSE(docker_version_from_dpkg("Package: podman\nStatus: install ok installed\n"
                                        "Version: 4.3.1+ds1-8\n")
                   .has_value());
}

// ---- file host database -------------------------------------------------------------------

TEST(FileHostDb, LooksUpUsersGroupsAndFiles) {
  TempDir root;
  root.write("etc/passwd", std::string("# comment\n\nbroken\n") + kPasswd);
  root.write("etc/group", kGroup);
  auto db = make_file_host_db(root.path() + "/");
  EXPECT_TRUE(db->is_host_root());
  EXPECT_EQ(db->local_path("/etc/subuid"), root / "etc/subuid");

  auto u = db->user_by_name("bob");
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(u->has_value());
  EXPECT_EQ((*u)->uid, 1003u);
  EXPECT_EQ((*u)->gid, 100u);
  EXPECT_EQ((*u)->home, "/home/bob");

  u = db->user_by_uid(999);
  ASSERT_TRUE(u.ok() && u->has_value());
  EXPECT_EQ((*u)->name, "dockremap");
  u = db->user_by_name("nosuch");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->has_value());

  auto g = db->group_by_gid(50);
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ((*g)->name, "staff");
  g = db->group_by_name("users");
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ((*g)->gid, 100u);
  g = db->group_by_gid(1003);
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->has_value());

  auto f = db->read("/etc/group");
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->content, kGroup);
  EXPECT_EQ((*f)->origin, root / "etc/group");
  f = db->read("/etc/subuid");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
}

// Runs `fn` on a thread of its own. If it has not returned within seconds, it waits on the
// FIFO at `fifo`: a writer opened and closed there lets it go, and the block is reported.
template <class Fn>
bool returns_without_blocking(const std::string& fifo, Fn fn) {
  auto done = std::async(std::launch::async, fn);
  if (done.wait_for(std::chrono::seconds(5)) == std::future_status::ready) return true;
  int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (writer >= 0) ::close(writer);
  done.wait();
  return false;
}

TEST_F(RemapTest, FifoInPlaceOfAHostFileIsRefusedWithoutBlocking) {
  for (const char* file : {"etc/docker/daemon.json", "etc/passwd", "etc/group", "etc/subuid",
                           "etc/subgid"}) {
    SCOPED_TRACE(file);
    remap("dockremap");
    same_subids("dockremap:100000:65536\n");
    host_.remove(file);
    ASSERT_EQ(::mkfifo((host_ / file).c_str(), 0600), 0);
    Result<Mapping> r = Error{};
    EXPECT_TRUE(returns_without_blocking(host_ / file, [&] { r = resolve_mapping(options(), *db_); }));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kExitConfig);
    EXPECT_CONTAINS(r.error().message, host_ / file);
    EXPECT_CONTAINS(r.error().message, "FIFO");
    host_.remove(file);
    SetUp();  // the files as they were
  }
}

TEST_F(RemapTest, FifoAsConfigFileIsRefusedWithoutBlocking) {
  same_subids("dockremap:100000:65536\n");
  TempDir cwd;
  ASSERT_EQ(::mkfifo((cwd / "daemon.json").c_str(), 0600), 0);
  auto old = fs::current_path();
  fs::current_path(cwd.path());
  RemapOptions o = options();
  o.config_file = "daemon.json";
  Result<Mapping> r = Error{};
  EXPECT_TRUE(returns_without_blocking(cwd / "daemon.json", [&] { r = resolve_mapping(o, *db_); }));
  fs::current_path(old);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kExitConfig);
  EXPECT_CONTAINS(r.error().message, "daemon.json is a FIFO, not a regular file");
}

TEST(HostFiles, ReadTextFileRefusesWhatIsNotARegularFile) {
  TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  Result<std::optional<std::string>> r = Error{};
  EXPECT_TRUE(returns_without_blocking(dir / "fifo", [&] { r = read_text_file(dir / "fifo"); }));
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, dir / "fifo");
  r = read_text_file(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "is a directory, not a regular file");
  r = read_text_file("/dev/zero");
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "character device");
}

TEST_F(RemapTest, HostFileOver16MiBIsRefused) {
  remap("dockremap");
  same_subids("dockremap:100000:65536\n");
  ASSERT_EQ(::truncate(etc("subuid").c_str(), (16 << 20) + 1), 0);
  Error e = resolve_error();
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_CONTAINS(e.message, etc("subuid") + " is larger than 16 MiB");
}

TEST_F(RemapTest, SymlinksUnderTheHostRootResolveInsideIt) {
  remap("dockremap");
  same_subids("dockremap:100000:65536\n");
  host_.write("srv/subuid", "dockremap:300000:65536\n");
  host_.remove("etc/subuid");
  ASSERT_EQ(::symlink("/srv/subuid", etc("subuid").c_str()), 0);
  EXPECT_EQ(resolve_ok().uid_map, IdMap({{0, 300000, 65536}}));
  // An absolute target is the host root's, never this machine's.
  host_.remove("etc/subuid");
  ASSERT_EQ(::symlink("/proc/self/status", etc("subuid").c_str()), 0);
  Error e = resolve_error();
  EXPECT_CONTAINS(e.message, "no such file");
}

TEST(FileHostDb, MissingPasswdIsAnError) {
  TempDir root;
  auto db = make_file_host_db(root.path());
  auto u = db->user_by_name("root");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, kExitConfig);
  EXPECT_CONTAINS(u.error().message, "etc/passwd");
}

}  // namespace
}  // namespace volprep
