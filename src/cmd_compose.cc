// `volprep compose`: prepare every bind mount of a Compose project for the user its service
// runs as. Read the project, resolve the mapping, ask the engine who each image runs as,
// plan every mount (conflicts and refusals stop the run here), create missing sources, and
// hand one job per mount to the driver core, which writes one journal for the project.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/compose_cli.h"
#include "volprep/compose_plan.h"
#include "volprep/docker_engine.h"
#include "volprep/report.h"

extern char** environ;

namespace volprep {
namespace {

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

// Why service `s` needs the engine, for the message that it cannot be reached.
std::string engine_need(const ComposeService& s) {
  if (!s.user) return "service " + s.name + ": it has no user:, so it runs as its image's USER, which the Docker engine tells";
  const std::string& spec = *s.user;
  const auto colon = spec.find(':');
  const std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  const bool numbers = parse_u32(spec.substr(0, colon)) && (group.empty() || parse_u32(group));
  return "service " + s.name + ": its user: " + (s.user_text.empty() ? spec : s.user_text) + " (" + s.user_loc.str() +
         (numbers ? ") has no group, which the image's /etc/passwd entry of that uid gives, read through the Docker engine"
                  : ") names a user or group, found in the image's /etc/passwd or /etc/group through the Docker engine");
}

// Who each selected service runs as, the engine asked once per image. Images the engine does
// not have are named together, with the services that need them.
// The engine is DOCKER_HOST's, else root's at /var/run/docker.sock, or with --rootless and
// --podman-rootless the user's own (its socket in their runtime directory; the engine may be
// served by them). Under --host-root (`host_root`), the engine's socket is below that
// directory unless DOCKER_HOST names one. An engine reached through a socket below it is that
// host's: the layer paths it reports are its own, read below the host root; one reached
// elsewhere is this machine's, its paths read as they are.
Result<std::vector<ServicePlanInput>> identify(const ComposeProject& project,
                                               const std::vector<const ComposeService*>& services,
                                               const Mapping& mapping, const std::optional<std::string>& host_root) {
  UniqueFd socket_dir;  // the host root's var/run, resolved inside it: outlives the engine
  std::optional<DockerEngine> engine;
  std::map<std::string, ImageFacts> images;
  std::map<std::string, std::vector<std::string>> missing;  // image -> services
  std::vector<ServicePlanInput> out;
  for (const ComposeService* s : services) {
    ServicePlanInput in{s, {}, 0, 0};
    auto refs = service_images(project, *s);
    auto user = service_user(*s, refs.empty() ? "" : refs[0], nullptr);
    if (!user) return user.error();
    if (user->needs_image && !s->x.skip) {
      if (refs.empty())
        return config_error(s->loc.str() + ": service " + s->name + " has neither image: nor build:");
      if (!engine) {
        const char* host = std::getenv("DOCKER_HOST");
        std::string socket = host ? host : "";
        bool below_root = false;
        UniqueFd root;  // the host root, opened once: for the socket, then for the engine
        if (host_root) {
          root.reset(::open(host_root->c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
          if (!root.valid()) return config_error("cannot open the host root " + *host_root + ": " + std::strerror(errno));
        }
        const std::string rel = mapping.engine_owner ? mapping.engine_socket : "var/run/docker.sock";
        const std::string dir = rel.substr(0, rel.rfind('/'));
        if (socket.empty() && host_root) {
          // var/run is an absolute symlink to /run on Debian: resolved inside the host root,
          // not to this machine's /run, and reached through its descriptor.
          open_how how{};
          how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
          how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
          socket_dir.reset(int(openat2_retrying(root.get(), dir.c_str(), &how)));
          if (!socket_dir.valid())
            return config_error("cannot open " + dir + " below the host root " + *host_root + ": " + std::strerror(errno));
          socket = "unix:///proc/self/fd/" + std::to_string(socket_dir.get()) + rel.substr(dir.size());
          below_root = true;
        } else if (socket.empty() && mapping.engine_owner) {
          socket = "unix:///" + rel;
        }
        auto e = DockerEngine::connect(socket, mapping.engine_owner);
        if (!e) return Error{e.error().code, engine_need(*s) + ": " + e.error().message +
                                                 ". Or give its ids in the service: x-volprep: {as: UID:GID}; nothing changed"};
        engine = std::move(*e);
        std::string root_dir = host_root.value_or("");
        while (root_dir.size() > 1 && root_dir.back() == '/') root_dir.pop_back();
        if (host_root && (below_root || socket.starts_with("unix://" + root_dir + "/")))
          engine->set_host_root(std::move(root));
      }
      const ImageFacts* found = nullptr;
      for (const auto& ref : refs) {
        if (!images.count(ref)) {
          auto facts = engine->image(ref);
          if (!facts) return facts.error();
          images[ref] = std::move(*facts);
        }
        if (images[ref].present) {
          found = &images[ref];
          user->image = ref;
          break;
        }
      }
      if (!found) {
        missing[refs[0]].push_back(s->name);
        continue;
      }
      ImageFacts& facts = images[user->image];
      if (user_spec_needs_files(s->user.value_or(facts.user)) && !facts.passwd && !facts.group) {
        auto r = engine->read_user_files(user->image, facts);
        if (!r) return r.error();
        spdlog::debug("image {}: /etc/passwd and /etc/group read {}", user->image,
                      engine->read_layers() ? "from its overlay2 layers" : "through a container created for that");
      }
      user = service_user(*s, user->image, &facts);
      if (!user) return config_error("service " + s->name + ": " + user.error().message);
    }
    in.user = std::move(*user);
    if (in.user.host_ids) {
      in.host_uid = in.user.container.uid;
      in.host_gid = in.user.container.gid;
    } else if (!s->x.skip) {
      auto host = to_host_ids(mapping, {in.user.container.uid, in.user.container.gid});
      if (!host) return config_error("service " + s->name + " (" + in.user.why + "): " + host.error().message);
      in.host_uid = host->uid;
      in.host_gid = host->gid;
    }
    out.push_back(std::move(in));
  }
  if (!missing.empty()) {
    std::string text;
    for (const auto& [image, names] : missing) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      text += (text.empty() ? "" : "; ") + std::string("image ") + image + " (service " + list + ")";
    }
    return config_error("the Docker engine does not have " + text +
                        ": who the service runs as is in the image. Pull or build it first (docker compose "
                        "pull / build), or say it in the service with x-volprep: {as: UID:GID}; nothing changed");
  }
  return out;
}

// The nearest directory of `path` that exists, resolved safely, and the names below it.
struct Ancestor {
  ResolvedPath dir;
  std::vector<std::string> missing;
};
Result<Ancestor> existing_ancestor(const std::string& path) {
  namespace fs = std::filesystem;
  Ancestor a;
  fs::path p(path);
  for (;;) {
    auto r = resolve_path(p.string(), false);
    if (r) {
      a.dir = std::move(*r);
      break;
    }
    if (r.error().code != kExitUsage || p == p.root_path()) return r.error();
    a.missing.insert(a.missing.begin(), p.filename().string());
    p = p.parent_path();
  }
  if (!S_ISDIR(a.dir.st.mode)) return config_error(a.dir.real + " is not a directory");
  return a;
}

// Where sources may be changed or created: the project directory, and each --allow-source.
Result<SourceScope> source_scope(const ComposeProject& project, const std::vector<std::string>& allowed,
                                 const Mapping& mapping) {
  SourceScope scope;
  scope.project = project.real_directory;
  scope.project_owner = project.owner;
  if (auto why = refusal_reason(project.real_directory, {}); !why.empty())
    scope.no_project = "the project directory " + project.real_directory + " holds none (" + why + ")";
  for (const auto& dir : allowed) {
    auto r = resolve_path(dir, false);
    if (!r) return Error{r.error().code, "--allow-source: " + r.error().message};
    scope.allowed.push_back(r->real);
  }
  if (!mapping.uid_map.is_identity()) scope.uid_map = mapping.uid_map;  // else every uid would be a container's
  return scope;
}

SourceFacts probe_source(const std::string& path, uint32_t uid, uint32_t gid, const VolumeSafety& safety,
                         const SourceScope& scope) {
  SourceFacts f;
  auto r = resolve_path(path, false);
  if (!r && r.error().code == kExitUsage) {
    auto a = existing_ancestor(path);
    if (!a) {
      f.error = a.error().message;
      f.error_code = a.error().code;
      return f;
    }
    f.real = a->dir.real;
    for (const auto& m : a->missing) f.real += (f.real == "/" ? "" : "/") + m;
    f.refusal = refusal_reason(f.real, safety);
    f.outside = out_of_scope(scope, f.real, std::nullopt, uid);
    return f;
  }
  if (!r) {
    f.error = r.error().message;
    f.error_code = r.error().code;
    return f;
  }
  f.exists = true;
  f.real = r->real;
  f.st = r->st;
  f.refusal = refusal_reason(f.real, safety);
  if (f.refusal.empty() && is_pseudo_fs(fs_type(r->fd.get()))) f.refusal = "it is on a pseudo filesystem";
  f.read_only_mount = on_read_only_mount(r->fd.get());
  f.outside = out_of_scope(scope, f.real, f.st.uid, uid);
  {  // for a read-only mount left alone (the plan says which): the service's user may read it
    std::optional<Acl> acl;
    std::string raw;
    if (r->parent.valid() && get_xattr_at(r->parent.get(), r->name, kAclAccessXattr, raw) == 0) acl = Acl::parse(raw);
    uint16_t want = S_ISDIR(f.st.mode) ? 5 : 4;
    f.readable = access_of(f.st.uid, f.st.gid, f.st.mode, acl, {uid, {gid}, false}).allows(want);
  }
  return f;
}

// The missing bind sources, made as root 0755 one directory at a time below the nearest
// existing directory, by descriptor (never through a symlink), then opened and vetted as the
// others were: the job's policy then gives each to its service's user, journaled. A failure
// removes what was made.
struct MadeSources {
  std::vector<VolumeRoot> volumes;  // in the order of `paths`
  std::vector<std::string> made;    // every directory made, outermost first
};
Result<MadeSources> create_sources(const std::vector<std::string>& paths, const VolumeSafety& safety) {
  struct Made {
    UniqueFd parent;
    std::string name, path;
  };
  std::vector<Made> made;
  auto undo = [&](Error e) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) ::unlinkat(it->parent.get(), it->name.c_str(), AT_REMOVEDIR);
    if (!made.empty()) e.message += "; the directories made for it are removed again";
    return e;
  };
  for (const auto& path : paths) {
    auto a = existing_ancestor(path);
    if (!a) return undo(a.error());
    UniqueFd dir(::openat(a->dir.fd.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    std::string at = a->dir.real;
    for (const auto& name : a->missing) {
      at += (at == "/" ? "" : "/") + name;
      if (::mkdirat(dir.get(), name.c_str(), 0755) < 0)  // EEXIST too: it appeared since the plan
        return undo(config_error("cannot create " + path + ": " + at + ": " + std::strerror(errno)));
      made.push_back({UniqueFd(::openat(dir.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC)), name, at});
      int next = ::openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) return undo(config_error("cannot create " + path + ": " + at + ": " + std::strerror(errno)));
      dir.reset(next);
    }
  }
  auto volumes = open_volumes(paths, safety);
  if (!volumes) return undo(volumes.error());
  MadeSources out{std::move(*volumes), {}};
  for (const auto& m : made) out.made.push_back(m.path);
  return out;
}

// The --exclude pattern of one path below a tree and nothing else: anchored ("./"), its
// wildcards escaped as fnmatch reads them.
std::string exclude_exactly(const std::string& rel) {
  std::string out = "./";
  for (char c : rel) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string heading_json(const MountPlan& p) {
  static const char* const kActions[] = {"prepare", "create", "read-check", "skip"};
  nlohmann::json j = {{"service", p.service},
                      {"also", p.also},
                      {"kind", p.mount.kind_name()},
                      {"source", p.mount.source},
                      {"target", p.mount.target},
                      {"read_only", p.mount.read_only},
                      {"action", kActions[p.action]},
                      {"note", p.note}};
  if (p.action == MountPlan::kPrepare || p.action == MountPlan::kCreate) {
    j["mode"] = p.target.acl ? "acl" : "own";
    j["container"] = std::to_string(p.container.uid) + ":" + std::to_string(p.container.gid);
    j["host"] = std::to_string(p.host_uid) + ":" + std::to_string(p.host_gid);
  }
  return nlohmann::json{{"mount", j}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void setup_compose(CLI::App& app, ComposeCmdOptions& o) {
  app.add_option("service", o.services, "Services to prepare (default: every active one), with those they depend on");
  app.add_option("-f,--file", o.files, "Compose file (repeatable, merged in order; default: compose.yaml and the like)")
      ->allow_extra_args(false);
  app.add_option("--project-directory", o.project_directory,
                 "The project's directory (default: the first file's); relative paths and .env are read there");
  app.add_option("--env-file", o.env_file, "Read variables from FILE instead of the project's .env");
  app.add_option("--compose-cli", o.compose_cli,
                 "Read the project through a Compose CLI's `config`, run with the caller's environment (but a fixed "
                 "PATH and no LD_*, PYTHON* and the like): auto (the Compose v2 plugin, then docker-compose, "
                 "else the built-in reader), never, or the CLI's PATH")
      ->capture_default_str();
  add_run_options(app, o.run, "A dry run that exits 1 when any mount would change");
  app.add_flag("--force", o.force, "Proceed although the remap configuration has errors");
  app.add_option("--allow-source", o.allow_sources,
                 "Also prepare or create bind sources below DIR, outside the project directory (repeatable); never "
                 "the project directory itself, one above it, nor one holding its compose or env files")
      ->type_name("DIR");
  setup_source_options(app, o.source);
}

int run_compose(const ComposeCmdOptions& options) {
  ComposeCmdOptions o = options;
  const auto env = process_environment();

  // 1. The project, as Compose reads it, and the services the run covers.
  ComposeOptions read;
  read.files = o.files;
  read.project_directory = o.project_directory;
  read.env_file = o.env_file;
  read.cwd = std::filesystem::current_path().string();
  read.environment = env;
  auto project = read_project(read, o.compose_cli);
  if (!project) return fail(project.error());
  for (const auto& w : project->warnings) spdlog::warn("{}", w);
  auto services = select_services(*project, o.services, env);
  if (!services) return fail(services.error());

  // 2. The active mapping.
  auto host_db = open_host_db(o.source);
  auto mapping = resolve_mapping(o.source.remap, *host_db);
  if (!mapping) return fail(mapping.error());
  if (mapping->has_errors() && !o.force) {
    log_findings(mapping->findings);
    spdlog::error("the remap configuration has errors; refusing to change files (--force overrides)");
    return kExitConfig;
  }
  log_findings(mapping->findings);

  // 3. Who each service runs as.
  auto users = identify(*project, *services, *mapping, o.source.host_root);
  if (!users) return fail(users.error());
  for (const auto& u : *users)
    if (!u.service->x.skip)
      spdlog::info("service {}: container {}:{} -> host {}:{} ({}{})", u.service->name, u.user.container.uid,
                   u.user.container.gid, u.host_uid, u.host_gid, u.user.why,
                   u.user.host_ids ? "; userns_mode: host" : "");

  // 4. The plan; conflicts and refusals (system paths, sources outside the project) end the
  // run before any change.
  VolumeSafety safety;
  if (mapping->data_root) safety.refused_exactly.push_back(*mapping->data_root);
  if (mapping->base_data_root && !mapping->base_data_root->empty())
    safety.refused_exactly.push_back(*mapping->base_data_root);
  auto scope = source_scope(*project, o.allow_sources, *mapping);
  if (!scope) return fail(scope.error());
  auto plan = plan_compose(*project, *users, [&](const std::string& path, uint32_t uid, uint32_t gid) {
    return probe_source(path, uid, gid, safety, *scope);
  });
  for (const auto& w : plan.warnings) spdlog::warn("{}", w);
  if (!plan.problems.empty()) {
    for (const auto& p : plan.problems) spdlog::error("{}", p);
    spdlog::error("project {}: {} problem{} found before any change; nothing changed", project->name,
                  plan.problems.size(), plan.problems.size() == 1 ? "" : "s");
    return plan.problem_code;
  }

  // 5. Every existing source opened and vetted; only then the missing ones made (a real run).
  const bool dry_run = o.run.dry_run || o.run.check;
  bool creates = false;
  std::vector<std::string> existing, missing;
  for (const auto& p : plan.mounts) {
    if (p.action == MountPlan::kPrepare) existing.push_back(p.real);
    if (p.action != MountPlan::kCreate) continue;
    creates = true;
    if (!dry_run) missing.push_back(p.real);
  }
  auto volumes = open_volumes(existing, safety);
  if (!volumes) return fail(volumes.error());
  // Locked before any source is made, with the directories the missing ones are made in:
  // another run on one of them, or on a tree holding one, refuses (or holds up) this one first.
  std::vector<VolumeRoot*> trees;
  for (auto& v : *volumes) trees.push_back(&v);
  if (int rc = lock_volumes(trees, o.run, {false, missing}); rc != kExitOk) return rc;
  auto made = create_sources(missing, safety);
  if (!made) return fail(made.error());
  for (const auto& dir : made->made) spdlog::info("{}: created (missing)", escape_path(dir));

  // 6. One job per mount, its own policy (mode: acl mounts of one tree: one for all their users,
  // each entry changed once); the driver journals, applies and reports.
  std::vector<std::unique_ptr<Policy>> policies;
  std::vector<VolumeJob> jobs;
  size_t next_existing = 0, next_made = 0;
  for (const auto& p : plan.mounts) {
    VolumeJob& job = jobs.emplace_back();
    job.heading = p.heading();
    job.heading_json = heading_json(p);
    if (p.action == MountPlan::kPrepare || (p.action == MountPlan::kCreate && !dry_run)) {
      job.volume = p.action == MountPlan::kPrepare ? &(*volumes)[next_existing++] : &made->volumes[next_made++];
      if (p.acl_with.empty()) {
        policies.push_back(make_prepare_policy(p.target));
      } else {
        std::vector<AclGrant> grants{*p.target.acl};
        grants.insert(grants.end(), p.acl_with.begin(), p.acl_with.end());
        policies.push_back(make_acl_grant_policy(std::move(grants)));
      }
      job.policy = policies.back().get();
      job.config.excludes = p.excludes;
      // A mount inside it whose run grants there too (compose_plan): left out here. One a
      // dry run would create is not there to leave out.
      for (size_t k : p.acl_inside)
        if (plan.mounts[k].action == MountPlan::kPrepare || !dry_run)
          job.config.excludes.push_back(exclude_exactly(plan.mounts[k].real.substr(p.real.size() + 1)));
    }
  }
  DriverOptions& run = o.run;
  run.quiet = o.quiet;
  run.header.uid_map = mapping->uid_map.to_proc();
  run.header.gid_map = mapping->gid_map.to_proc();
  run.header.command_line = o.command_line;
  // The journal has no record of a directory made: its header says which, for the reader.
  for (size_t i = 0; i < made->made.size(); ++i)
    run.header.command_line += (i ? ", " : "  # created: ") + escape_path(made->made[i]);
  run.header.project = project->name;  // one journal for the whole project, one rollback
  run.header.project_dir = JournalRoot{project->real_directory, project->dev_major, project->dev_minor, project->ino};
  int rc = run_volumes(jobs, run);
  if (rc == kExitOk && o.run.check && creates) rc = kExitFound;
  return rc;
}

}  // namespace volprep
