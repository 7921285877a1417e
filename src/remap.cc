#include "volprep/remap.h"

#include <algorithm>
#include <tuple>

#include "volprep/daemon_config.h"

namespace volprep {
namespace {

const char kDefaultSpecifier[] = "default";
const char kDefaultRemapUser[] = "dockremap";

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// Docker's text for a failed getent lookup.
std::string getent_missing(const std::string& key, const char* database) {
  return "getent unable to find entry " + in_quotes(key) + " in " + database + " database";
}

// Go's strconv.ParseInt(s, 10, 32) succeeding, as Docker uses it to tell a uid from a name.
std::optional<uint32_t> go_int32(const std::string& s) {
  auto v = parse_u32(s.starts_with('+') ? s.substr(1) : s);
  if (!v || *v > INT32_MAX) return std::nullopt;
  return v;
}

// What dockerd puts before an error of its ID mapping: errors.Wrap's "Can't create ID
// mappings" up to 29.6 (moby v20.10.24 daemon/daemon_unix.go:1193, docker-v29.6.0
// daemon/daemon_unix.go:1368), "error creating ID mappings" since 29.7.0
// (docker-v29.7.0 daemon/daemon_unix.go:1373).
std::string id_mapping_prefix(const std::optional<DockerVersion>& v) {
  bool since_29_7 = !v || v->major > 29 || (v->major == 29 && v->minor >= 7);
  return since_29_7 ? "error creating ID mappings: " : "Can't create ID mappings: ";
}

Result<SubidLookup> read_subid(const HostDb& host, const std::string& path, const std::string& user,
                               uint32_t uid, SubidRules rules,
                               const std::string& prefix = "Can't create ID mappings: ") {
  auto file = host.read(path);
  if (!file) return file.error();
  if (!*file)
    return config_error(prefix + "open " + path + ": no such file or directory (" +
                        host.local_path(path) + ")");
  SubidFile subid((*file)->content, path, (*file)->origin);
  return subid.lookup(user, uid, rules);
}

std::vector<std::string> origins_of(const std::vector<SubidRange>& ranges) {
  std::vector<std::string> out;
  for (const auto& r : ranges) out.push_back(r.where + " " + r.line);
  return out;
}

void append(std::vector<Finding>& to, const std::vector<Finding>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

SubidRules rules_for(const std::optional<DockerVersion>& v) {
  if (!v || v->major >= 28) return SubidRules::kDocker28;
  // "20.10" alone means the later reader, which most 20.10 installs have.
  if (v->major == 20 && v->minor == 10 && v->has_patch && v->patch <= 3)
    return SubidRules::kDocker2010Early;
  return SubidRules::kDocker2010;
}

const char* rules_name(SubidRules rules) {
  switch (rules) {
    case SubidRules::kDocker28: return "Docker 28 (lenient)";
    case SubidRules::kDocker2010: return "Docker 20.10 (strict)";
    case SubidRules::kDocker2010Early:
      return "Docker 20.10.0 to 20.10.3 (strict, name-keyed lines, then uid-keyed)";
    case SubidRules::kGoIdtools:
      return "containers/storage (strict, every line in file order)";
  }
  return "";
}

}  // namespace

Result<IdMap> parse_map_specs(const std::vector<std::string>& specs, const std::string& option) {
  std::vector<Extent> extents;
  for (const auto& spec : specs) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
      size_t colon = spec.find(':', start);
      parts.push_back(spec.substr(start, colon == std::string::npos ? colon : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    auto bad = [&](const std::string& why) {
      return usage_error(option + " " + in_quotes(spec) + ": " + why +
                         " (expected CONTAINER:HOST[:COUNT])");
    };
    if (parts.size() < 2 || parts.size() > 3) return bad("wrong number of fields");
    Extent e;
    e.count = 1;
    uint32_t* out[] = {&e.container, &e.host, &e.count};
    for (size_t i = 0; i < parts.size(); ++i) {
      auto v = parse_u32(parts[i]);
      if (!v) return bad(in_quotes(parts[i]) + " is not a number in 0..4294967295");
      *out[i] = *v;
    }
    extents.push_back(e);
  }
  IdMap map(std::move(extents));
  if (auto why = map.validate(); !why.empty())
    return usage_error(option + ": the kernel would refuse this map: " + why);
  return map;
}

Result<RemappedRoot> parse_remapped_root(const std::string& value, const HostDb& host) {
  std::vector<std::string> parts;
  size_t colon = value.find(':');
  parts.push_back(value.substr(0, colon));
  if (colon != std::string::npos) parts.push_back(value.substr(colon + 1));
  if (colon != std::string::npos && value.find(':', colon + 1) != std::string::npos)
    return config_error("Invalid user/group specification in --userns-remap: " + in_quotes(value));

  RemappedRoot root;
  if (auto uid = go_int32(parts[0])) {
    auto user = host.user_by_uid(*uid);
    if (!user) return user.error();
    if (!*user)
      return config_error("Uid " + std::to_string(*uid) + " has no entry in /etc/passwd: " +
                          getent_missing(std::to_string(*uid), "passwd"));
    root.user = (*user)->name;
    root.uid = (*user)->uid;
    if (parts.size() == 1) {
      // A uid without a gid takes the same number as its gid.
      auto group = host.group_by_gid(*uid);
      if (!group) return group.error();
      if (!*group)
        return config_error("Gid " + std::to_string(*uid) + " has no entry in /etc/group: " +
                            getent_missing(std::to_string(*uid), "group"));
      root.group = (*group)->name;
    }
  } else {
    std::string name = parts[0] == kDefaultSpecifier ? kDefaultRemapUser : parts[0];
    auto user = host.user_by_name(name);
    if (!user) return user.error();
    if (!*user) {
      if (parts[0] == kDefaultSpecifier) {
        root.user = root.group = kDefaultRemapUser;
        root.to_be_created = true;
        return root;
      }
      return config_error("Error during uid lookup for " + in_quotes(name) + ": " +
                          getent_missing(name, "passwd"));
    }
    root.user = (*user)->name;
    root.uid = (*user)->uid;
    if (parts.size() == 1) {
      auto group = host.group_by_name(name);
      if (!group) return group.error();
      if (!*group)
        return config_error("Error during gid lookup for " + in_quotes(name) + ": " +
                            getent_missing(name, "group"));
      root.group = (*group)->name;
    }
  }
  if (parts.size() == 2) {
    if (auto gid = go_int32(parts[1])) {
      auto group = host.group_by_gid(*gid);
      if (!group) return group.error();
      if (!*group)  // Docker's own text says /etc/passwd here.
        return config_error("Gid " + std::to_string(*gid) + " has no entry in /etc/passwd: " +
                            getent_missing(std::to_string(*gid), "group"));
      root.group = (*group)->name;
    } else {
      auto group = host.group_by_name(parts[1]);
      if (!group) return group.error();
      if (!*group)
        return config_error("Error during groupname lookup for " + in_quotes(parts[1]) + ": " +
                            getent_missing(parts[1], "group"));
      root.group = parts[1];
    }
  }
  root.is_root = root.user == "root";
  return root;
}

namespace {

// Docker 19.03 (moby v19.03.15 daemon/daemon_unix.go:1179-1204): subuid by the user and subgid
// by the remap group, then uid:group, user:primary gid, uid:primary gid, each read strictly
// (pkg/idtools/idtools.go:120 NewIdentityMapping), keeping the first try's error.
Result<Mapping> docker1903_mapping(const RemappedRoot& root, const HostDb& host) {
  auto user = host.user_by_name(root.user);
  if (!user) return user.error();
  if (!*user) return config_error("Can't create ID mappings: no user " + in_quotes(root.user));
  const std::string uid = std::to_string((*user)->uid), gid = std::to_string((*user)->gid);
  struct Read {
    std::optional<SubidFile> file;
    std::string path;
  } reads[2];
  const char* paths[] = {"/etc/subuid", "/etc/subgid"};
  for (int i = 0; i < 2; ++i) {
    auto file = host.read(paths[i]);
    if (!file) return file.error();
    reads[i].path = paths[i];
    if (*file) reads[i].file.emplace((*file)->content, paths[i], (*file)->origin);
  }
  std::optional<Error> first;
  const std::pair<std::string, std::string> tries[] = {
      {root.user, root.group}, {uid, root.group}, {root.user, gid}, {uid, gid}};
  for (const auto& [ukey, gkey] : tries) {
    Result<SubidLookup> sides[2] = {config_error(""), config_error("")};
    std::optional<Error> failed;
    for (int i = 0; i < 2 && !failed; ++i) {
      if (!reads[i].file) {
        failed = config_error("open " + reads[i].path + ": no such file or directory (" +
                              host.local_path(reads[i].path) + ")");
        break;
      }
      sides[i] = reads[i].file->lookup_key(i == 0 ? ukey : gkey, SubidRules::kGoIdtools);
      if (!sides[i]) failed = sides[i].error();
    }
    if (!failed && sides[0]->ranges.empty())
      failed = config_error("No subuid ranges found for user " + in_quotes(ukey));
    if (!failed && sides[1]->ranges.empty())
      failed = config_error("No subgid ranges found for group " + in_quotes(gkey));
    if (failed) {
      if (!first) first = failed;
      continue;
    }
    Mapping m;
    auto uid_map = ranges_to_map(sides[0]->ranges, 0);
    if (!uid_map) return uid_map.error();
    auto gid_map = ranges_to_map(sides[1]->ranges, 0);
    if (!gid_map) return gid_map.error();
    m.uid_map = std::move(*uid_map);
    m.gid_map = std::move(*gid_map);
    m.uid_origins = origins_of(sides[0]->ranges);
    m.gid_origins = origins_of(sides[1]->ranges);
    append(m.findings, sides[0]->findings);
    append(m.findings, sides[1]->findings);
    return m;
  }
  return config_error("Can't create ID mappings: " + first->message);
}

}  // namespace

namespace {

constexpr int64_t kStart = 100000, kLength = 65536;

// Where dockerd places 65536 new ids: from 100000, moved past each range (sorted by start)
// they would touch.
int64_t first_free_start(std::vector<SubidRange> list) {
  std::stable_sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.start < b.start; });
  int64_t start = kStart;
  for (const auto& r : list) {
    int64_t lo = r.start, hi = int64_t(r.start) + r.count;
    if ((start >= lo && start <= hi) || (start + kLength <= hi && start + kLength >= lo))
      start = hi;
  }
  return start;
}

// What an admin adds for `user` who has no ranges in `lacking` (one file or both): a line
// with the first 65536 ids free in both files, placed as dockerd places its own; "" when a
// file cannot be read.
std::string free_range_hint(const HostDb& host, const std::string& user, const std::string& lacking) {
  std::vector<SubidRange> taken;
  for (const char* path : {"/etc/subuid", "/etc/subgid"}) {
    auto file = host.read(path);
    if (!file || !*file) continue;
    auto lines = SubidFile((*file)->content, path, (*file)->origin).all_lines(SubidRules::kDocker28);
    if (!lines) return "";
    taken.insert(taken.end(), lines->ranges.begin(), lines->ranges.end());
  }
  const int64_t start = first_free_start(std::move(taken));
  if (start + kLength - 1 > int64_t(UINT32_MAX) - 1) return "";
  return "; add the line " + user + ":" + std::to_string(start) + ":" + std::to_string(kLength) + " to " + lacking +
         " (the first 65536 ids free in both files, where dockerd would put them), then restart dockerd";
}

}  // namespace

// The range dockerd gives a dockremap it has just created (moby v28.5.2
// internal/usergroup/add_linux.go createSubordinateRanges, findNextRangeStart; v27.5.0
// pkg/idtools/usergroupadd_linux.go the same over every line): the user's own lines if some
// exist already, else 65536 ids from 100000, moved past each range (sorted by start) it would
// touch. 28 and later look only at root's own lines, 27 and older at every line.
Result<SubidRange> predicted_range(const HostDb& host, const std::string& path, bool root_lines_only,
                                   SubidRules rules) {
  auto file = host.read(path);
  if (!file) return file.error();
  if (!*file)
    return config_error("dockerd cannot create dockremap's ranges: open " + path +
                        ": no such file or directory (" + host.local_path(path) + ")");
  SubidFile subid((*file)->content, path, (*file)->origin);
  auto own = subid.lookup_key(kDefaultRemapUser, rules);
  if (!own) return own.error();
  if (!own->ranges.empty()) return own->ranges.front();
  auto taken = root_lines_only ? subid.lookup_key("root", rules) : subid.all_lines(rules);
  if (!taken) return taken.error();
  const int64_t start = first_free_start(taken->ranges);
  if (start + kLength - 1 > int64_t(UINT32_MAX) - 1)
    return config_error("dockerd would give dockremap ids beyond 4294967294 in " + path);
  return SubidRange{uint32_t(start), uint32_t(kLength), path + " (after dockerd creates it)",
                    std::string(kDefaultRemapUser) + ":" + std::to_string(start) + ":" +
                        std::to_string(kLength)};
}

Result<Mapping> docker_remap_mapping(const RemappedRoot& root, SubidRules rules,
                                     const HostDb& host,
                                     const std::optional<DockerVersion>& version) {
  if (root.to_be_created) {
    const bool root_lines_only = !version || version->major >= 28;
    const SubidRules read_rules = root_lines_only ? SubidRules::kDocker28 : SubidRules::kGoIdtools;
    Mapping m;
    for (auto [path, map, origins] :
         {std::tuple{"/etc/subuid", &m.uid_map, &m.uid_origins},
          std::tuple{"/etc/subgid", &m.gid_map, &m.gid_origins}}) {
      auto r = predicted_range(host, path, root_lines_only, read_rules);
      if (!r) return r.error();
      auto built = ranges_to_map({*r}, 0);
      if (!built) return built.error();
      *map = std::move(*built);
      origins->push_back(r->where + " " + r->line);
    }
    m.findings.push_back({Finding::kWarning, "",
                          "user \"dockremap\" does not exist yet: dockerd creates it (adduser or "
                          "useradd) and these ranges when it first starts with userns-remap "
                          "\"default\"; the map is what it will be after dockerd creates it"});
    return m;
  }
  if (version && version->major < 20) return docker1903_mapping(root, host);
  Mapping m;
  const std::string prefix = id_mapping_prefix(version);
  // Every error of the lookup reaches the user behind dockerd's prefix.
  auto lookup = [&](const char* path) -> Result<SubidLookup> {
    auto r = read_subid(host, path, root.user, root.uid, rules, prefix);
    if (!r && !r.error().message.starts_with(prefix))
      return Error{r.error().code, prefix + r.error().message};
    return r;
  };
  // Docker 28 reads both files with one function that always says "subuid" (moby v28.0.0
  // internal/usergroup/lookup_unix.go:173); 20.10 to 27 name the file (v20.10.24
  // pkg/idtools/idtools_unix.go:276 and :293).
  const bool one_reader = !version || version->major >= 28;
  auto none_found = [&](const char* kind, const char* path, const std::string& lacking) {
    return config_error(prefix + "no " + kind + " ranges found for user " + in_quotes(root.user) +
                        " (" + host.local_path(path) + ")" + free_range_hint(host, root.user, lacking));
  };
  auto uids = lookup("/etc/subuid");
  if (!uids) return uids.error();
  if (uids->ranges.empty()) {
    auto gids = lookup("/etc/subgid");
    return none_found("subuid", "/etc/subuid",
                      gids && !gids->ranges.empty() ? "/etc/subuid" : "/etc/subuid and /etc/subgid");
  }
  // Since Docker 20.10 the subgid ranges are looked up by the user too; the group is only
  // validated.
  auto gids = lookup("/etc/subgid");
  if (!gids) return gids.error();
  if (gids->ranges.empty()) return none_found(one_reader ? "subuid" : "subgid", "/etc/subgid", "/etc/subgid");
  auto uid_map = ranges_to_map(uids->ranges, 0);
  if (!uid_map) return uid_map.error();
  auto gid_map = ranges_to_map(gids->ranges, 0);
  if (!gid_map) return gid_map.error();
  m.uid_map = std::move(*uid_map);
  m.gid_map = std::move(*gid_map);
  m.uid_origins = origins_of(uids->ranges);
  m.gid_origins = origins_of(gids->ranges);
  append(m.findings, uids->findings);
  append(m.findings, gids->findings);
  return m;
}

Result<Mapping> rootless_mapping(const std::string& user_name, RootlessFlavor flavor,
                                 const HostDb& host) {
  auto user = host.user_by_name(user_name);
  if (!user) return user.error();
  if (!*user) {
    auto uid = go_int32(user_name);
    if (uid) user = host.user_by_uid(*uid);
    if (!user) return user.error();
    if (!*user)
      return config_error("Error during uid lookup for " + in_quotes(user_name) + ": " +
                          getent_missing(user_name, "passwd"));
  }
  const PwEntry& pw = **user;
  const char* tool = flavor == RootlessFlavor::kDocker ? "rootless Docker" : "rootless Podman";
  Mapping m;
  m.source = std::string(tool) + " for user " + in_quotes(pw.name) + " (uid " +
             std::to_string(pw.uid) + ", gid " + std::to_string(pw.gid) + ")";
  m.engine_owner = pw.uid;
  m.engine_socket = "run/user/" + std::to_string(pw.uid) +
                    (flavor == RootlessFlavor::kDocker ? "/docker.sock" : "/podman/podman.sock");

  struct Side {
    const char* path;
    const char* kind;
    uint32_t own;
    IdMap* map;
    std::vector<std::string>* origins;
    std::vector<SubidRange> list;
    std::optional<Error> error;  // the file is missing or one of its lines unreadable
  } sides[] = {{"/etc/subuid", "subuid", pw.uid, &m.uid_map, &m.uid_origins, {}, {}},
               {"/etc/subgid", "subgid", pw.gid, &m.gid_map, &m.gid_origins, {}, {}}};
  // Podman reads with containers/storage's parser (pkg/idtools/idtools.go parseSubidFile).
  // RootlessKit's auto source (v3.0.1 pkg/parent/parent.go:375) runs getsubids when it is on
  // PATH (shadow's libsubid, which skips lines it cannot parse; modelled leniently here), else
  // reads the files itself as strictly as Docker 20.10 (pkg/parent/idtools/idtools.go).
  SubidRules rules = SubidRules::kGoIdtools;
  if (flavor == RootlessFlavor::kDocker) {
    std::optional<std::string> getsubids;
    for (const char* p : {"/usr/local/bin/getsubids", "/usr/bin/getsubids", "/bin/getsubids"}) {
      auto f = host.read(p);
      if (f && *f) {
        getsubids = p;
        break;
      }
    }
    if (getsubids) rules = SubidRules::kDocker28;
    m.details.push_back(
        getsubids ? "subid source: RootlessKit runs " + host.local_path(*getsubids) +
                        " (shadow's libsubid, which skips lines it cannot parse)"
                  : std::string("subid source: RootlessKit reads /etc/subuid and /etc/subgid "
                                "itself, as no getsubids is installed (a line it cannot parse "
                                "stops it)"));
  }
  for (auto& side : sides) {
    // volprep's own rule comes first, whatever the runtime would say.
    if (auto why = reaches_last_id(Extent{0, side.own, 1}); !why.empty())
      return config_error("user " + in_quotes(pw.name) + "'s own id: " + why);
    auto file = host.read(side.path);
    if (!file) return file.error();
    if (!*file) {
      side.error = config_error("open " + std::string(side.path) + ": no such file or directory (" +
                                host.local_path(side.path) + ")");
      continue;
    }
    auto ranges = SubidFile((*file)->content, side.path, (*file)->origin).lookup(pw.name, pw.uid, rules);
    if (!ranges) {
      side.error = ranges.error();
      continue;
    }
    side.list = ranges->ranges;
    append(m.findings, ranges->findings);
  }

  if (flavor == RootlessFlavor::kDocker) {
    // RootlessKit refuses to start unless both files hold ranges for the user (v3.0.1
    // pkg/parent/idtools/idtools.go:31 and :34; the dynamic source, getsubids, likewise,
    // pkg/parent/dynidtools).
    for (auto& side : sides) {
      if (side.error)
        return config_error("RootlessKit refuses to start: " + side.error->message);
      if (side.list.empty())
        return config_error("RootlessKit refuses to start: No " + std::string(side.kind) +
                            " ranges found for user " + std::to_string(pw.uid) + " (" +
                            in_quotes(pw.name) + ") in " + host.local_path(side.path));
    }
  } else {
    // Podman: when containers/storage cannot give ranges for both files (either lacks the user,
    // is missing, or has a line it cannot parse), it maps only the user's own ids, for uids and
    // gids alike (podman pkg/rootless/rootless_linux.go GetConfiguredMappings and
    // becomeRootInUserNS; containers/storage pkg/idtools/idtools.go NewIDMappings).
    for (auto& side : sides) {
      if (!side.error && !side.list.empty()) continue;
      std::string why = side.error ? side.error->message
                                   : "no " + std::string(side.kind) + " ranges for user " +
                                         in_quotes(pw.name) + " in " + host.local_path(side.path);
      m.findings.push_back(
          {Finding::kWarning, host.local_path(side.path),
           why + "; rootless Podman uses the single mapping (container 0 -> the user's own "
                 "uid and gid) for uids and gids alike" +
               (side.error && side.error->message.find("no such file") == std::string::npos
                    ? " (a Podman built with shadow's libsubid skips the line instead)"
                    : "")});
      for (auto& s : sides) {
        *s.map = IdMap({Extent{0, s.own, 1}});
        s.origins->assign({"user " + pw.name + "'s own id (single mapping)"});
      }
      return m;
    }
  }

  for (auto& side : sides) {
    auto& list = side.list;
    if (flavor == RootlessFlavor::kPodman) {
      std::stable_sort(list.begin(), list.end(),
                       [](auto& a, auto& b) { return a.start < b.start; });
      for (const auto& r : list)
        if (side.own >= r.start && uint64_t(side.own) < uint64_t(r.start) + r.count)
          return config_error(r.where + ": " + in_quotes(r.line) + " contains user " +
                              in_quotes(pw.name) + "'s own id " + std::to_string(side.own) +
                              "; Podman refuses to map it twice");
    }
    Extent own{0, side.own, 1};
    auto rest = ranges_to_map(list, 1);
    if (!rest) return rest.error();
    std::vector<Extent> extents{own};
    extents.insert(extents.end(), rest->extents().begin(), rest->extents().end());
    *side.map = IdMap(std::move(extents));
    side.origins->push_back("user " + pw.name + "'s own id");
    auto more = origins_of(list);
    side.origins->insert(side.origins->end(), more.begin(), more.end());
  }
  return m;
}

void add_validation_findings(Mapping& m) {
  for (auto [name, map] : {std::pair{"uid", &m.uid_map}, std::pair{"gid", &m.gid_map}}) {
    if (auto why = map->validate(); !why.empty())
      m.findings.push_back({Finding::kError, "",
                            std::string("the kernel will refuse this ") + name + " map: " + why});
    else if (map->extents().size() > IdMap::kOldKernelExtents)
      m.findings.push_back({Finding::kWarning, "",
                            std::string("the ") + name + " map has " +
                                std::to_string(map->extents().size()) +
                                " extents; Linux before 4.15 accepts at most 5"});
  }
}

namespace {

Result<Mapping> explicit_mapping(const RemapOptions& o) {
  Mapping m;
  // An option not given is an empty map, not a map the kernel refuses.
  auto parse = [](const std::vector<std::string>& specs, const char* option) -> Result<IdMap> {
    if (specs.empty()) return IdMap();
    return parse_map_specs(specs, option);
  };
  auto both = parse(o.maps, "--map");
  if (!both) return both.error();
  auto uid = parse(o.uid_maps, "--uid-map");
  if (!uid) return uid.error();
  auto gid = parse(o.gid_maps, "--gid-map");
  if (!gid) return gid.error();
  m.uid_map = o.uid_maps.empty() ? *both : *uid;
  m.gid_map = o.gid_maps.empty() ? *both : *gid;
  if (m.uid_map.empty() || m.gid_map.empty())
    return usage_error(std::string("--") + (m.uid_map.empty() ? "uid" : "gid") +
                       "-map is missing: give --map for both, or --uid-map and --gid-map");
  m.source = "the command line (--map, --uid-map, --gid-map)";
  return m;
}

Result<Mapping> process_mapping(const RemapOptions& o) {
  Mapping m;
  std::string dir = o.proc_root + "/" + std::to_string(*o.pid);
  for (auto [file, map] : {std::pair{"uid_map", &m.uid_map}, std::pair{"gid_map", &m.gid_map}}) {
    auto path = dir + "/" + file;
    auto text = read_text_file(path);
    if (!text) return text.error();
    if (!*text) return config_error("--pid " + std::to_string(*o.pid) + ": no such process (" + path + ")");
    auto parsed = IdMap::parse_proc(**text, path);
    if (!parsed) return parsed.error();
    *map = std::move(*parsed);
  }
  m.source = "process " + std::to_string(*o.pid) + " (" + dir + "/uid_map, gid_map)";
  m.remapping_off = m.uid_map.is_identity() && m.gid_map.is_identity();
  return m;
}

// Docker: a running dockerd's flags, then daemon.json, then the remap user's ranges.
Result<Mapping> docker_mapping(const RemapOptions& o, const HostDb& host) {
  std::optional<DockerdProcess> daemon;
  std::vector<std::string> ignored;
  if (o.dockerd_pid) {
    auto p = read_dockerd_process(o.proc_root, *o.dockerd_pid);
    if (!p) return config_error("--dockerd-pid: " + p.error().message);
    daemon = std::move(*p);
  } else if (o.scan_for_daemon) {
    auto found = find_dockerd_processes(o.proc_root);
    if (!found) return found.error();
    if (found->trusted.size() > 1) {
      std::string pids;
      for (const auto& p : found->trusted)
        pids += (pids.empty() ? "" : ", ") + std::to_string(p.pid);
      return config_error("several dockerd processes are running (pids " + pids +
                          "); choose one with --dockerd-pid");
    }
    if (found->trusted.size() == 1) daemon = std::move(found->trusted.front());
    ignored = std::move(found->ignored);
  }
  DockerdFlags flags;
  if (daemon) flags = parse_dockerd_args(daemon->args);
  std::string daemon_name = daemon ? "dockerd (pid " + std::to_string(daemon->pid) + ")" : "";

  // Which Docker release reads daemon.json and the subid files decides how.
  std::optional<DockerVersion> version;
  std::string version_origin;
  if (o.docker_version) {
    version = parse_docker_version("version " + *o.docker_version);
    if (!version) return usage_error("--docker-version " + in_quotes(*o.docker_version) + ": expected X.Y");

    version_origin = "--docker-version";
  } else {
    // Read rather than run: the package database first, and only a trusted daemon's binary.
    auto dpkg = host.read("/var/lib/dpkg/status");
    if (!dpkg) return dpkg.error();
    if (*dpkg) {
      version = docker_version_from_dpkg((*dpkg)->content);
      version_origin = (*dpkg)->origin;
    }
    if (!version && daemon) {
      version = docker_version_of(*daemon);
      version_origin = daemon->exe + " --version";
    }
  }

  if (version && std::pair(version->major, version->minor) < std::pair(19, 3)) {
    std::string why = version_origin + ": Docker " + version->text +
                      " is older than any release volprep models (19.03 and later)";
    return o.docker_version ? usage_error(why) : config_error(why);
  }

  // Which daemon.json dockerd reads.
  std::string config_path;
  bool config_explicit = true;
  if (o.config_file) {
    config_path = *o.config_file;
  } else if (flags.config_file) {
    config_path = *flags.config_file;
  } else if (o.caller_uid != 0 && !daemon) {
    config_explicit = false;
    config_path = o.caller_xdg_config_home ? *o.caller_xdg_config_home + "/docker/daemon.json"
                                           : o.caller_home.value_or("") + "/.config/docker/daemon.json";
  } else {
    config_explicit = false;
    config_path = "/etc/docker/daemon.json";
  }
  // A relative --config-file is relative to where volprep runs, not the host root.
  auto config = config_path.starts_with('/') ? host.read(config_path)
                                             : [&]() -> Result<std::optional<HostFile>> {
                                                 auto t = read_text_file(config_path);
                                                 if (!t) return t.error();
                                                 if (!*t) return std::optional<HostFile>();
                                                 return std::optional<HostFile>(
                                                     HostFile{std::move(**t), config_path});
                                               }();
  if (!config) return config.error();
  DaemonJson json;
  if (*config) {
    auto parsed = parse_daemon_json((*config)->content, (*config)->origin, version);
    if (!parsed) return parsed.error();
    json = std::move(*parsed);
  } else if (config_explicit) {
    return config_error("unable to configure the Docker daemon with file " + config_path +
                        ": open " + config_path + ": no such file or directory");
  }

  std::optional<std::string> flag = o.userns_remap ? o.userns_remap : flags.userns_remap;
  std::string flag_origin = o.userns_remap ? "volprep's --userns-remap" : daemon_name + "'s command line";
  if (flag && json.userns_remap)
    return config_error("unable to configure the Docker daemon with file " + json.origin +
                        ": the following directives are specified both as a flag and in the "
                        "configuration file: userns-remap: (from flag: " + *flag +
                        ", from file: " + *json.userns_remap + ")");

  if (flags.data_root && json.data_root)
    return config_error("unable to configure the Docker daemon with file " + json.origin +
                        ": the following directives are specified both as a flag and in the "
                        "configuration file: data-root: (from flag: " + *flags.data_root +
                        ", from file: " + *json.data_root + ")");

  Mapping m;
  std::string value = flag.value_or(json.userns_remap.value_or(""));
  std::string value_origin =
      flag ? flag_origin : json.origin + ":" + std::to_string(json.userns_remap_line);
  if (daemon) m.details.push_back("running daemon: " + daemon_name);
  for (const auto& why : ignored) m.details.push_back("ignored: " + why);
  m.details.push_back("daemon.json: " + (json.origin.empty() ? config_path + " (absent)" : json.origin));

  auto docker_data_root = [&]() -> Result<std::string> {
    std::string data_root = flags.data_root.value_or(json.data_root.value_or("/var/lib/docker"));
    // Docker joins with filepath.Join, which drops a trailing slash.
    while (!data_root.empty() && data_root.back() == '/') data_root.pop_back();
    // An existing data root is used with its symlinks resolved (moby v20.10.24
    // daemon/daemon.go:1541 and v28.5.2 daemon/daemon.go:1541, ReadSymlinkedDirectory).
    if (data_root.starts_with('/')) {
      auto real = host.resolve_dir(data_root);
      if (!real) return real.error();
      if (*real && **real != data_root) {
        m.details.push_back("data root " + data_root + " resolves to " + **real);
        data_root = **real;
        while (data_root.size() > 1 && data_root.back() == '/') data_root.pop_back();
        if (data_root == "/") data_root.clear();
      }
    }
    return data_root;
  };

  if (value.empty()) {
    m.uid_map = m.gid_map = IdMap::identity();
    m.remapping_off = true;
    m.source = "Docker: userns-remap is not set (" + (daemon ? daemon_name + ", " : std::string()) +
               (json.origin.empty() ? config_path + " absent" : json.origin) +
               "); remapping is off";
    // The data root: refused as a PATH (the default too, as with remapping on); one the
    // configuration names is where migrate-volumes --reverse moves volumes back to (the
    // default is not taken for one: the forward run's journal knows better). Remapping off
    // needs no data root: one that does not resolve is not known, never an error.
    auto known = docker_data_root();
    std::string why = !known ? known.error().message
                      : !known->starts_with('/') ? "the data root " + *known + " is not an absolute path"
                                                 : "";
    if (why.empty()) {
      m.base_data_root = *known;
      m.data_root_named = flags.data_root || json.data_root;
    } else {
      m.details.push_back("data root not known: " + why);
      if (flags.data_root || json.data_root) m.data_root_unusable = why;
    }
    return m;
  }

  auto resolved = docker_data_root();
  if (!resolved) return resolved.error();
  const std::string data_root = *resolved;

  auto root = parse_remapped_root(value, host);
  if (!root) return root.error();
  if (root->is_root) {
    m.uid_map = m.gid_map = IdMap::identity();
    m.remapping_off = true;
    m.source = "Docker: userns-remap " + in_quotes(value) + " (" + value_origin +
               ") resolves to root; remapping is off";
    // The setting is not empty, so dockerd still moves its data below the root pair of its
    // (empty) mapping: 0.0 (moby v20.10.24 daemon/daemon_unix.go:1230, setupDaemonRoot;
    // v28.5.2 daemon/daemon_unix.go:1419).
    m.data_root = data_root + "/0.0";
    m.base_data_root = data_root;
    return m;
  }

  SubidRules rules = rules_for(version);

  auto remap = docker_remap_mapping(*root, rules, host, version);
  if (!remap) return remap.error();
  m.uid_map = std::move(remap->uid_map);
  m.gid_map = std::move(remap->gid_map);
  m.uid_origins = std::move(remap->uid_origins);
  m.gid_origins = std::move(remap->gid_origins);
  m.findings = std::move(remap->findings);
  m.source = "Docker userns-remap " + in_quotes(value) + " (" + value_origin + "): user " +
             in_quotes(root->user) + ", group " + in_quotes(root->group) +
             (root->to_be_created ? ", after dockerd creates it" : "");
  m.details.push_back(std::string("subid rules: ") +
                      (version && version->major < 20
                           ? "Docker 19.03 (strict, subgid by the remap group)"
                           : rules_name(rules)) +
                      (version ? ", from " + version_origin + ": " + version->text
                               : ", no Docker version found (--docker-version sets it)"));

  // When either map lacks container id 0 (a count read as 0, say from "65536 # comment" under
  // Docker 28's lenient reader), Docker's root pair is -1, -1 and it still starts, below
  // <data-root>/-1.-1 (moby/sys user/v0.4.0 user/idtools.go getRootUIDGID; moby v20.10.24
  // pkg/idtools/idtools.go:60 the same).
  auto uid0 = m.uid_map.to_host(0), gid0 = m.gid_map.to_host(0);
  if (uid0 && gid0) {
    m.data_root = data_root + "/" + std::to_string(*uid0) + "." + std::to_string(*gid0);
    m.base_data_root = data_root;
  } else {
    m.data_root = data_root + "/-1.-1";
    m.base_data_root = data_root;
    m.findings.push_back({Finding::kError, "",
                          std::string("no extent of the ") + (uid0 ? "gid" : "uid") +
                              " map holds container id 0: Docker's remapped root is -1:-1 and "
                              "its data goes to " + *m.data_root});
  }
  return m;
}

}  // namespace

Result<Mapping> resolve_mapping(const RemapOptions& o, const HostDb& host) {
  Result<Mapping> m = [&]() -> Result<Mapping> {
    if (!o.maps.empty() || !o.uid_maps.empty() || !o.gid_maps.empty()) return explicit_mapping(o);
    if (o.pid) return process_mapping(o);
    if (o.rootless_user) return rootless_mapping(*o.rootless_user, RootlessFlavor::kDocker, host);
    if (o.podman_rootless_user)
      return rootless_mapping(*o.podman_rootless_user, RootlessFlavor::kPodman, host);
    return docker_mapping(o, host);
  }();
  if (m) add_validation_findings(*m);
  return m;
}

}  // namespace volprep
