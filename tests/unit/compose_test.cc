#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "volprep/compose.h"
#include "volprep/compose_plan.h"

using namespace volprep;

namespace {

const std::string kFixtures = std::string(VOLPREP_FIXTURES) + "/compose";

ComposeOptions in(const std::string& dir, std::vector<std::string> files = {}) {
  ComposeOptions o;
  o.cwd = kFixtures + "/" + dir;
  o.files = std::move(files);
  o.environment = {{"HOME", "/home/op"}};
  return o;
}

ComposeProject read_ok(const ComposeOptions& o) {
  auto p = read_compose(o);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return p.ok() ? *p : ComposeProject{};
}

const ComposeMount* mount_at(const ComposeService& s, const std::string& target) {
  for (const auto& m : s.mounts)
    if (m.target == target) return &m;
  return nullptr;
}

// A project of one file in a temporary directory, for the error cases.
class TempProject {
 public:
  explicit TempProject(const std::string& yaml, const std::string& env = "") {
    char tmpl[] = "/tmp/volprep-compose-test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::ofstream(dir_ + "/compose.yaml") << yaml;
    if (!env.empty()) std::ofstream(dir_ + "/.env") << env;
  }
  ~TempProject() { std::filesystem::remove_all(dir_); }
  ComposeOptions options() const {
    ComposeOptions o;
    o.cwd = dir_;
    return o;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace

TEST(ComposeInterpolate, EveryFormCompose) {
  Variables v{{"SET", "x"}, {"EMPTY", ""}};
  std::vector<std::string> unset;
  auto f = [&](const char* t) { return *interpolate(t, v, &unset); };
  EXPECT_EQ(f("$SET/${SET}"), "x/x");
  EXPECT_EQ(f("${NOPE:-d}|${EMPTY:-d}|${EMPTY-d}|${NOPE-d}"), "d|d||d");
  EXPECT_EQ(f("${SET:+r}|${EMPTY:+r}|${EMPTY+r}|${NOPE+r}"), "r||r|");
  EXPECT_EQ(f("$$SET costs $$5"), "$SET costs $5");
  EXPECT_EQ(f("${NOPE:-${SET}/sub}"), "x/sub");
  EXPECT_TRUE(unset.empty());
  EXPECT_EQ(f("a${NOPE}b"), "ab");
  EXPECT_EQ(unset, std::vector<std::string>{"NOPE"});
  auto err = interpolate("${NOPE:?set NOPE first}", v, nullptr);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().message, "required variable NOPE is missing a value: set NOPE first");
  EXPECT_FALSE(interpolate("${EMPTY:?}", v, nullptr).ok());
  EXPECT_EQ(*interpolate("${EMPTY?}", v, nullptr), "");
  EXPECT_FALSE(interpolate("${SET", v, nullptr).ok());
  EXPECT_FALSE(interpolate("cost $ 5", v, nullptr).ok());
  EXPECT_FALSE(interpolate("${SET!x}", v, nullptr).ok());
}

TEST(ComposeEnvFile, QuotesExportCommentsAndInterpolation) {
  auto vars = parse_env_file("# c\nexport A=1\nB = ${A}2 # comment\nC='${A} lit'\nD=\"q ${B}\\n\"\nE\n", ".env",
                             {{"A", "from-env"}});
  ASSERT_TRUE(vars.ok()) << vars.error().message;
  EXPECT_EQ(vars->at("A"), "1");
  EXPECT_EQ(vars->at("B"), "from-env2");  // the environment wins over the file, there too
  EXPECT_EQ(vars->at("C"), "${A} lit");
  EXPECT_EQ(vars->at("D"), "q from-env2\n");
  EXPECT_FALSE(vars->count("E"));
  auto bad = parse_env_file("A=1\n9X=2\n", "/p/.env", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "/p/.env:2: expected VARIABLE=VALUE");
}

// A .env may be a file its user cannot read (root reads it): no error quotes its lines.
TEST(ComposeEnvFile, ErrorsQuoteNothingButTheName) {
  for (const char* text : {"root:$y$j9T$hunter2:19000:0:99999:7:::\n", "A=1\nKEY%x=hunter2\n", "K=${hunter2\n",
                           "K=\"${X:?hunter2}\"\n", "K='hunter2\n"}) {
    auto bad = parse_env_file(text, "/p/.env", {});
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.error().message.find("hunter2"), std::string::npos) << bad.error().message;
  }
}

TEST(ComposeReader, JenkinsHasNoUserAndOneBind) {
  auto p = read_ok(in("jenkins"));
  EXPECT_EQ(p.name, "jenkins");
  ASSERT_EQ(p.services.size(), 1u);
  const auto& s = p.services[0];
  EXPECT_FALSE(s.user);
  EXPECT_EQ(*s.image, "jenkins/jenkins:lts");
  ASSERT_EQ(s.mounts.size(), 3u);  // in target order, whatever order the files give
  const auto* home = mount_at(s, "/var/jenkins_home");
  EXPECT_EQ(home->kind, ComposeMount::kBind);
  EXPECT_EQ(home->source, kFixtures + "/jenkins/jenkins_home");
  EXPECT_FALSE(home->read_only);
  EXPECT_EQ(mount_at(s, "/etc/localtime")->source, "/etc/localtime");
  EXPECT_TRUE(mount_at(s, "/etc/localtime")->read_only);
  const auto* cache = mount_at(s, "/var/cache/jenkins");
  EXPECT_EQ(cache->kind, ComposeMount::kVolume);
  EXPECT_EQ(cache->loc.str(), kFixtures + "/jenkins/compose.yaml:10:9");
}

TEST(ComposeReader, PostgresNumericUserInTheOldFileName) {
  auto p = read_ok(in("postgres"));
  ASSERT_EQ(p.services.size(), 1u);
  EXPECT_EQ(*p.services[0].user, "999:999");
  EXPECT_EQ(p.services[0].user_loc.line, 5);
  EXPECT_TRUE(mount_at(p.services[0], "/docker-entrypoint-initdb.d/init.sql")->read_only);
}

TEST(ComposeReader, NextcloudSeveralBindsMergeKeysAndExtension) {
  auto p = read_ok(in("nextcloud"));
  ASSERT_EQ(p.services.size(), 2u);
  const auto* app = p.find("app");
  ASSERT_TRUE(app);
  EXPECT_EQ(*app->x.as, "33:33");
  EXPECT_EQ(app->depends_on, std::vector<std::string>{"db"});
  EXPECT_EQ(app->mounts.size(), 5u);
  EXPECT_EQ(mount_at(*app, "/var/www/html/data")->source, kFixtures + "/nextcloud/data");
  EXPECT_EQ(mount_at(*p.find("db"), "/run/mysqld")->kind, ComposeMount::kVolume);
  auto only_app = select_services(p, {"app"}, {});
  ASSERT_TRUE(only_app.ok());
  EXPECT_EQ(only_app->size(), 2u);  // and db, which it depends on
}

TEST(ComposeReader, UserByName) {
  auto p = read_ok(in("www-data"));
  EXPECT_EQ(*p.services[0].user, "www-data");
}

TEST(ComposeReader, GitlabRootAndTheDockerSocket) {
  auto p = read_ok(in("gitlab"));
  const auto* runner = p.find("runner");
  ASSERT_TRUE(runner);
  EXPECT_EQ(mount_at(*runner, "/var/run/docker.sock")->source, "/var/run/docker.sock");
  EXPECT_FALSE(p.find("gitlab")->user);
}

TEST(ComposeReader, OverrideFileReadByDefault) {
  auto p = read_ok(in("override"));
  EXPECT_EQ(p.files.size(), 2u);
  const auto* app = p.find("app");
  EXPECT_EQ(*app->user, "1000:1000");
  EXPECT_EQ(app->user_loc.file, kFixtures + "/override/compose.override.yaml");
  ASSERT_EQ(app->mounts.size(), 2u);
  EXPECT_EQ(mount_at(*app, "/cache")->source, kFixtures + "/override/cache-dev");
}

TEST(ComposeReader, SeveralFilesMergeByTargetAndSecrets) {
  auto p = read_ok(in("override", {"compose.yaml", "compose.prod.yaml"}));
  const auto* app = p.find("app");
  EXPECT_EQ(*app->user, "1000");
  EXPECT_EQ(*app->x.mode, "acl");  // an x- key from the second file counts
  const auto* secret = mount_at(*app, "/run/secrets/db_password");
  ASSERT_TRUE(secret);
  EXPECT_EQ(secret->kind, ComposeMount::kSecret);
  EXPECT_EQ(secret->source, kFixtures + "/override/secrets/db_password.txt");
  EXPECT_TRUE(secret->read_only);
  const auto* worker = p.find("worker");
  ASSERT_EQ(worker->mounts.size(), 1u);
  EXPECT_EQ(worker->mounts[0].source, "/srv/queue");
  EXPECT_TRUE(worker->mounts[0].read_only);
}

TEST(ComposeReader, EnvFileInterpolationTheEnvironmentWins) {
  auto o = in("env");
  o.environment["APP_GID"] = "2000";
  auto p = read_ok(o);
  const auto& s = p.services[0];
  EXPECT_EQ(*s.image, "busybox:1.36");
  EXPECT_EQ(*s.user, "1000:2000");
  EXPECT_EQ(mount_at(s, "/data")->source, kFixtures + "/env/data");
  EXPECT_EQ(mount_at(s, "/logs")->source, kFixtures + "/env/logs");
  EXPECT_EQ(mount_at(s, "/cache")->source, kFixtures + "/env/cache");
  EXPECT_EQ(mount_at(s, "/quoted")->source, kFixtures + "/env/data/quoted dir");
  EXPECT_EQ(s.environment.at("PRICE"), "$5");
}

TEST(ComposeReader, LongSyntaxReadOnlyAndCreateHostPath) {
  auto p = read_ok(in("longsyntax"));
  const auto& s = p.services[0];
  const auto* html = mount_at(s, "/usr/share/nginx/html");
  EXPECT_TRUE(html->read_only);
  EXPECT_FALSE(html->create_host_path);
  EXPECT_FALSE(mount_at(s, "/var/cache/nginx")->create_host_path);
  EXPECT_EQ(mount_at(s, "/etc/nginx/nginx.conf")->source, "/home/op/nginx.conf");
  EXPECT_EQ(mount_at(s, "/var/log/nginx")->kind, ComposeMount::kVolume);
  EXPECT_EQ(mount_at(s, "/run")->kind, ComposeMount::kTmpfs);
}

TEST(ComposeReader, LongSyntaxCreateHostPath) {
  // docker-compose 1 refuses the key, so it is not in the fixture both readers read.
  TempProject t("services:\n  app:\n    image: busybox\n    volumes:\n      - type: bind\n        source: ./c\n"
                "        target: /c\n        bind:\n          create_host_path: true\n");
  auto p = read_compose(t.options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->services[0].mounts[0].create_host_path);
}

TEST(ComposeReader, UsernsModeHost) {
  auto p = read_ok(in("userns-host"));
  EXPECT_EQ(*p.find("monitor")->userns_mode, "host");
  EXPECT_FALSE(p.find("app")->userns_mode);
}

TEST(ComposeReader, ProfilesAsComposeActivatesThem) {
  auto p = read_ok(in("profiles"));
  auto names = [](const std::vector<const ComposeService*>& v) {
    std::vector<std::string> out;
    for (const auto* s : v) out.push_back(s->name);
    return out;
  };
  EXPECT_EQ(names(*select_services(p, {}, {})), std::vector<std::string>{"app"});
  EXPECT_EQ(names(*select_services(p, {}, {{"COMPOSE_PROFILES", "debug"}})),
            (std::vector<std::string>{"app", "debug"}));
  EXPECT_EQ(names(*select_services(p, {"debug"}, {})), std::vector<std::string>{"debug"});
  auto unknown = select_services(p, {"nope"}, {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "no such service: nope (the project profiles has 2: app, debug)");
}

TEST(ComposeReader, ProjectDirectoryAndDefaultFilesAbove) {
  auto o = in("override");
  o.cwd = kFixtures + "/override/sub/dir";  // need not exist: Compose looks upward
  auto p = read_ok(o);
  EXPECT_EQ(p.directory, kFixtures + "/override");
  auto d = in("jenkins");
  d.cwd = "/";
  d.project_directory = kFixtures + "/jenkins";
  EXPECT_EQ(read_ok(d).services.size(), 1u);
}

TEST(ComposeReaderErrors, MalformedYamlNamesFileLineColumn) {
  TempProject t("services:\n  app:\n    image: [busybox\n");
  auto p = read_compose(t.options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.error().message.starts_with(t.dir() + "/compose.yaml:4:1: malformed YAML")) << p.error().message;
}

TEST(ComposeReaderErrors, RequiredVariable) {
  TempProject t("services:\n  app:\n    image: busybox\n    user: \"${APP_UID:?set APP_UID}\"\n");
  auto p = read_compose(t.options());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message,
            t.dir() + "/compose.yaml:4:11: user: required variable APP_UID is missing a value: set APP_UID");
}

TEST(ComposeReaderErrors, UnknownExtensionKeyAndUnsetVariableWarning) {
  TempProject t("services:\n  app:\n    image: busybox\n    x-volprep:\n      user: 1000\n");
  auto p = read_compose(t.options());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, t.dir() + "/compose.yaml:5:7: service app: x-volprep: unknown key \"user\" "
                                         "(as, mode, chmod, exclude, skip)");
  TempProject w("services:\n  app:\n    image: busybox\n    volumes: [\"$DIR/x:/x\"]\n");
  auto q = read_compose(w.options());
  ASSERT_TRUE(q.ok()) << q.error().message;
  ASSERT_EQ(q->warnings.size(), 1u);
  EXPECT_EQ(q->warnings[0], w.dir() + "/compose.yaml:4:15: the variable DIR is not set; using \"\"");
  EXPECT_EQ(q->services[0].mounts[0].source, "/x");
}

TEST(ComposeReaderErrors, UndefinedSecretAndNoFile) {
  TempProject t("services:\n  app:\n    image: busybox\n    secrets: [pw]\n");
  auto p = read_compose(t.options());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, t.dir() + "/compose.yaml:4:15: service app uses the secret pw, which the top-level "
                                         "secrets: does not define");
  ComposeOptions none;
  none.cwd = "/proc/self";
  EXPECT_EQ(read_compose(none).error().code, kExitUsage);
}

// Root reads the project's files for its user: never through a symlink (by -f, COMPOSE_FILE,
// --env-file or the default names), never a file of a third user, and nothing of the file
// it refused shows in the error.
// The files that say what Compose runs, for the plan to keep out of a container's hands:
// every compose file, .env, and what they name (env_file:, include:), resolved; a file named
// but missing is not among them.
TEST(ComposeReader, TheFilesReadAreKnown) {
  TempProject t("services:\n  app: {image: busybox, env_file: [conf/app.env, missing.env]}\n", "A=1\n");
  const std::string real = std::filesystem::canonical(t.dir()).string();
  std::filesystem::create_directory(t.dir() + "/conf");
  std::ofstream(t.dir() + "/conf/app.env") << "B=2\n";
  std::ofstream(t.dir() + "/compose.override.yaml") << "services: {}\n";
  auto p = read_compose(t.options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->control_files, (std::vector<std::string>{real + "/.env", real + "/compose.override.yaml",
                                                        real + "/compose.yaml", real + "/conf/app.env"}));
  // Where the built-in reader stops (include:), the check before the Compose CLI knows them.
  std::ofstream(t.dir() + "/compose.yaml") << "include: [conf/inc.yaml]\nservices:\n  app: {image: busybox}\n";
  std::ofstream(t.dir() + "/conf/inc.yaml") << "services:\n  b: {image: busybox, env_file: app.env}\n";
  auto c = check_compose_references(t.options());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->control_files, (std::vector<std::string>{real + "/.env", real + "/compose.override.yaml",
                                                        real + "/compose.yaml", real + "/conf/app.env",
                                                        real + "/conf/inc.yaml"}));
}

TEST(ComposeReaderErrors, SymlinksAndOthersFilesRefused) {
  const std::string yaml = "services:\n  app:\n    image: busybox\n";
  TempProject secret("");
  const std::string shadow = secret.dir() + "/shadow";
  std::ofstream(shadow) << "root:$y$j9T$hunter2:19000:0:99999:7:::\n";
  auto refused = [&](const ComposeOptions& o, const std::string& why) {
    auto p = read_compose(o);
    ASSERT_FALSE(p.ok()) << why;
    EXPECT_EQ(p.error().code, kExitRefused) << why << ": " << p.error().message;
    EXPECT_EQ(p.error().message.find("hunter2"), std::string::npos) << p.error().message;
  };
  {
    TempProject t(yaml);
    std::filesystem::create_symlink(shadow, t.dir() + "/.env");
    refused(t.options(), ".env");
    auto o = t.options();
    o.env_file = ".env";
    refused(o, "--env-file");
  }
  {
    TempProject t("");
    std::filesystem::remove(t.dir() + "/compose.yaml");
    std::filesystem::create_symlink(shadow, t.dir() + "/compose.yaml");
    refused(t.options(), "compose.yaml");
    auto o = t.options();
    o.files = {"compose.yaml"};
    refused(o, "-f");
    o.files.clear();
    o.environment["COMPOSE_FILE"] = t.dir() + "/compose.yaml";
    refused(o, "COMPOSE_FILE");
  }
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give files away";
  TempProject t(yaml, "A=1\n");
  ASSERT_EQ(::chown((t.dir() + "/.env").c_str(), 4321, 4321), 0);
  refused(t.options(), "a third user's .env");
  ASSERT_EQ(::chown(t.dir().c_str(), 4321, 4321), 0);  // the project's owner's own file
  auto p = read_compose(t.options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->owner, 4321u);
}

// Files only the Compose CLI reads (include:, extends: file:, env_file:) are held to the rules
// of a compose file and .env before any reader runs: a symlink, or a third user's file, is
// refused, naming the compose file, line, column and key, and quoting nothing of the file.
TEST(ComposeReaderErrors, FilesOnlyTheCliReadsAreHeldToTheSameRules) {
  TempProject secret("");
  const std::string shadow = secret.dir() + "/shadow";
  std::ofstream(shadow) << "root:$y$j9T$hunter2:19000:0:99999:7:::\n";
  struct Case {
    std::string yaml, link, where;
  };
  const std::vector<Case> cases = {
      {"include: [other.yaml]\nservices: {}\n", "other.yaml", ":1:11: include: "},
      {"include:\n  - path: [other.yaml]\nservices: {}\n", "other.yaml", ":2:12: include: path: "},
      {"include:\n  - path: ok.yaml\n    env_file: vars\nservices: {}\n", "vars", ":3:15: include: env_file: "},
      {"services:\n  app:\n    image: busybox\n    extends: {file: base.yaml, service: b}\n", "base.yaml",
       ":4:21: service app: extends: file: "},
      {"services:\n  app:\n    image: busybox\n    env_file: vars\n", "vars", ":4:15: service app: env_file: "},
      {"services:\n  app:\n    image: busybox\n    label_file: [vars]\n", "vars", ":4:18: service app: label_file: "},
      {"services:\n  app:\n    image: busybox\n    env_file: [a.env, vars]\n", "vars",
       ":4:23: service app: env_file: "},
      {"services:\n  app:\n    image: busybox\n    env_file:\n      - path: ./vars\n        required: false\n",
       "vars", ":5:15: service app: env_file: "},
  };
  for (const auto& c : cases) {
    TempProject t(c.yaml);
    std::ofstream(t.dir() + "/ok.yaml") << "services: {}\n";
    std::ofstream(t.dir() + "/a.env") << "A=1\n";
    std::filesystem::create_symlink(shadow, t.dir() + "/" + c.link);
    for (int how = 0; how < 2; ++how) {
      auto r = how ? check_compose_references(t.options()) : read_compose(t.options());
      ASSERT_FALSE(r.ok()) << c.yaml;
      EXPECT_EQ(r.error().code, kExitRefused) << r.error().message;
      EXPECT_TRUE(r.error().message.starts_with(t.dir() + "/compose.yaml" + c.where + t.dir() + "/" + c.link +
                                                " is a symlink"))
          << r.error().message;
      EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
    }
  }
  // Followed: what an included file names is checked too (relative to it); a missing file
  // is the CLI's to report.
  {
    TempProject t("include: [sub/inc.yaml]\nservices:\n  app: {image: busybox, env_file: missing.env}\n");
    std::filesystem::create_directory(t.dir() + "/sub");
    std::ofstream(t.dir() + "/sub/inc.yaml") << "services:\n  b:\n    image: busybox\n    env_file: vars\n";
    EXPECT_TRUE(check_compose_references(t.options()).ok());
    std::filesystem::create_symlink(shadow, t.dir() + "/sub/vars");
    auto r = check_compose_references(t.options());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().message.starts_with(t.dir() + "/sub/inc.yaml:4:15: service b: env_file: " + t.dir() +
                                              "/sub/vars is a symlink"))
        << r.error().message;
  }
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give files away";
  TempProject t("services:\n  app:\n    image: busybox\n    env_file: vars\n");
  std::ofstream(t.dir() + "/vars") << "A=1\n";
  ASSERT_EQ(::chown((t.dir() + "/vars").c_str(), 4321, 4321), 0);
  auto r = read_compose(t.options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kExitRefused);
  EXPECT_NE(r.error().message.find("env_file: " + t.dir() + "/vars is owned by uid 4321"), std::string::npos)
      << r.error().message;
  ASSERT_EQ(::chown(t.dir().c_str(), 4321, 4321), 0);  // the project's owner's own file
  EXPECT_TRUE(read_compose(t.options()).ok());
}

// A value from .env may be a secret: errors quote a value as the file writes it, never as
// interpolated, and still name file, line and column.
TEST(ComposeReaderErrors, ErrorsQuoteNoVariablesValue) {
  const std::string env = "SECRET=hunter2\n";
  auto fails = [&](const std::string& yaml, const std::string& want) {
    TempProject t(yaml, env);
    auto p = read_compose(t.options());
    ASSERT_FALSE(p.ok()) << yaml;
    EXPECT_EQ(p.error().message, t.dir() + "/compose.yaml" + want);
    EXPECT_EQ(p.error().message.find("hunter2"), std::string::npos);
  };
  fails("services:\n  app:\n    image: busybox\n    user: \"${NOPE:?ask for ${SECRET}}\"\n",
        ":4:11: user: required variable NOPE is missing a value: ask for ${SECRET}");
  fails("services:\n  app:\n    image: busybox\n    volumes: [\"${SECRET}:a:b:c\"]\n",
        ":4:15: volumes: \"${SECRET}:a:b:c\": expected [SOURCE:]TARGET[:MODE]");
  fails("services:\n  app:\n    image: busybox\n    volumes:\n      - {type: bind, source: ., target: /x, "
        "read_only: \"${SECRET}\"}\n",
        ":5:56: read_only: expected true or false, found \"${SECRET}\"");
  fails("services:\n  app:\n    image: busybox\n    x-volprep: {mode: \"${SECRET}\"}\n",
        ":4:23: x-volprep.mode: expected own or acl, found \"${SECRET}\"");
  fails("services:\n  app:\n    image: [busybox ${SECRET}\n", ":3:22: malformed YAML: end of sequence flow not found");
  // user: from .env, a name the image lacks: the plan's error quotes what the file says.
  TempProject t("services:\n  app:\n    image: busybox\n    user: \"${SECRET}\"\n", env);
  auto p = read_compose(t.options());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->services[0].user, "hunter2");
  EXPECT_EQ(p->services[0].user_text, "${SECRET}");
  ImageFacts image{true, "", {}, std::string("root:x:0:0::/:/bin/sh\n"), std::string("root:x:0:\n")};
  auto u = service_user(p->services[0], "busybox", &image);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message, "user: \"${SECRET}\" (" + t.dir() + "/compose.yaml:4:11): the image's /etc/passwd has no "
                               "such user");
}
