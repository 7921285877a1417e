#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "volprep/compose_cli.h"
#include "volprep/compose_plan.h"
#include "volprep/docker_engine.h"
#include "volprep/id_map.h"
#include "volprep/volume.h"

using namespace volprep;

namespace {

const std::string kFixtures = std::string(VOLPREP_FIXTURES) + "/compose";
const char kPasswd[] = "root:x:0:0:root:/root:/bin/sh\njenkins:x:1000:1000::/var/jenkins_home:/bin/bash\n"
                       "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
const char kGroup[] = "root:x:0:\nwww-data:x:33:\nstaff:x:50:\n";

std::string ids(const Result<ContainerIds>& r) {
  return r ? std::to_string(r->uid) + ":" + std::to_string(r->gid) : "error: " + r.error().message;
}

// Every source exists as a directory, except those under /missing; /etc is the system.
SourceFacts fake_probe(const std::string& path, uint32_t, uint32_t) {
  SourceFacts f;
  f.real = path;
  f.exists = !path.starts_with("/missing");
  f.st.mode = (path.ends_with(".sock") ? S_IFSOCK : S_IFDIR) | 0755;
  if (path.starts_with("/etc") || path == "/") f.refusal = "it is in the system tree /etc";
  return f;
}

ComposeService service(const std::string& name, std::vector<ComposeMount> mounts) {
  ComposeService s;
  s.name = name;
  s.mounts = std::move(mounts);
  return s;
}
ComposeMount bind(const std::string& src, const std::string& dst, bool ro = false) {
  ComposeMount m;
  m.source = src;
  m.target = dst;
  m.read_only = ro;
  return m;
}

ComposePlan plan_of(const std::vector<ComposeService>& services, std::vector<uint32_t> host_uids) {
  ComposeProject project;
  project.directory = "/srv/p";
  std::vector<ServicePlanInput> in;
  for (size_t i = 0; i < services.size(); ++i) {
    ServicePlanInput one;
    one.service = &services[i];
    one.user.container = {host_uids[i] - 500000, host_uids[i] - 500000};
    one.host_uid = one.host_gid = host_uids[i];
    in.push_back(one);
  }
  return plan_compose(project, in, fake_probe);
}

}  // namespace

TEST(ComposeUser, DockersRules) {
  EXPECT_EQ(ids(resolve_user_spec("1000", kPasswd, kGroup)), "1000:1000");  // the passwd entry's group
  EXPECT_EQ(ids(resolve_user_spec("4242", kPasswd, kGroup)), "4242:0");     // none: group 0
  EXPECT_EQ(ids(resolve_user_spec("4242", std::nullopt, std::nullopt)), "4242:0");
  EXPECT_EQ(ids(resolve_user_spec("999:999", std::nullopt, std::nullopt)), "999:999");
  EXPECT_EQ(ids(resolve_user_spec("jenkins", kPasswd, kGroup)), "1000:1000");
  EXPECT_EQ(ids(resolve_user_spec("www-data:staff", kPasswd, kGroup)), "33:50");
  EXPECT_EQ(ids(resolve_user_spec(":", kPasswd, kGroup)), "0:0");  // "${UID}:${GID}" with both unset
  EXPECT_EQ(ids(resolve_user_spec("", kPasswd, kGroup)), "0:0");
  EXPECT_EQ(ids(resolve_user_spec("nobody", kPasswd, kGroup)), "error: the image's /etc/passwd has no such user");
  EXPECT_EQ(ids(resolve_user_spec("1000:wheel", kPasswd, kGroup)), "error: the image's /etc/group has no such group");
  EXPECT_FALSE(user_spec_needs_files("1000:1000"));
  EXPECT_FALSE(user_spec_needs_files(":"));
  EXPECT_TRUE(user_spec_needs_files("1000"));
  EXPECT_TRUE(user_spec_needs_files("jenkins"));
  EXPECT_TRUE(user_spec_needs_files("1000:staff"));
}

TEST(ComposeUser, PrecedenceAsUserPuidImage) {
  ComposeService s = service("app", {});
  ImageFacts jenkins{true, "jenkins", {}, kPasswd, kGroup};
  auto u = service_user(s, "jenkins/jenkins:lts", nullptr);
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->needs_image);
  u = service_user(s, "jenkins/jenkins:lts", &jenkins);
  EXPECT_EQ(u->container.uid, 1000u);
  EXPECT_EQ(u->why, "image jenkins/jenkins:lts USER jenkins");
  s.environment = {{"PUID", "1001"}, {"PGID", "100"}};
  u = service_user(s, "x", nullptr);
  EXPECT_EQ(u->container.uid, 1001u);
  EXPECT_EQ(u->container.gid, 100u);
  s.user = "999:999";
  u = service_user(s, "x", nullptr);
  EXPECT_EQ(u->container.uid, 999u);
  s.x.as = "33:33";
  s.userns_mode = "host";
  u = service_user(s, "x", nullptr);
  EXPECT_EQ(u->container.uid, 33u);
  EXPECT_TRUE(u->host_ids);
  ImageFacts rootimg{true, "", {}, {}, {}};
  EXPECT_EQ(service_user(service("r", {}), "busybox", &rootimg)->why, "image busybox has no USER: root");
}

TEST(ComposeUser, BuildServicesUseComposesTag) {
  ComposeProject p;
  p.name = "my-app";
  ComposeService s = service("web", {});
  s.build = true;
  EXPECT_EQ(service_images(p, s), (std::vector<std::string>{"my-app-web", "myapp_web"}));
}

TEST(ComposePlan, OneJobPerBindNotesForTheRest) {
  ComposeMount vol;
  vol.kind = ComposeMount::kVolume;
  vol.source = "data";
  vol.target = "/v";
  std::vector<ComposeService> s = {service("app", {bind("/srv/p/data", "/data"), bind("/srv/p/conf", "/conf", true),
                                                   vol, bind("/etc/localtime", "/etc/localtime", true),
                                                   bind("/missing/new", "/new"), bind("/run/docker.sock", "/d.sock")})};
  auto plan = plan_of(s, {501000});
  ASSERT_TRUE(plan.problems.empty());
  ASSERT_EQ(plan.mounts.size(), 6u);
  EXPECT_EQ(plan.mounts[0].action, MountPlan::kPrepare);
  EXPECT_EQ(plan.mounts[0].heading(), "app: ./data -> /data (rw, own 1000:1000 = host 501000:501000)");
  EXPECT_EQ(plan.mounts[1].target.uid, 501000u);
  EXPECT_NE(plan.mounts[1].note.find("read-only mount"), std::string::npos);
  EXPECT_EQ(plan.mounts[2].action, MountPlan::kSkip);
  EXPECT_EQ(plan.mounts[3].action, MountPlan::kReadCheck);
  EXPECT_EQ(plan.mounts[4].action, MountPlan::kCreate);
  EXPECT_EQ(plan.mounts[5].action, MountPlan::kSkip);
  EXPECT_NE(plan.mounts[5].note.find("userns_mode: host"), std::string::npos);
}

TEST(ComposePlan, AclModeGrantsReadOnlyMountsRX) {
  std::vector<ComposeService> s = {service("app", {bind("/srv/p/a", "/a"), bind("/srv/p/b", "/b", true)})};
  s[0].x.mode = "acl";
  auto plan = plan_of(s, {501000});
  ASSERT_TRUE(plan.mounts[0].target.acl);
  EXPECT_EQ(plan.mounts[0].target.acl->perm, 6);
  EXPECT_EQ(plan.mounts[1].target.acl->perm, 4);
  EXPECT_TRUE(plan.mounts[1].target.acl->cond_x);
}

TEST(ComposePlan, RwSystemPathRefused) {
  auto plan = plan_of({service("app", {bind("/etc", "/host-etc")})}, {501000});
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problem_code, kExitRefused);
  EXPECT_NE(plan.problems[0].find("mounted read-write: refusing it"), std::string::npos) << plan.problems[0];
}

// A source that is the project directory, or holds a compose or env file the run read, is
// never handed to a container's user: read-write it is refused (whoever the service runs as),
// read-only only checked. A sibling directory is prepared as any other.
TEST(ComposePlan, SourcesHoldingTheProjectsFilesRefusedReadOnlyOnesChecked) {
  std::vector<ComposeService> s = {service("app", {bind("/srv/p", "/app"), bind("/srv", "/up"),
                                                   bind("/srv/p/conf", "/conf"), bind("/srv/p/conf/app.env", "/e"),
                                                   bind("/srv/p/data", "/data"), bind("/srv/p", "/code", true),
                                                   bind("/srv/p/conf", "/c", true)})};
  s[0].mounts[0].loc = {"compose.yaml", 5, 15};
  ComposeProject project;
  project.directory = project.real_directory = "/srv/p";
  project.control_files = {"/srv/p/.env", "/srv/p/compose.yaml", "/srv/p/conf/app.env"};
  ServicePlanInput in;
  in.service = &s[0];
  in.user.container = {1000, 1000};
  in.host_uid = in.host_gid = 501000;
  auto plan = plan_compose(project, {in}, fake_probe);
  ASSERT_EQ(plan.problems.size(), 4u);
  EXPECT_EQ(plan.problem_code, kExitRefused);
  EXPECT_EQ(plan.problems[0],
            "compose.yaml:5:15: service app: . -> /app is mounted read-write: refusing it: it is the project directory "
            "and holds the project's .env, compose.yaml and conf/app.env; a container that can write there can change "
            "what docker compose runs next. Mount a subdirectory instead, or mount it :ro, or give the service "
            "x-volprep: {skip: true}");
  EXPECT_NE(plan.problems[1].find("/srv -> /up is mounted read-write: refusing it: it holds the project's p/.env, "
                                  "p/compose.yaml and p/conf/app.env;"),
            std::string::npos)
      << plan.problems[1];
  EXPECT_NE(plan.problems[2].find("./conf -> /conf is mounted read-write: refusing it: it holds the project's app.env;"),
            std::string::npos)
      << plan.problems[2];
  EXPECT_NE(plan.problems[3].find("refusing it: it is the project's conf/app.env;"), std::string::npos)
      << plan.problems[3];
  ASSERT_EQ(plan.mounts.size(), 3u);
  EXPECT_EQ(plan.mounts[0].action, MountPlan::kPrepare);
  EXPECT_EQ(plan.mounts[0].shown, "./data");
  EXPECT_EQ(plan.mounts[1].action, MountPlan::kReadCheck);
  EXPECT_EQ(plan.mounts[1].heading(),
            "app: . -> /code (ro): it is the project directory and holds the project's .env, compose.yaml and "
            "conf/app.env, never changed: readable by host 501000:501000");
  EXPECT_EQ(plan.mounts[2].action, MountPlan::kReadCheck);
  // Without files read, the project directory is still where Compose reads .env, and a
  // directory above it holds it: a container could create .env there.
  project.control_files.clear();
  plan = plan_compose(project, {in}, fake_probe);
  ASSERT_EQ(plan.problems.size(), 2u);
  EXPECT_NE(plan.problems[0].find("it is the project directory, where Compose reads .env"), std::string::npos)
      << plan.problems[0];
  EXPECT_NE(plan.problems[1].find("/srv -> /up is mounted read-write: refusing it: it holds the project directory "
                                  "/srv/p, where Compose reads .env"),
            std::string::npos)
      << plan.problems[1];
  // Read-only, a directory above it is only checked; `/srv/pp` is beside it, not above.
  std::vector<ComposeService> ro = {service("app", {bind("/srv", "/up", true), bind("/srv/pp", "/pp")})};
  in.service = &ro[0];
  plan = plan_compose(project, {in}, fake_probe);
  EXPECT_TRUE(plan.problems.empty()) << plan.problems[0];
  ASSERT_EQ(plan.mounts.size(), 2u);
  EXPECT_EQ(plan.mounts[0].action, MountPlan::kReadCheck);
  EXPECT_NE(plan.mounts[0].note.find("it holds the project directory /srv/p"), std::string::npos) << plan.mounts[0].note;
  EXPECT_EQ(plan.mounts[1].action, MountPlan::kPrepare);
}

// A compose file is its user's, volprep is root: only the project's own tree is changed.
TEST(ComposeScope, TheProjectDirectoryAndAllowedSourcesOnly) {
  SourceScope scope;
  scope.project = "/home/bob/app";
  scope.project_owner = 1000;
  scope.uid_map = *IdMap::parse_proc("0 100000 65536\n", "test");
  EXPECT_EQ(out_of_scope(scope, "/home/bob/app/data", 1000u, 101000), "");
  EXPECT_EQ(out_of_scope(scope, "/home/bob/app", 1000u, 101000), "");
  EXPECT_EQ(out_of_scope(scope, "/home/bob/app/new", std::nullopt, 101000), "");
  EXPECT_EQ(out_of_scope(scope, "/home/bob/app/data", 0u, 101000), "");
  EXPECT_EQ(out_of_scope(scope, "/home/bob/app/data", 100033u, 101000), "");  // a container made it
  EXPECT_EQ(out_of_scope(scope, "/home/bob/app/data", 1000u, 1000), "");
  EXPECT_EQ(out_of_scope(scope, "/root/.bashrc", 0u, 1000), "it is outside the project directory /home/bob/app");
  EXPECT_EQ(out_of_scope(scope, "/home/bob/application", 1000u, 1000),
            "it is outside the project directory /home/bob/app");
  EXPECT_EQ(out_of_scope(scope, "/var/spool/cron", std::nullopt, 1000),
            "it is outside the project directory /home/bob/app");
  EXPECT_EQ(out_of_scope(scope, "/home/bob/app/alice", 1001u, 101000),
            "it is owned by uid 1001, neither root, the project directory's owner (uid 1000), a container's nor "
            "the service's");
  scope.allowed = {"/srv/shared"};
  EXPECT_EQ(out_of_scope(scope, "/srv/shared/x", 1001u, 101000), "");
  EXPECT_EQ(out_of_scope(scope, "/srv/shared", 1001u, 101000), "");
  scope.no_project = "the project directory /tmp holds none";
  EXPECT_EQ(out_of_scope(scope, "/tmp/x", 0u, 1000), "it is outside every --allow-source, and the project directory /tmp holds none");
}

TEST(ComposePlan, SourcesOutsideTheScopeRefusedReadOnlyOnesChecked) {
  std::vector<ComposeService> s = {service("app", {bind("/root/.bashrc", "/x"), bind("/var/spool/cron", "/y"),
                                                   bind("/srv/other", "/z", true), bind("/srv/p/data", "/d")})};
  s[0].mounts[0].loc = {"compose.yaml", 6, 9};
  ComposeProject project;
  project.directory = "/srv/p";
  ServicePlanInput in;
  in.service = &s[0];
  in.user.container = {1000, 1000};
  in.host_uid = in.host_gid = 1000;
  auto plan = plan_compose(project, {in}, [](const std::string& path, uint32_t uid, uint32_t) {
    SourceFacts f = fake_probe(path, uid, uid);
    SourceScope scope;
    scope.project = "/srv/p";
    f.outside = out_of_scope(scope, path, f.exists ? std::optional<uint32_t>(0) : std::nullopt, uid);
    return f;
  });
  ASSERT_EQ(plan.problems.size(), 2u);
  EXPECT_EQ(plan.problem_code, kExitRefused);
  EXPECT_EQ(plan.problems[0], "compose.yaml:6:9: service app: /root/.bashrc: refusing to change it: it is outside the "
                              "project directory /srv/p (a compose file is its user's to write, volprep runs as root; "
                              "--allow-source DIR allows sources below DIR)");
  EXPECT_NE(plan.problems[1].find("/var/spool/cron: refusing to change it"), std::string::npos) << plan.problems[1];
  // The read-only one outside is only checked; the project's own is prepared.
  ASSERT_EQ(plan.mounts.size(), 2u);
  EXPECT_EQ(plan.mounts[0].action, MountPlan::kReadCheck);
  EXPECT_NE(plan.mounts[0].note.find("outside what volprep may change"), std::string::npos) << plan.mounts[0].note;
  EXPECT_EQ(plan.mounts[1].action, MountPlan::kPrepare);
}

TEST(ComposePlan, ConflictsSharedPathsAndNesting) {
  // Two users, one path: a conflict; the same user: one job.
  auto plan = plan_of({service("a", {bind("/srv/p/d", "/d")}), service("b", {bind("/srv/p/d", "/d")})}, {501000, 502000});
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problem_code, kExitConfig);
  EXPECT_NE(plan.problems[0].find("conflict: a mounts ./d as 1000:1000"), std::string::npos) << plan.problems[0];
  plan = plan_of({service("a", {bind("/srv/p/d", "/d")}), service("b", {bind("/srv/p/d", "/d")})}, {501000, 501000});
  EXPECT_TRUE(plan.problems.empty());
  EXPECT_EQ(plan.mounts[0].also, std::vector<std::string>{"b"});
  EXPECT_EQ(plan.mounts[1].action, MountPlan::kSkip);
  // One inside another; the message names where both are, the second first.
  auto at = [](ComposeMount m, int line) {
    m.loc = {"/srv/p/compose.yaml", line, 15};
    return m;
  };
  plan = plan_of({service("a", {at(bind("/srv/p/d", "/d"), 5)}), service("b", {at(bind("/srv/p/d/sub", "/s"), 9)})},
                 {501000, 502000});
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_TRUE(plan.problems[0].starts_with("/srv/p/compose.yaml:9:15: conflict: a mounts ./d as 1000:1000 (host "
                                           "501000:501000, own, /srv/p/compose.yaml:5:15) and b mounts ./d/sub, inside it,"))
      << plan.problems[0];
  // Both by ACL: two grants, no conflict.
  std::vector<ComposeService> acl = {service("a", {bind("/srv/p/d", "/d")}), service("b", {bind("/srv/p/d", "/d")})};
  acl[0].x.mode = acl[1].x.mode = "acl";
  EXPECT_TRUE(plan_of(acl, {501000, 502000}).problems.empty());
}

// mode: acl mounts of one tree as different users: each entry is one change, made by one run
// for every user whose mount holds it. The same path: the second mount's grant goes into the
// first's run; one inside another: the inner run grants the outer's users too, and the outer
// run leaves it out (a later run would find its root changed since it was opened, exit 4).
TEST(ComposePlan, AclMountsOfOneTreeAreOneRunAnEntry) {
  std::vector<ComposeService> s = {service("a", {bind("/srv/p/d", "/d")}), service("b", {bind("/srv/p/d", "/d", true)}),
                                   service("c", {bind("/srv/p/d/in", "/i")}), service("e", {bind("/srv/p/d/in/x", "/x")}),
                                   service("f", {bind("/srv/p/d2", "/d")})};
  for (auto& one : s) one.x.mode = "acl";
  auto plan = plan_of(s, {501000, 502000, 503000, 504000, 505000});
  ASSERT_TRUE(plan.problems.empty());
  ASSERT_EQ(plan.mounts.size(), 5u);
  const auto& a = plan.mounts[0];
  EXPECT_EQ(a.action, MountPlan::kPrepare);
  ASSERT_EQ(a.acl_with.size(), 1u);  // b's, read-only
  EXPECT_EQ(a.acl_with[0].uid, 502000u);
  EXPECT_EQ(a.acl_with[0].perm, 4);
  EXPECT_EQ(a.acl_inside, std::vector<size_t>{2});  // c's; e's is inside c's
  EXPECT_NE(a.note.find("left to its own run: ./d/in (c's)"), std::string::npos) << a.note;
  EXPECT_EQ(plan.mounts[1].action, MountPlan::kSkip);
  EXPECT_NE(plan.mounts[1].note.find("the same path as a's mount"), std::string::npos) << plan.mounts[1].note;
  const auto& c = plan.mounts[2];
  EXPECT_EQ(c.action, MountPlan::kPrepare);
  ASSERT_EQ(c.acl_with.size(), 2u);  // a's and b's
  EXPECT_EQ(c.acl_with[0].uid, 501000u);
  EXPECT_EQ(c.acl_with[1].uid, 502000u);
  EXPECT_EQ(c.acl_inside, std::vector<size_t>{3});
  EXPECT_NE(c.note.find("inside a's mount"), std::string::npos) << c.note;
  ASSERT_EQ(plan.mounts[3].acl_with.size(), 3u);  // a's, b's, c's
  EXPECT_TRUE(plan.mounts[3].acl_inside.empty());
  EXPECT_TRUE(plan.mounts[4].acl_with.empty());  // /srv/p/d2 is beside /srv/p/d, not in it
  EXPECT_TRUE(plan.mounts[4].acl_inside.empty());
}

// A joined mode: acl run walks once for every user: one user's x-volprep.exclude would keep
// the others' grants out, or their grants would reach what it excluded. Mounts of one path
// join only with the same excludes; one inside another only without any; else a conflict.
TEST(ComposePlan, AclMountsWithDifferentExcludesConflict) {
  auto with = [](std::vector<ComposeService> s, std::vector<std::vector<std::string>> excludes) {
    for (size_t i = 0; i < s.size(); ++i) {
      s[i].x.mode = "acl";
      s[i].x.excludes = excludes[i];
    }
    return plan_of(s, {501000, 501001, 501002});
  };
  auto plan = with({service("a", {bind("/srv/p/shared", "/s")}), service("b", {bind("/srv/p/shared", "/s")})},
                   {{}, {"./secrets"}});
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problem_code, kExitConfig);
  EXPECT_EQ(plan.problems[0],
            "conflict: a mounts ./shared (acl, no x-volprep.exclude) and b mounts it (acl, with x-volprep.exclude): "
            "different x-volprep.exclude; one run grants both users every entry it walks, so one's exclude would not "
            "hold for the other: give both the same x-volprep.exclude");
  EXPECT_TRUE(plan.mounts[0].acl_with.empty());
  // The same excludes, in any order: one run.
  plan = with({service("a", {bind("/srv/p/shared", "/s")}), service("b", {bind("/srv/p/shared", "/s")})},
              {{"x", "./secrets"}, {"./secrets", "x"}});
  EXPECT_TRUE(plan.problems.empty()) << plan.problems[0];
  EXPECT_EQ(plan.mounts[0].acl_with.size(), 1u);
  // One inside another: either's exclude is a conflict.
  for (auto ex : std::vector<std::vector<std::vector<std::string>>>{{{"secret"}, {}}, {{}, {"secret"}},
                                                                     {{"secret"}, {"secret"}}}) {
    plan = with({service("a", {bind("/srv/p/shared", "/s")}), service("c", {bind("/srv/p/shared/inner", "/i")})}, ex);
    ASSERT_EQ(plan.problems.size(), 1u);
    EXPECT_NE(plan.problems[0].find("conflict: a mounts ./shared (acl, "), std::string::npos) << plan.problems[0];
    EXPECT_NE(plan.problems[0].find("c mounts ./shared/inner, inside it, (acl, "), std::string::npos)
        << plan.problems[0];
    EXPECT_NE(plan.problems[0].find("different x-volprep.exclude"), std::string::npos) << plan.problems[0];
    EXPECT_NE(plan.problems[0].find("give neither an x-volprep.exclude"), std::string::npos) << plan.problems[0];
  }
  // Beside each other, excludes are each run's own.
  plan = with({service("a", {bind("/srv/p/shared", "/s")}), service("c", {bind("/srv/p/other", "/o")})},
              {{"secret"}, {}});
  EXPECT_TRUE(plan.problems.empty()) << plan.problems[0];
}

TEST(DockerEngine, TarAndReferences) {
  std::string tar(1536, '\0');
  std::memcpy(tar.data(), "passwd", 6);
  std::memcpy(tar.data() + 124, "00000000005", 11);
  tar[156] = '0';
  std::memcpy(tar.data() + 512, "root\n", 5);
  EXPECT_EQ(*first_file_in_tar(tar, "x"), "root\n");
  tar[156] = '2';
  EXPECT_FALSE(first_file_in_tar(tar, "x").ok());
  EXPECT_TRUE(valid_image_ref("registry.example:5000/jenkins/jenkins:lts"));
  EXPECT_TRUE(valid_image_ref("busybox@sha256:abc"));
  EXPECT_FALSE(valid_image_ref("../../containers/create"));
  EXPECT_FALSE(valid_image_ref("a?b"));
}

// A chunk size near 2^64 must not wrap the position around and read the body again.
TEST(DockerEngine, DechunkRefusesSizesPastTheEnd) {
  EXPECT_EQ(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
  EXPECT_EQ(dechunk("ffffffffffffffff\r\nab\r\n0\r\n\r\n"), std::nullopt);
  EXPECT_EQ(dechunk("fffffffffffffffe\r\n1\r\nx\r\n0\r\n\r\n"), std::nullopt);
  EXPECT_EQ(dechunk("4\r\nabc"), std::nullopt);
  EXPECT_EQ(dechunk("3\r\nabc"), std::nullopt);
}

// The CLI sees the caller's variables, as `docker compose up` would (the shell's DATA_DIR
// wins over .env, a ${VAR:?} set only in the shell is set), with a fixed PATH and nothing that
// makes the linker, libc or an interpreter load other code.
TEST(ComposeCli, TheCallersEnvironmentButWhatLoadsCode) {
  auto env = compose_cli_environment({{"PATH", "/home/bob/bin:."}, {"LD_PRELOAD", "/home/bob/x.so"},
                                      {"LD_LIBRARY_PATH", "/home/bob/lib"}, {"BASH_ENV", "/home/bob/rc"},
                                      {"BASH_FUNC_f%%", "() { id; }"}, {"PYTHONPATH", "/home/bob/py"},
                                      {"GCONV_PATH", "/home/bob/gconv"}, {"TMPDIR", "/root/tmp"},
                                      {"OPENSSL_CONF", "/home/bob/ssl.cnf"}, {"OPENSSL_MODULES", "/home/bob/ossl"},
                                      {"OPENSSL_ENGINES", "/home/bob/eng"}, {"GIT_SSH_COMMAND", "/home/bob/x"},
                                      {"GIT_CONFIG_GLOBAL", "/home/bob/gitconfig"}, {"XDG_CONFIG_HOME", "/home/bob/.config"},
                                      {"SSL_CERT_FILE", "/etc/ssl/ca.pem"},
                                      {"HOME", "/root"}, {"DOCKER_HOST", "unix:///run/d.sock"},
                                      {"COMPOSE_PROFILES", "a"}, {"DATA_DIR", "./d2"}, {"APP_UID", "1000"}});
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "APP_UID=1000", "COMPOSE_PROFILES=a",
                                           "DATA_DIR=./d2", "DOCKER_HOST=unix:///run/d.sock", "HOME=/root",
                                           "SSL_CERT_FILE=/etc/ssl/ca.pem"}));
}

// A root-owned script in root's directories whose interpreter is env still runs what PATH finds.
TEST(ComposeCli, AScriptThroughEnvIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: only root's files pass the rule";
  char tmpl[] = "/tmp/volprep-cli-test.XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ::chmod(dir.c_str(), 0755);
  std::string script = dir + "/docker-compose";
  std::ofstream(script) << "#!/usr/bin/env python3\nprint()\n";
  ::chmod(script.c_str(), 0755);
  EXPECT_NE(unsafe_executable(script).find("its interpreter is env"), std::string::npos) << unsafe_executable(script);
  std::ofstream(script) << "#!/bin/sh\necho\n";
  EXPECT_EQ(unsafe_executable(script), "");
  std::filesystem::remove_all(dir);
}

// The rule for what root runs, shared by the Compose CLI and mount's unit files.
TEST(RootOnlyPath, OwnerAndWritersOfEveryComponent) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: only root's files pass the rule";
  EXPECT_EQ(why_not_root_only("/usr/bin/env"), "");
  char tmpl[] = "/tmp/volprep-rootonly-test.XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string file = dir + "/f";
  std::ofstream(file) << "x";
  ::chmod(dir.c_str(), 0755);
  EXPECT_EQ(why_not_root_only(file), "");
  ::chmod(dir.c_str(), 0775);
  EXPECT_EQ(why_not_root_only(file), dir + " is writable by its group or others");
  ::chmod(dir.c_str(), 0755);
  ASSERT_EQ(::chown(file.c_str(), 1234, 1234), 0);
  EXPECT_EQ(why_not_root_only(file), file + " is owned by uid 1234");
  std::filesystem::remove_all(dir);
}

// An image's /etc/passwd read from overlay2 layer directories as overlayfs shows it: the
// topmost layer that has it wins, a whiteout or an opaque /etc above hides the lower ones,
// and anything the merge needs more for (a symlink, a redirect, a metacopy, a layer not
// there) is left to the container method.
TEST(DockerEngine, FileFromOverlayLayers) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/volprep-layers-test.XXXXXX";
  const std::string root = ::mkdtemp(tmpl);
  auto layer = [&](const std::string& name) {
    fs::create_directories(root + "/" + name + "/etc");
    return root + "/" + name;
  };
  auto write = [](const std::string& path, const std::string& text) { std::ofstream(path) << text; };
  const std::string base = layer("base"), mid = layer("mid"), top = layer("top"), none = root + "/none";
  fs::create_directories(none);
  write(base + "/etc/passwd", "base\n");
  write(base + "/etc/group", "basegroup\n");
  write(top + "/etc/passwd", "top\n");
  ASSERT_EQ(::mknod((mid + "/etc/passwd").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);  // a whiteout
  auto read = [](std::vector<std::string> layers, const char* name) {
    LayerFile f = read_from_layers(layers, "etc", name);
    return f.state == LayerFile::kFound ? f.content : f.state == LayerFile::kAbsent ? "(absent)" : "(unsupported)";
  };
  EXPECT_EQ(read({base}, "passwd"), "base\n");
  EXPECT_EQ(read({none, base}, "passwd"), "base\n");  // a layer without etc/
  EXPECT_EQ(read({top, mid, base}, "passwd"), "top\n");
  EXPECT_EQ(read({mid, base}, "passwd"), "(absent)");
  EXPECT_EQ(read({mid, base}, "group"), "basegroup\n");
  EXPECT_EQ(read({top, base}, "shadow"), "(absent)");
  EXPECT_EQ(read({root + "/gone", base}, "passwd"), "(unsupported)");
  EXPECT_EQ(read({base}, "../etc/passwd"), "(unsupported)");

  const std::string links = layer("links");
  ASSERT_EQ(::symlink("/etc/passwd", (links + "/etc/passwd").c_str()), 0);
  EXPECT_EQ(read({links, base}, "passwd"), "(unsupported)");  // a symlink in a layer is never followed
  const std::string etclink = root + "/etclink";
  fs::create_directories(etclink);
  ASSERT_EQ(::symlink("/etc", (etclink + "/etc").c_str()), 0);
  EXPECT_EQ(read({etclink, base}, "passwd"), "(unsupported)");
  const std::string gone = root + "/etcgone";
  fs::create_directories(gone);
  ASSERT_EQ(::mknod((gone + "/etc").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  EXPECT_EQ(read({gone, base}, "passwd"), "(absent)");

  // trusted.overlay.* need root and a filesystem that keeps them.
  const std::string opaque = layer("opaque");
  write(opaque + "/etc/group", "opaquegroup\n");
  if (::setxattr((opaque + "/etc").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0) {
    EXPECT_EQ(read({opaque, base}, "passwd"), "(absent)");
    EXPECT_EQ(read({opaque, base}, "group"), "opaquegroup\n");
    const std::string renamed = layer("renamed");
    ASSERT_EQ(::setxattr((renamed + "/etc").c_str(), "trusted.overlay.redirect", "/x", 2, 0), 0);
    EXPECT_EQ(read({renamed, base}, "passwd"), "(unsupported)");
    const std::string meta = layer("meta");
    write(meta + "/etc/passwd", "");
    ASSERT_EQ(::setxattr((meta + "/etc/passwd").c_str(), "trusted.overlay.metacopy", "", 0, 0), 0);
    EXPECT_EQ(read({meta, base}, "passwd"), "(unsupported)");
    const std::string xwhiteouts = layer("xwhiteouts");  // opaque "x": whiteouts by attribute
    ASSERT_EQ(::setxattr((xwhiteouts + "/etc").c_str(), "trusted.overlay.opaque", "x", 1, 0), 0);
    EXPECT_EQ(read({xwhiteouts, base}, "passwd"), "(unsupported)");
  }
  fs::remove_all(root);
}

// Under --host-root the engine's layer paths are the host's: read below the host root's
// descriptor, never from this machine's root, and no symlink followed on the way there.
TEST(DockerEngine, LayersBelowAHostRoot) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/volprep-hostroot-test.XXXXXX";
  const std::string host = ::mkdtemp(tmpl);
  const std::string diff = "/var/lib/docker/overlay2/abc/diff";
  fs::create_directories(host + diff + "/etc");
  std::ofstream(host + diff + "/etc/passwd") << "app:x:1000:1000::/:/bin/sh\n";
  UniqueFd root(::open(host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root.valid());
  LayerFile f = read_from_layers({diff}, "etc", "passwd", root.get());
  ASSERT_EQ(f.state, LayerFile::kFound) << f.why;
  EXPECT_EQ(f.content, "app:x:1000:1000::/:/bin/sh\n");
  EXPECT_EQ(read_from_layers({diff}, "etc", "passwd").state, LayerFile::kUnsupported);  // not on this root
  // A symlink on the way (here to the real layer, below the host root) is not followed.
  fs::create_directories(host + "/srv");
  ASSERT_EQ(::symlink("../var/lib/docker", (host + "/srv/docker").c_str()), 0);
  EXPECT_EQ(read_from_layers({"/srv/docker/overlay2/abc/diff"}, "etc", "passwd", root.get()).state,
            LayerFile::kUnsupported);
  EXPECT_EQ(read_from_layers({"/var/lib/docker/../../../../etc"}, "etc", "passwd", root.get()).state,
            LayerFile::kUnsupported);  // nor a way out of it
  fs::remove_all(host);
}

// The Compose CLI and the built-in reader give the same model, and so the same plan, on
// every fixture (docker-compose 1's quirks included: inactive profiles listed, x- keys of a
// second -f file dropped).
TEST(ComposeReaders, CliAndBuiltInAgreeOnEveryFixture) {
  auto cli = find_compose_cli("auto");
  ASSERT_TRUE(cli.ok());
  if (!*cli) GTEST_SKIP() << "no Compose CLI installed";
  struct Case {
    std::string dir;
    std::vector<std::string> files;
  };
  const std::vector<Case> cases = {{"jenkins", {}},   {"postgres", {}},   {"nextcloud", {}},
                                   {"www-data", {}},  {"gitlab", {}},     {"override", {}},
                                   {"override", {"compose.yaml", "compose.prod.yaml"}},
                                   {"env", {}},       {"longsyntax", {}}, {"userns-host", {}},
                                   {"profiles", {}}};
  auto describe = [](const ComposeProject& p) {
    std::string out;
    auto selected = select_services(p, {}, {});
    for (const auto* s : *selected) {
      out += s->name + " user=" + s->user.value_or("-") + " image=" + s->image.value_or("-") + " as=" +
             s->x.as.value_or("-") + " mode=" + s->x.mode.value_or("-") + " userns=" + s->userns_mode.value_or("-") + "\n";
      for (const auto& m : s->mounts)
        out += "  " + std::string(m.kind_name()) + " " + m.source + " -> " + m.target + (m.read_only ? " ro" : " rw") +
               (m.create_host_path ? " create" : "") + "\n";
    }
    return out;
  };
  for (const auto& c : cases) {
    ComposeOptions o;
    o.cwd = kFixtures + "/" + c.dir;
    o.files = c.files;
    o.environment = {{"HOME", "/home/op"}, {"PATH", "/usr/bin:/bin"}};
    auto builtin = read_compose(o);
    auto via_cli = read_compose_via_cli(**cli, o);
    ASSERT_TRUE(builtin.ok()) << c.dir << ": " << builtin.error().message;
    ASSERT_TRUE(via_cli.ok()) << c.dir << ": " << via_cli.error().message;
    EXPECT_EQ(describe(*builtin), describe(*via_cli)) << c.dir;
    EXPECT_EQ(builtin->name, via_cli->name);
  }
  // From another directory with --project-directory, as a systemd unit or a wrapper runs it:
  // docker-compose 1 would look for the files in the current directory.
  for (const char* dir : {"override", "env"}) {
    ComposeOptions o;
    o.cwd = "/";
    o.project_directory = kFixtures + "/" + dir;
    o.environment = {{"HOME", "/home/op"}, {"PATH", "/usr/bin:/bin"}};
    auto builtin = read_compose(o);
    auto via_cli = read_compose_via_cli(**cli, o);
    ASSERT_TRUE(builtin.ok()) << dir << ": " << builtin.error().message;
    ASSERT_TRUE(via_cli.ok()) << dir << ": " << via_cli.error().message;
    EXPECT_EQ(describe(*builtin), describe(*via_cli)) << dir;
  }
}
