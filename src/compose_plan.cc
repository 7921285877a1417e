// The plan of `volprep compose`: users by Docker's rules, then each mount's action, then the
// conflicts between mounts, all before anything changes.
#include "volprep/compose_plan.h"

#include <algorithm>

#include "volprep/id_map.h"

namespace volprep {
namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.emplace_back(s.substr(start, at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// The first line of a passwd or group file whose name (field 0) or id (field 2) matches.
std::optional<std::vector<std::string>> find_entry(const std::string& file, const std::string& name,
                                                   std::optional<uint32_t> id) {
  for (const auto& line : split(file, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    if (f.size() < 4) continue;
    if (f[0] == name || (id && parse_u32(f[2]) == id)) return f;
  }
  return std::nullopt;
}

bool under(const std::string& path, const std::string& top) {
  return path.size() > top.size() && path.starts_with(top) && (top == "/" || path[top.size()] == '/');
}

// "UID" or "UID:GID", numbers only.
std::optional<ContainerIds> numeric_ids(const std::string& text) {
  auto colon = text.find(':');
  auto uid = parse_u32(text.substr(0, colon));
  auto gid = colon == std::string::npos ? uid : parse_u32(text.substr(colon + 1));
  if (!uid || !gid) return std::nullopt;
  return ContainerIds{*uid, *gid};
}

std::string ids(ContainerIds c) { return std::to_string(c.uid) + ":" + std::to_string(c.gid); }

// What of the project's own files the source `real` is or holds, or "": the project directory
// (where Compose looks for .env and its files), a compose or env file the run read, or a
// directory above one. A container that may write there changes what `docker compose` runs
// next, as root, and volprep would hand it to the service's user.
std::string project_files_in(const ComposeProject& project, const std::string& real) {
  std::vector<std::string> held;
  for (const auto& f : project.control_files)
    if (under(f, real)) held.push_back(f.substr(real.size() + (real == "/" ? 0 : 1)));
  const bool is_file = std::binary_search(project.control_files.begin(), project.control_files.end(), real);
  if (is_file)
    return "it is the project's " +
           (under(real, project.real_directory) ? real.substr(project.real_directory.size() + 1) : real);
  const bool is_project = real == project.real_directory;
  // A directory above the project directory holds it, files read or not: a container that
  // may write there may create .env in it, or replace it.
  const bool above = !project.real_directory.empty() && under(project.real_directory, real);
  if (held.empty())
    return is_project ? "it is the project directory, where Compose reads .env and looks for compose files"
           : above    ? "it holds the project directory " + project.real_directory +
                         ", where Compose reads .env and looks for compose files"
                      : "";
  std::string list;
  const size_t shown = std::min<size_t>(held.size(), 4);
  for (size_t i = 0; i < shown; ++i)
    list += (i == 0 ? "" : i + 1 == held.size() ? " and " : ", ") + held[i];
  if (held.size() > shown) list += " and " + std::to_string(held.size() - shown) + " more";
  return std::string(is_project ? "it is the project directory and holds" : "it holds") + " the project's " + list;
}

// mode: acl mounts of different users, one inside another: every entry is changed once, by
// the run of the innermost mount that holds it, for every user whose mount holds it (a run
// after another's would find its root changed since it was opened; a dry run would show each
// run's plan as if the other's were not made). The run of the outer leaves the inner one out.
void join_nested_acl_runs(ComposePlan& plan) {
  auto& m = plan.mounts;
  auto granting = [&](size_t i) {
    return (m[i].action == MountPlan::kPrepare || m[i].action == MountPlan::kCreate) && m[i].target.acl;
  };
  std::vector<std::vector<AclGrant>> own(m.size());  // each run's grants of its path
  for (size_t i = 0; i < m.size(); ++i)
    if (granting(i)) {
      own[i] = {*m[i].target.acl};
      own[i].insert(own[i].end(), m[i].acl_with.begin(), m[i].acl_with.end());
    }
  for (size_t i = 0; i < m.size(); ++i) {
    if (!granting(i)) continue;
    std::string around, inside;
    for (size_t k = 0; k < m.size(); ++k) {
      if (!granting(k)) continue;
      if (under(m[i].real, m[k].real)) {
        m[i].acl_with.insert(m[i].acl_with.end(), own[k].begin(), own[k].end());
        around += (around.empty() ? "" : ", ") + m[k].service + "'s";
      }
      // The mounts directly inside: the deeper ones are left out with them.
      bool direct = under(m[k].real, m[i].real);
      for (size_t j = 0; direct && j < m.size(); ++j)
        if (granting(j) && under(m[k].real, m[j].real) && under(m[j].real, m[i].real)) direct = false;
      if (direct) {
        m[i].acl_inside.push_back(k);
        inside += (inside.empty() ? "" : ", ") + m[k].shown + " (" + m[k].service + "'s)";
      }
    }
    std::string note;
    if (!around.empty()) note = "inside " + around + " mount: the ACL entries of that run are granted here too";
    if (!inside.empty())
      note += (note.empty() ? "" : "; ") +
              std::string(m[i].acl_inside.size() > 1 ? "left to their own runs: " : "left to its own run: ") + inside;
    if (!note.empty()) m[i].note += (m[i].note.empty() ? "" : "; ") + note;
  }
}

// Whether two mode: acl mounts, `b` the same path as `a` or inside it, cannot share runs for
// their excludes: the same path shares one run, which needs the same excludes; one inside
// another shares the inner run, whose root is not the outer's, so neither may have any.
bool excludes_differ(const MountPlan& a, const MountPlan& b, bool same) {
  if (!same) return !a.excludes.empty() || !b.excludes.empty();
  auto x = a.excludes, y = b.excludes;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x != y;
}

// Not the patterns themselves: a value may be a variable's (compose.h).
std::string excludes_text(const MountPlan& p) {
  return p.excludes.empty() ? "no x-volprep.exclude" : "with x-volprep.exclude";
}

}  // namespace

bool user_spec_needs_files(const std::string& spec) {
  auto colon = spec.find(':');
  std::string u = spec.substr(0, colon);
  if (colon != std::string::npos) {
    std::string g = spec.substr(colon + 1);
    if (!g.empty() && !parse_u32(g)) return true;
  }
  if (u.empty()) return false;
  // A uid without a group takes its passwd entry's group.
  return !parse_u32(u) || colon == std::string::npos || spec.substr(colon + 1).empty();
}

Result<ContainerIds> resolve_user_spec(const std::string& spec, const std::optional<std::string>& passwd,
                                       const std::optional<std::string>& group) {
  ContainerIds out;
  auto colon = spec.find(':');
  std::string u = spec.substr(0, colon);
  std::string g = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (!u.empty()) {
    auto uid = parse_u32(u);
    std::optional<std::vector<std::string>> entry;
    if (passwd) entry = find_entry(*passwd, u, uid);
    if (entry) {
      auto eu = parse_u32((*entry)[2]);
      auto eg = parse_u32((*entry)[3]);
      if (!eu || !eg) return config_error("the image's /etc/passwd has a malformed entry for that user");
      out.uid = uid ? *uid : *eu;
      out.gid = *eg;
    } else if (uid) {
      out.uid = *uid;  // not in passwd: group 0, as Docker runs it
    } else if (!passwd) {
      return config_error("the user is a name, and the image has no /etc/passwd to find it in");
    } else {
      return config_error("the image's /etc/passwd has no such user");
    }
  }
  if (!g.empty()) {
    if (auto gid = parse_u32(g)) {
      out.gid = *gid;
    } else if (!group) {
      return config_error("the group is a name, and the image has no /etc/group to find it in");
    } else if (auto entry = find_entry(*group, g, std::nullopt)) {
      auto eg = parse_u32((*entry)[2]);
      if (!eg) return config_error("the image's /etc/group has a malformed entry for that group");
      out.gid = *eg;
    } else {
      return config_error("the image's /etc/group has no such group");
    }
  }
  return out;
}

std::vector<std::string> service_images(const ComposeProject& project, const ComposeService& s) {
  if (s.image) return {*s.image};
  if (!s.build) return {};
  std::string v1;  // docker-compose 1 keeps only letters and digits of the project name
  for (char c : project.name)
    if (std::isalnum(static_cast<unsigned char>(c))) v1 += c;
  return {project.name + "-" + s.name, v1 + "_" + s.name};
}

Result<ServiceUser> service_user(const ComposeService& s, const std::string& image_ref, const ImageFacts* image) {
  ServiceUser out;
  out.host_ids = s.userns_mode == "host";
  out.image = image_ref;
  auto from_spec = [&](const std::string& spec, std::string why) -> Result<ServiceUser> {
    if (user_spec_needs_files(spec) && !image) {
      out.needs_image = true;
      return out;
    }
    auto ids = resolve_user_spec(spec, image ? image->passwd : std::nullopt, image ? image->group : std::nullopt);
    if (!ids) return config_error(why + ": " + ids.error().message);
    out.container = *ids;
    out.why = std::move(why);
    return out;
  };
  if (s.x.as) {
    auto ids = numeric_ids(*s.x.as);
    if (!ids) return usage_error(s.x.loc.str() + ": x-volprep.as \"" + s.x.as_text + "\": expected UID[:GID], container ids");
    out.container = *ids;
    out.why = "x-volprep.as " + (s.x.as_text.empty() ? *s.x.as : s.x.as_text);
    return out;
  }
  // The user as the file writes it: its value may be a variable's, from .env.
  if (s.user)
    return from_spec(*s.user, (s.user_text.empty() ? std::string("user: as the Compose CLI resolved it")
                                                   : "user: \"" + s.user_text + "\"") + " (" + s.user_loc.str() + ")");
  if (auto puid = s.environment.find("PUID"); puid != s.environment.end()) {
    auto pgid = s.environment.find("PGID");
    std::string spec = puid->second + ":" + (pgid != s.environment.end() ? pgid->second : puid->second);
    auto ids = numeric_ids(spec);
    if (!ids) return config_error("service " + s.name + ": PUID/PGID in its environment: expected numbers");
    out.container = *ids;
    out.why = "PUID/PGID in its environment (the image drops from root to them)";
    return out;
  }
  if (!image) {
    out.needs_image = true;
    return out;
  }
  if (image->user.empty()) {
    out.why = "image " + image_ref + " has no USER: root";
    return out;
  }
  return from_spec(image->user, "image " + image_ref + " USER " + image->user);
}

std::string out_of_scope(const SourceScope& scope, const std::string& real, std::optional<uint32_t> owner,
                         uint32_t uid) {
  auto below = [&](const std::string& top) { return real == top || under(real, top); };
  for (const auto& dir : scope.allowed)
    if (below(dir)) return {};
  if (!scope.no_project.empty()) return "it is outside every --allow-source, and " + scope.no_project;
  if (!below(scope.project)) return "it is outside the project directory " + scope.project;
  if (owner && *owner != 0 && *owner != scope.project_owner && *owner != uid && !scope.uid_map.to_container(*owner))
    return "it is owned by uid " + std::to_string(*owner) + ", neither root, the project directory's owner (uid " +
           std::to_string(scope.project_owner) + "), a container's nor the service's";
  return {};
}

std::string MountPlan::heading() const {
  std::string h = service;
  for (const auto& a : also) h += "," + a;
  h += ": " + shown + " -> " + mount.target + " (" + (mount.kind == ComposeMount::kBind ? "" : std::string(mount.kind_name()) + ", ") +
       (mount.read_only ? "ro" : "rw");
  if (action == kPrepare || action == kCreate)
    h += std::string(", ") + (target.acl ? "acl" : "own") + " " + ids(container) + " = host " +
         std::to_string(host_uid) + ":" + std::to_string(host_gid);
  h += ")";
  if (!note.empty()) h += ": " + note;
  return h;
}

ComposePlan plan_compose(const ComposeProject& project, const std::vector<ServicePlanInput>& services,
                         const SourceProbe& probe) {
  ComposePlan plan;
  auto problem = [&](int code, std::string text) {
    plan.problems.push_back(std::move(text));
    if (code == kExitRefused || !plan.problem_code) plan.problem_code = code;
  };
  for (const auto& in : services) {
    const ComposeService& s = *in.service;
    if (!in.user.host_ids && (s.privileged || s.network_mode == "host"))
      plan.warnings.push_back("service " + s.name + ": " + (s.privileged ? "privileged: true" : "network_mode: host") +
                              " without userns_mode: host cannot start under userns-remap");
    for (const auto& from : s.volumes_from)
      plan.warnings.push_back("service " + s.name + ": volumes_from " + from +
                              ": those mounts are prepared with their own service, for its user");
    if (s.x.skip) {
      plan.warnings.push_back("service " + s.name + ": skipped (x-volprep.skip, " + s.x.loc.str() + ")");
      continue;
    }
    const bool acl = s.x.mode == "acl";
    std::optional<ChmodSpec> chmod;
    if (s.x.chmod) {
      auto spec = ChmodSpec::parse(*s.x.chmod);
      if (!spec) problem(kExitUsage, s.x.loc.str() + ": service " + s.name + ": x-volprep.chmod: " + spec.error().message);
      else if (acl) problem(kExitUsage, s.x.loc.str() + ": service " + s.name + ": mode: acl leaves modes alone; it does not combine with chmod");
      else chmod = *spec;
    }
    for (const auto& m : s.mounts) {
      MountPlan p;
      p.service = s.name;
      p.mount = m;
      p.container = in.user.container;
      p.host_uid = in.host_uid;
      p.host_gid = in.host_gid;
      p.excludes = s.x.excludes;
      p.shown = m.source;
      if (under(m.source, project.directory)) p.shown = "./" + m.source.substr(project.directory.size() + 1);
      else if (m.source == project.directory) p.shown = ".";
      auto skip = [&](std::string why) {
        p.action = MountPlan::kSkip;
        p.note = std::move(why);
        plan.mounts.push_back(p);
      };
      switch (m.kind) {
        case ComposeMount::kVolume:
          skip("a named volume: Docker manages it under remap");
          continue;
        case ComposeMount::kTmpfs:
          skip("tmpfs: nothing on the host");
          continue;
        case ComposeMount::kAnonymous:
          p.shown = "(anonymous)";
          skip("an anonymous volume: Docker manages it under remap");
          continue;
        case ComposeMount::kOther:
          skip("not a bind mount: left alone");
          continue;
        default:
          break;
      }
      const std::string where = m.loc.str() + ": service " + s.name + ": " + p.shown;
      SourceFacts f = probe(m.source, in.host_uid, in.host_gid);
      p.real = f.real;
      if (!f.error.empty()) {
        problem(f.error_code ? f.error_code : kExitConfig, where + ": " + f.error);
        continue;
      }
      if (f.exists && S_ISSOCK(f.st.mode)) {
        bool docker = f.real.ends_with("/docker.sock");
        skip(docker ? (in.user.host_ids ? "the Docker socket: never changed"
                                        : "the Docker socket: never changed; a remapped container cannot use the "
                                          "host's socket: give the service userns_mode: host")
                    : "a socket: never changed");
        continue;
      }
      // The project's own files: a read-write mount is refused whoever would own it, a
      // read-only one only checked (chowned, the next run would refuse to read them).
      if (std::string held = f.refusal.empty() ? project_files_in(project, f.real) : ""; !held.empty()) {
        if (m.read_only) {
          p.action = MountPlan::kReadCheck;
          p.note = held + ", never changed: " + (f.readable ? "readable by host " : "NOT readable by host ") +
                   std::to_string(in.host_uid) + ":" + std::to_string(in.host_gid);
          if (!f.readable) plan.warnings.push_back(where + ": " + p.note);
          plan.mounts.push_back(p);
        } else {
          problem(kExitRefused, where + " -> " + m.target + " is mounted read-write: refusing it: " + held +
                                    "; a container that can write there can change what docker compose runs next. "
                                    "Mount a subdirectory instead, or mount it :ro, or give the service "
                                    "x-volprep: {skip: true}");
        }
        continue;
      }
      // A :ro source on a read-only mount (a media share) is checked too. Mounted read-write
      // there, it is prepared as any other: a run with changes to make there is refused then
      // (driver), one with none passes.
      if (!f.refusal.empty() || ((!f.outside.empty() || f.read_only_mount) && f.exists && m.read_only)) {
        if (m.read_only) {
          p.action = MountPlan::kReadCheck;
          p.note = std::string(!f.refusal.empty()  ? "a system path"
                               : !f.outside.empty() ? "outside what volprep may change"
                                                    : "on a read-only mount") +
                   ", never changed: " + (f.readable ? "readable by host " : "NOT readable by host ") +
                   std::to_string(in.host_uid) + ":" + std::to_string(in.host_gid);
          if (!f.readable) plan.warnings.push_back(where + ": " + p.note);
          plan.mounts.push_back(p);
        } else {
          problem(kExitRefused, where + " is mounted read-write: refusing it (" + f.refusal +
                                    "): volprep changes no system path. Mount it :ro, or give the service "
                                    "x-volprep: {skip: true}");
        }
        continue;
      }
      if (!f.outside.empty()) {
        problem(kExitRefused, where + ": refusing to " + (f.exists ? "change" : "create") + " it: " + f.outside +
                                  " (a compose file is its user's to write, volprep runs as root; --allow-source "
                                  "DIR allows sources below DIR)");
        continue;
      }
      if (!f.exists && !m.create_host_path) {
        problem(kExitConfig, where + " does not exist, and Compose will not create it (" +
                                 (m.kind == ComposeMount::kBind ? "long syntax without bind.create_host_path: true"
                                                                 : std::string("a ") + m.kind_name() + "'s file") +
                                 "): create it, or fix the path");
        continue;
      }
      p.action = f.exists ? MountPlan::kPrepare : MountPlan::kCreate;
      if (!f.exists) p.note = "missing: volprep creates it for the service (the engine would create it as the remapped root)";
      p.target.uid = in.host_uid;
      p.target.gid = in.host_gid;
      if (acl) {
        auto grant = AclGrant::parse_perms(m.read_only ? "rX" : "rwX", in.host_uid, in.host_gid);
        p.target.acl = *grant;
      } else {
        p.target.chmod = chmod;
        if (m.read_only && f.exists)
          p.note = "read-only mount: owned by the service's user all the same (mode: acl would grant read access only)";
      }
      plan.mounts.push_back(std::move(p));
    }
  }

  // Two mounts of one path, or one inside another: the same user shares one run; different
  // users conflict unless both only get ACL entries: then one path is one run that grants
  // both (after the loop: one inside another).
  auto active = [](const MountPlan& p) { return p.action == MountPlan::kPrepare || p.action == MountPlan::kCreate; };
  for (size_t i = 0; i < plan.mounts.size(); ++i) {
    for (size_t j = 0; j < plan.mounts.size(); ++j) {
      MountPlan& a = plan.mounts[i];
      MountPlan& b = plan.mounts[j];
      if (i == j || !active(a) || !active(b)) continue;
      bool same = a.real == b.real;
      bool nested = under(b.real, a.real);  // b inside a
      if (!same && !nested) continue;
      if (same && j < i) continue;  // each pair once
      bool same_user = a.host_uid == b.host_uid && a.host_gid == b.host_gid;
      bool both_acl = a.target.acl && b.target.acl;
      if (same_user && bool(a.target.acl) == bool(b.target.acl) &&
          (!both_acl || a.target.acl->perm == b.target.acl->perm || !same)) {
        b.action = MountPlan::kSkip;
        b.note = same ? "the same path as " + a.service + "'s mount: prepared with it"
                      : "inside " + a.service + "'s mount of " + a.shown + ": prepared with it";
        if (same && a.service != b.service) a.also.push_back(b.service);
        continue;
      }
      if (both_acl && excludes_differ(a, b, same)) {
        // One run grants both users every entry it walks: one's excludes would keep the
        // other's grants out, or the other's grants would reach what one excluded.
        const std::string at_b = b.mount.loc.str().empty() ? "" : b.mount.loc.str() + ": ";
        const std::string at_a = a.mount.loc.str().empty() ? "" : ", " + a.mount.loc.str();
        problem(kExitConfig,
                at_b + "conflict: " + a.service + " mounts " + a.shown + " (acl, " + excludes_text(a) + at_a + ") and " +
                    b.service + " mounts " + (same ? "it" : b.shown + ", inside it,") + " (acl, " + excludes_text(b) +
                    "): different x-volprep.exclude; one run grants both users every entry it walks, so one's "
                    "exclude would not hold for the other: " +
                    (same ? "give both the same x-volprep.exclude"
                          : "the inner source's run walks from its own root: give neither an x-volprep.exclude "
                            "(or mount the sources beside each other)"));
        continue;
      }
      if (both_acl && same) {
        b.action = MountPlan::kSkip;
        b.note = "the same path as " + a.service + "'s mount: its ACL entries (" + ids(b.container) + " = host " +
                 std::to_string(b.host_uid) + ":" + std::to_string(b.host_gid) + ") are granted in that run";
        a.acl_with.push_back(*b.target.acl);
        continue;
      }
      if (both_acl) continue;  // one inside another: below
      // Where: the second mount's place first, as every problem starts; the first's in it.
      const std::string at_b = b.mount.loc.str().empty() ? "" : b.mount.loc.str() + ": ";
      const std::string at_a = a.mount.loc.str().empty() ? "" : ", " + a.mount.loc.str();
      problem(kExitConfig, at_b + "conflict: " + a.service + " mounts " + a.shown + " as " + ids(a.container) + " (host " +
                               std::to_string(a.host_uid) + ":" + std::to_string(a.host_gid) + ", " +
                               (a.target.acl ? "acl" : "own") + at_a + ") and " + b.service + " mounts " +
                               (same ? "it" : b.shown + ", inside it,") + " as " + ids(b.container) + " (host " +
                               std::to_string(b.host_uid) + ":" + std::to_string(b.host_gid) + ", " +
                               (b.target.acl ? "acl" : "own") +
                               "); one owner cannot suit both: give both x-volprep: {mode: acl}, or one x-volprep.as");
    }
  }
  join_nested_acl_runs(plan);
  return plan;
}

}  // namespace volprep
