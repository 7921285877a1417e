#include "volprep/report.h"

#include <gtest/gtest.h>

#include "volprep/capability.h"

using namespace volprep;

TEST(EscapePath, KeepsPrintableUtf8AndEscapesTheRest) {
  EXPECT_EQ(escape_path("plain/name with space"), "plain/name with space");
  EXPECT_EQ(escape_path("caf\xc3\xa9"), "caf\xc3\xa9");            // é
  EXPECT_EQ(escape_path("new\nline"), "new\\nline");
  EXPECT_EQ(escape_path("tab\there"), "tab\\there");
  EXPECT_EQ(escape_path("back\\slash"), "back\\\\slash");
  EXPECT_EQ(escape_path("bad\xff" "byte"), "bad\\xffbyte");
  EXPECT_EQ(escape_path("\x01\x7f"), "\\x01\\x7f");
  EXPECT_EQ(escape_path("trunc\xc3"), "trunc\\xc3");               // cut-off sequence
  EXPECT_EQ(escape_path("\xc0\xaf"), "\\xc0\\xaf");                // overlong '/'
  EXPECT_EQ(escape_path("\xed\xa0\x80"), "\\xed\\xa0\\x80");       // a surrogate
  EXPECT_EQ(escape_path("\xc2\x85"), "\\xc2\\x85");                // C1 control NEL
}

TEST(EscapeControl, EscapesTerminalBytesAndIsIdempotentOnEscapedPaths) {
  EXPECT_EQ(escape_control("refusing /tmp/x\x1b[31m\xff: why"), "refusing /tmp/x\\x1b[31m\\xff: why");
  EXPECT_EQ(escape_control("two\nlines\r"), "two\\nlines\\x0d");
  EXPECT_EQ(escape_control("caf\xc3\xa9 \xc2\x9b"), "caf\xc3\xa9 \\xc2\\x9b");  // CSI as C1
  for (const char* raw : {"a\nb\\c\x1b", "bad\xff", "plain"}) {
    std::string once = escape_path(raw);
    EXPECT_EQ(escape_control(once), once) << once;
  }
}

TEST(FormatChange, DiffLine) {
  Change c;
  c.before.uid = c.before.gid = 1000;
  c.before.mode = S_IFREG | 0600;
  c.uid = c.gid = 501000;
  c.mode = 0600;
  EXPECT_EQ(format_change("jenkins_home/secrets/key", c),
            "jenkins_home/secrets/key  owner 1000:1000 -> 501000:501000  mode 0600");
  c.mode = 0640;
  EXPECT_EQ(format_change("k", c), "k  owner 1000:1000 -> 501000:501000  mode 0600 -> 0640");
  c.before.mode = S_IFREG | 04755;
  c.mode = 04755;
  EXPECT_EQ(format_change("s", c), "s  owner 1000:1000 -> 501000:501000  mode 4755 (setuid/setgid kept)");
  // Added (--chmod u+s), not kept: the mode's change says it.
  c.before.mode = S_IFREG | 0755;
  EXPECT_EQ(format_change("a", c), "a  owner 1000:1000 -> 501000:501000  mode 0755 -> 4755");
  c.before.mode = S_IFLNK | 0777;
  EXPECT_EQ(format_change("l", c), "l  owner 1000:1000 -> 501000:501000  symlink");
}

TEST(FormatChange, CapabilityLineShowsEachSideAsTheKernelReadsIt) {
  Change c;
  c.before.uid = c.before.gid = 0;
  c.before.mode = S_IFREG | 0755;
  c.uid = c.gid = 500000;
  c.mode = 0755;
  FileCaps caps;
  caps.effective = true;
  caps.permitted[0] = 1 << 13;
  FileCaps v3 = caps;
  v3.revision = 3;
  v3.root_id = 500000;
  c.xattrs.push_back({kCapabilityXattr, caps.serialize(), v3.serialize()});
  EXPECT_EQ(format_change("ping", c), "ping  owner 0:0 -> 500000:500000  mode 0755  capability v2 -> v3 rootid 500000");
  EXPECT_NE(format_change_json("ping", c).find(R"("capability":{"after":"v3 rootid 500000","before":"v2"})"),
            std::string::npos);
  c.xattrs[0].after = c.xattrs[0].before;  // kept across the chown: no line
  EXPECT_EQ(format_change("ping", c), "ping  owner 0:0 -> 500000:500000  mode 0755");
}

TEST(FormatSummary, CountsAndReasons) {
  Summary s;
  s.scanned = 10;
  s.changed = 6;
  s.unchanged = 2;
  s.skipped[size_t(Skip::kMountPoint)] = 1;
  s.skipped[size_t(Skip::kLinkedFromOutside)] = 1;
  EXPECT_EQ(format_summary(s, true),
            "scanned 10, to change 6, unchanged 2, skipped 2 (1 mount point, 1 hardlinked from outside)");
  EXPECT_EQ(format_summary(s, false),
            "scanned 10, changed 6, unchanged 2, skipped 2 (1 mount point, 1 hardlinked from outside), failed 0");
}

TEST(FormatSummary, EntriesNotAttemptedAfterAStop) {
  Summary s;
  s.scanned = 300;
  s.failed = 104;
  s.not_attempted = 196;
  EXPECT_EQ(format_summary(s, false), "scanned 300, changed 0, unchanged 0, skipped 0, failed 104, not attempted 196");
  EXPECT_NE(format_summary_json(s, false).find(R"("not_attempted":196)"), std::string::npos);
  Summary t = s;
  t += s;
  EXPECT_EQ(t.not_attempted, 392u);
}

TEST(FormatFailure, OneJsonObjectPerEntry) {
  EXPECT_EQ(format_failure_json("vol/a\\nb", "chown: Operation not permitted"),
            R"({"failed":{"error":"chown: Operation not permitted","path":"vol/a\\nb"}})");
}

TEST(FormatRefusal, SaysWhatHappenedAndTheCauseOnce) {
  Refusal r{"/srv/vol", "nfs", 100, "chown: Operation not permitted", nullptr, 0, "nothing changed"};
  auto lines = format_refusal(r);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "stopped: /srv/vol (nfs) refused the first 100 changes volprep tried (chown: Operation not "
                      "permitted) and allowed none, so it tried no more; nothing changed");
  EXPECT_TRUE(lines[1].starts_with("likely causes: an NFS export that squashes root (root_squash")) << lines[1];
  EXPECT_NE(lines[1].find("CAP_CHOWN"), std::string::npos);
  // On FUSE its own cause first; an ACL refused is not about owners.
  r.fs_type = "fuse";
  r.first = "set ACL: Operation not permitted";
  lines = format_refusal(r);
  EXPECT_TRUE(lines[1].starts_with("likely causes: a FUSE or network filesystem that does not let root change ACLs"))
      << lines[1];
  EXPECT_NE(lines[1].find("CAP_FOWNER"), std::string::npos);
  // Without the capability, that is the cause.
  r.first = "chown: Operation not permitted";
  r.missing_cap = "CAP_CHOWN";
  r.euid = 1000;
  lines = format_refusal(r);
  EXPECT_EQ(lines[1], "cause: volprep runs as uid 1000 without CAP_CHOWN: run it as root (sudo volprep ...)");
  EXPECT_NE(format_refusal_json(r).find(R"("reason":"refused","refused":100)"), std::string::npos);
  EXPECT_TRUE(format_refusal_json(r).starts_with(R"({"stopped":)")) << format_refusal_json(r);
  EXPECT_NE(format_refusal_json(r).find(R"("cause":"volprep runs as uid 1000 without CAP_CHOWN: run it as root)"),
            std::string::npos)
      << format_refusal_json(r);
  // A run that ended with every change it tried refused: not stopped, nothing not tried; on a
  // local filesystem files that refuse even root first.
  r = Refusal{"/srv/vol", "ext4", 10, "chown: Operation not permitted", nullptr, 0, "", false};
  lines = format_refusal(r);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "/srv/vol (ext4) refused all 10 changes volprep tried (chown: Operation not permitted) and "
                      "let none complete");
  EXPECT_TRUE(lines[1].starts_with("likely causes: immutable or append-only files (chattr +i")) << lines[1];
  EXPECT_TRUE(format_refusal_json(r).starts_with(R"({"refused_all":{)")) << format_refusal_json(r);
  EXPECT_NE(format_refusal_json(r).find(R"("likely_causes":"immutable or append-only files)"), std::string::npos)
      << format_refusal_json(r);
  r.refused = 1;
  EXPECT_NE(format_refusal(r)[0].find("refused the one change volprep tried"), std::string::npos);
}

TEST(Report, PathsDeeperThanAPageAreSummarized) {
  EXPECT_EQ(summarize_path("a/b/c", 4096), "a/b/c");
  std::string deep;
  for (int i = 0; i < 3000; ++i) deep += (i ? "/" : "") + std::string("dir") + std::to_string(i);
  std::string shown = summarize_path(deep, 4096);
  EXPECT_LE(shown.size(), 4096u);
  EXPECT_TRUE(shown.starts_with("dir0/dir1/")) << shown.substr(0, 40);
  EXPECT_TRUE(shown.ends_with("/dir2998/dir2999")) << shown.substr(shown.size() - 40);
  EXPECT_NE(shown.find("/...["), std::string::npos);
  // One name longer than a quarter of the limit: cut inside it.
  std::string long_name(10000, 'x');
  EXPECT_LE(summarize_path(long_name, 4096).size(), 4096u);
}
