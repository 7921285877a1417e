// The plan of `volprep compose`: who each service runs as (Docker's rules, from the service,
// its x-volprep and its image), and for each bind mount what is done: prepared for that
// user, created first, only checked (a read-only system file), or left alone with a note.
// Conflicts and refusals are found here, before anything changes. Pure: what the engine
// knows of images and what the filesystem says of each source come in as values.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "volprep/compose.h"
#include "volprep/fd.h"
#include "volprep/id_map.h"
#include "volprep/plan.h"

namespace volprep {

// What the Docker engine has of an image (docker_engine.h reads it).
struct ImageFacts {
  bool present = false;
  std::string user;                     // Config.User
  std::vector<std::string> env;         // Config.Env, "K=V"
  std::optional<std::string> passwd, group;  // /etc/passwd and /etc/group, where read
};

// Docker's rule for `user:` (runc's GetExecUser): "uid", "uid:gid", "name", "name:group",
// ":" (root); a name through the passwd file, a group name through the group file; without a
// group, the passwd entry's, else 0. `where` prefixes errors.
struct ContainerIds {
  uint32_t uid = 0, gid = 0;
};
Result<ContainerIds> resolve_user_spec(const std::string& spec, const std::optional<std::string>& passwd,
                                       const std::optional<std::string>& group);
// Whether resolving `spec` needs the image's passwd/group files.
bool user_spec_needs_files(const std::string& spec);

// The image a service runs: its image:, or for build: the tag Compose gives the build
// (PROJECT-SERVICE, docker-compose 1's PROJECT_SERVICE second).
std::vector<std::string> service_images(const ComposeProject& project, const ComposeService& service);

// Who a service runs as, and why.
struct ServiceUser {
  ContainerIds container;
  bool host_ids = false;  // userns_mode: host: container ids are host ids
  std::string why;        // "user: 999:999 (compose.yaml:5:11)", "image jenkins/jenkins:lts USER jenkins", ...
  bool needs_image = false;  // the answer needs `image`, which is not known yet
  std::string image;
};
// x-volprep.as, then user:, then PUID/PGID in its environment, then the image's USER (root
// without one). `image` is null until the engine was asked (and needs_image says whether to).
Result<ServiceUser> service_user(const ComposeService& service, const std::string& image_ref, const ImageFacts* image);

// Where `volprep compose` may change or create a bind source. The project's files are its
// user's and volprep is root: a source is taken below the project directory (unless that is
// a system directory), owned by root, by the directory's owner, by a container of the map or
// by the service's user already; or below a directory root named with --allow-source.
struct SourceScope {
  std::string project;    // the project directory, resolved
  uint32_t project_owner = 0;
  std::string no_project;  // why the project directory holds no source, or ""
  std::vector<std::string> allowed;  // --allow-source, resolved
  IdMap uid_map;                     // a host uid it maps is a container's
};
// Why the source `real` (owned by `owner`; nullopt: missing, root would create it) may not
// be changed for the host uid `uid`, or "".
std::string out_of_scope(const SourceScope& scope, const std::string& real, std::optional<uint32_t> owner,
                         uint32_t uid);

// What the filesystem says of a bind source (the command probes it).
struct SourceFacts {
  bool exists = false;
  std::string real;      // resolved (root's symlinks followed); a missing one: lexically
  EntryStat st;
  std::string refusal;   // a system path or Docker's data root: why
  std::string outside;   // out_of_scope's answer: why volprep may not change it
  std::string error;     // could not be resolved safely: why
  int error_code = 0;
  bool readable = true;  // the service's host user may read it (checked of a read-only mount left alone)
  bool read_only_mount = false;  // on a read-only mount: nothing there can change
};
using SourceProbe = std::function<SourceFacts(const std::string& path, uint32_t host_uid, uint32_t host_gid)>;

struct MountPlan {
  enum Action : uint8_t { kPrepare, kCreate, kReadCheck, kSkip } action = kPrepare;
  std::string service;
  std::vector<std::string> also;  // other services mounting the same path as the same user
  ComposeMount mount;
  std::string real;
  std::string shown;              // the source as the user knows it: ./data below the project
  uint32_t host_uid = 0, host_gid = 0;
  ContainerIds container;
  Target target;                  // kPrepare, kCreate: the policy's
  std::vector<std::string> excludes;
  // mode: acl mounts of one tree as different users: the grants of the others made in this
  // mount's run (of the same path, now skipped, and of the mounts around it), and the mounts
  // inside it (indices in ComposePlan::mounts) whose own runs grant there: each entry is
  // changed once, for every user.
  std::vector<AclGrant> acl_with;
  std::vector<size_t> acl_inside;
  std::string note;               // what the user is told of this mount
  std::string heading() const;    // "app: ./data -> /data (rw, own 1000:1000 = host 501000:501000)"
};

struct ServicePlanInput {
  const ComposeService* service = nullptr;
  ServiceUser user;
  uint32_t host_uid = 0, host_gid = 0;
};

struct ComposePlan {
  std::vector<MountPlan> mounts;      // by service, then in the service's order
  std::vector<std::string> warnings;  // services that cannot start under remap, and the like
  std::vector<std::string> problems;  // conflicts and refusals: nothing changes if any
  int problem_code = 0;               // kExitRefused for a refusal, else kExitConfig
};

ComposePlan plan_compose(const ComposeProject& project, const std::vector<ServicePlanInput>& services,
                         const SourceProbe& probe);

}  // namespace volprep
