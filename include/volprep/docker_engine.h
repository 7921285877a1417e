// The local Docker engine, asked through its API socket (no docker binary runs): an image's
// config, and a file of its filesystem, read from the image's overlay2 layer directories
// where they are reachable, else from a container created for that and never started. The
// daemon on the other end must be root's (SO_PEERCRED): a socket someone else serves could
// tell any user. A rootless engine's owner may serve it too (`owner`): what it says can only
// pick ids of that user's own map, as the user's compose file can; its answers are bounded
// and read as untrusted input, and the layer paths it reports are never opened.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "volprep/compose_plan.h"
#include "volprep/error.h"
#include "volprep/fd.h"

namespace volprep {

class DockerEngine {
 public:
  // `host`: DOCKER_HOST's value (unix:// only), or "" for /var/run/docker.sock. `owner`:
  // the uid of a rootless engine's user, whose engine volprep also asks.
  static Result<DockerEngine> connect(const std::string& host, std::optional<uint32_t> owner = std::nullopt);

  // The image's USER and Env; present=false if the engine has no such image.
  Result<ImageFacts> image(const std::string& ref);
  // /etc/passwd and /etc/group of the image into `facts` (absent files stay nullopt): from
  // its layers when image() saw overlay2 ones, else through a container never started.
  Result<bool> read_user_files(const std::string& ref, ImageFacts& facts);
  // Under --host-root: the layer paths the engine reports are the host's, read below this
  // directory (by descriptor, no symlink followed) rather than from this machine's root.
  void set_host_root(UniqueFd root) { host_root_ = std::move(root); }
  // Whether the last read_user_files read the layers (false: it made a container).
  bool read_layers() const { return read_layers_; }

  const std::string& socket() const { return socket_; }

 private:
  struct Response {
    int status = 0;
    std::string body;
  };
  // One request on a connection of its own to the pinned socket; an answer over `max_answer`
  // bytes, a server other than the first one's uid, or one past the deadline is an error.
  Result<Response> request(const std::string& method, const std::string& path, size_t max_answer,
                           const std::string& body = "");
  Result<bool> read_user_files_by_container(const std::string& ref, ImageFacts& facts);
  std::string socket_;
  UniqueFd pin_;  // the socket's inode (O_PATH), connected to through /proc/self/fd
  std::chrono::steady_clock::time_point deadline_;  // of the whole conversation
  std::optional<uint32_t> owner_;
  std::optional<uint32_t> peer_uid_;  // who served the first request: every later one too
  bool served_by_owner_ = false;  // the answers come from the owner's engine, not root's
  std::map<std::string, std::vector<std::string>> layers_;  // image -> overlay2 diff dirs, top first
  bool read_layers_ = false;
  UniqueFd host_root_;
};

// A file of an image read from its overlay2 layer directories (top first) as overlayfs
// shows it, without a container: each layer opened from its path (root's symlinks only),
// then `dir` (one name) and `name` below it by descriptor, never following a symlink in a
// layer. A whiteout or an opaque `dir` above hides what is below. kUnsupported when the
// merge needs more than that (a symlink or redirect on the way, a metacopy file, a layer
// not reachable from here): read it through a container instead. With `root` (a descriptor of
// a host's root, as --host-root names it), each layer path is opened below it instead, with
// no symlink followed on the way (fd.h open_beneath).
struct LayerFile {
  enum State : uint8_t { kFound, kAbsent, kUnsupported } state = kAbsent;
  std::string content;
  std::string why;  // kUnsupported: what was found
};
LayerFile read_from_layers(const std::vector<std::string>& layers, const std::string& dir, const std::string& name,
                           int root = -1);

// An image's facts from the engine's answer to GET /images/REF/json (untrusted input: a
// rootless engine is its user's), and its overlay2 diff directories, top first, into `layers`.
Result<ImageFacts> image_facts(const std::string& answer, std::vector<std::string>& layers);

// The content of the first regular file in a tar stream; an error for a symlink or none.
Result<std::string> first_file_in_tar(const std::string& tar, const std::string& what);

// The body of an HTTP chunked transfer; nullopt if it is malformed or cut short.
std::optional<std::string> dechunk(const std::string& in);

// An image reference as Compose writes it, safe to put in a URL path: letters, digits, . _ - / : @.
bool valid_image_ref(const std::string& ref);

}  // namespace volprep
