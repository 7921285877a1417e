// The built-in Compose reader from bytes: a project directory of compose.yaml,
// compose.override.yaml (merged into it as a second file) and .env, separated in the input by
// a line "%%"; read with the YAML parser, .env and interpolation, the merge, service
// selection, then each service's user (against a fixed image passwd and group) and the plan
// over a probe that makes up what the filesystem says (sources under "missing" absent, /etc
// and Docker's data root refused). Nothing on disk but the three files is read or changed.
#include "fuzz_input.h"
#include "volprep/compose.h"
#include "volprep/compose_plan.h"

using namespace volprep;

namespace {
std::string root;
const std::vector<const char*> kFiles = {"compose.yaml", "compose.override.yaml", ".env"};

const ImageFacts& image_facts() {
  static const ImageFacts facts = [] {
    ImageFacts f;
    f.present = true;
    f.user = "app";
    f.env = {"PUID=1000", "PGID=1000"};
    f.passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n";
    f.group = "root:x:0:\napp:x:1000:\nwww-data:x:33:\nstaff:x:50:app\n";
    return f;
  }();
  return facts;
}

SourceFacts probe(const std::string& path, uint32_t, uint32_t) {
  SourceFacts f;
  f.exists = path.find("missing") == std::string::npos;
  f.real = path;
  f.st.mode = 040755;
  if (path == "/" || path.starts_with("/etc") || path.starts_with("/var/lib/docker")) f.refusal = "a system path";
  return f;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  root = fuzz::temp_dir("compose");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::write_parts(fuzz::as_text(data, size), root, kFiles);
  ComposeOptions o;
  o.cwd = root;
  o.files = {root + "/compose.yaml", root + "/compose.override.yaml"};
  o.environment = {{"HOME", "/home/op"}, {"SET", "value"}, {"EMPTY", ""}, {"COMPOSE_PROFILES", "debug"}};
  auto project = read_compose(o);
  if (!project) return 0;
  auto services = select_services(*project, {}, o.environment);
  if (!services) return 0;
  std::vector<ServicePlanInput> inputs;
  for (const ComposeService* s : *services) {
    auto refs = service_images(*project, *s);
    auto user = service_user(*s, refs.empty() ? "" : refs[0], &image_facts());
    if (!user) continue;
    // Docker's ids through the map 0:500000:65536, as the command does.
    ServicePlanInput in{s, *user, user->container.uid, user->container.gid};
    if (!user->host_ids) {
      in.host_uid = user->container.uid < 65536 ? 500000 + user->container.uid : 0;
      in.host_gid = user->container.gid < 65536 ? 500000 + user->container.gid : 0;
    }
    inputs.push_back(std::move(in));
  }
  (void)plan_compose(*project, inputs, probe);
  return 0;
}
