// A small HTTP/1.1 client for the Docker engine API on its unix socket: one connection per
// request (Connection: close), chunked bodies decoded, a deadline on every read; and the
// reader of a file from an image's overlay2 layers.
#include "volprep/docker_engine.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "volprep/fd.h"
#include "volprep/volume.h"

namespace volprep {
namespace {

constexpr int kEngineTimeoutMs = 30000;          // a request
constexpr int kConversationTimeoutMs = 120000;   // every request of a run together
constexpr size_t kMaxJsonAnswer = 1 << 20;       // an image's config, a created container's id
constexpr size_t kMaxLayerFile = 16 << 20;
constexpr size_t kMaxArchiveAnswer = kMaxLayerFile + (64 << 10);  // one file, tarred

// A container id as the engine makes them: 64 hex digits (no '/', no '?').
bool valid_container_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/') {
      out += char(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// An engine's answer as JSON; values nested deeper than any the API sends are dropped, not
// built (copying or printing a deeply nested value recurses: a rootless engine is its user's).
nlohmann::json parse_answer(const std::string& body) {
  return nlohmann::json::parse(
      body, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) { return depth <= 32; }, false);
}

std::string api_message(const std::string& body) {
  auto j = parse_answer(body);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>().substr(0, 200);
  return body.substr(0, 200);
}

}  // namespace

// The body of a chunked transfer: sizes in hex, each chunk followed by CRLF. A size is
// checked against what is left, never added to the position: the engine's size may be huge.
std::optional<std::string> dechunk(const std::string& in) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) return std::nullopt;
    size_t n = std::strtoul(in.substr(pos, eol - pos).c_str(), nullptr, 16);
    pos = eol + 2;
    if (n == 0) return out;
    if (n > in.size() - pos) return std::nullopt;
    out.append(in, pos, n);
    pos += n;
    if (in.size() - pos < 2) return std::nullopt;  // the chunk's CRLF
    pos += 2;
  }
}

bool valid_image_ref(const std::string& ref) {
  if (ref.empty() || ref.size() > 512 || ref[0] == '-' || ref.find("..") != std::string::npos) return false;
  for (unsigned char c : ref)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-' && c != '/' && c != ':' && c != '@') return false;
  return true;
}

Result<DockerEngine> DockerEngine::connect(const std::string& host, std::optional<uint32_t> owner) {
  DockerEngine e;
  e.owner_ = owner;
  if (host.empty()) e.socket_ = "/var/run/docker.sock";
  else if (host.starts_with("unix://")) e.socket_ = host.substr(7);
  else return config_error("DOCKER_HOST=" + host + ": volprep reads images through a unix:// socket only");
  // The socket's inode, pinned once (its last name not followed): every request connects to
  // it through /proc/self/fd, so a name swapped between requests (a rootless engine's socket
  // lies in its user's runtime directory) sends none elsewhere.
  e.pin_.reset(::open(e.socket_.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!e.pin_.valid() || ::fstat(e.pin_.get(), &st) < 0)
    return config_error("cannot reach the Docker engine at " + e.socket_ + ": " + std::strerror(errno) +
                        (e.socket_.ends_with("/podman.sock") ? " (is the user's podman.socket or `podman system service` running?"
                                                             : " (is dockerd running?") +
                        " DOCKER_HOST names another socket)");
  if (!S_ISSOCK(st.st_mode))
    return Error{kExitRefused, "refusing the Docker engine at " + e.socket_ + ": it is " +
                                   (S_ISLNK(st.st_mode) ? "a symlink (DOCKER_HOST names the socket itself)" : "not a socket")};
  e.deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(kConversationTimeoutMs);
  return e;
}

Result<DockerEngine::Response> DockerEngine::request(const std::string& method, const std::string& path,
                                                     size_t max_answer, const std::string& body) {
  const auto now = std::chrono::steady_clock::now();
  const auto deadline = std::min(deadline_, now + std::chrono::milliseconds(kEngineTimeoutMs));
  const auto late = [&] {
    return config_error("the Docker engine at " + socket_ + " did not answer " + method + " " + path + " in time");
  };
  if (deadline <= now) return late();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return config_error(std::string("socket: ") + std::strerror(errno));
  // connect() and send() wait no longer than the answer may (a full listen queue blocks both).
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
  const timeval tv{time_t(ms / 1000), suseconds_t(ms % 1000 * 1000)};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string pinned = "/proc/self/fd/" + std::to_string(pin_.get());
  std::memcpy(addr.sun_path, pinned.c_str(), pinned.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) return late();
    return config_error("cannot reach the Docker engine at " + socket_ + ": " + std::strerror(errno) +
                        (socket_.ends_with("/podman.sock") ? " (is the user's podman.socket or `podman system service` running?"
                                                           : " (is dockerd running?") +
                        " DOCKER_HOST names another socket)");
  }
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0)
    return config_error("the Docker engine at " + socket_ + ": SO_PEERCRED: " + std::strerror(errno));
  if (peer.uid != 0 && !(owner_ && peer.uid == *owner_))
    return Error{kExitRefused, "refusing the Docker engine at " + socket_ + ": the process serving it runs as uid " +
                                   std::to_string(peer.uid) + ", not root" +
                                   (owner_ ? " nor the rootless engine's user (uid " + std::to_string(*owner_) + ")" : "")};
  // One server for the whole conversation: the ids a created container got, say, are its own.
  if (peer_uid_ && *peer_uid_ != peer.uid)
    return Error{kExitRefused, "refusing the Docker engine at " + socket_ + ": it was served by uid " +
                                   std::to_string(*peer_uid_) + ", then by uid " + std::to_string(peer.uid)};
  peer_uid_ = peer.uid;
  if (peer.uid != 0) served_by_owner_ = true;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: docker\r\nUser-Agent: volprep\r\nConnection: close\r\n";
  if (!body.empty())
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = ::send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return late();
    if (n < 0) return config_error("the Docker engine at " + socket_ + ": " + std::strerror(errno));
    sent += size_t(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    pollfd p{fd.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, left) == 0) return late();
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return config_error("the Docker engine at " + socket_ + ": " + std::strerror(errno));
    if (n == 0) break;
    in.append(buf, size_t(n));
    if (in.size() > max_answer)
      return config_error("the Docker engine's answer to " + path + " is over " + std::to_string(max_answer >> 10) + " KiB");
  }
  size_t head_end = in.find("\r\n\r\n");
  if (!in.starts_with("HTTP/1.") || head_end == std::string::npos || in.size() < 12)
    return config_error("the Docker engine at " + socket_ + " gave no HTTP answer to " + path);
  Response r;
  r.status = std::atoi(in.c_str() + 9);
  std::string head = in.substr(0, head_end);
  for (auto& c : head) c = char(std::tolower(static_cast<unsigned char>(c)));
  r.body = in.substr(head_end + 4);
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    auto d = dechunk(r.body);
    if (!d) return config_error("the Docker engine's answer to " + path + " is cut short");
    r.body = std::move(*d);
  }
  return r;
}

Result<ImageFacts> DockerEngine::image(const std::string& ref) {
  ImageFacts facts;
  if (!valid_image_ref(ref)) return config_error("\"" + ref + "\" is not an image reference");
  auto r = request("GET", "/images/" + url_escape(ref) + "/json", kMaxJsonAnswer);
  if (!r) return r.error();
  if (r->status == 404) return facts;
  if (r->status != 200) return config_error("the Docker engine: image " + ref + ": " + api_message(r->body));
  std::vector<std::string> layers;
  auto parsed = image_facts(r->body, layers);
  if (!parsed) return config_error("the Docker engine: image " + ref + ": " + parsed.error().message);
  layers_[ref] = std::move(layers);
  return parsed;
}

Result<ImageFacts> image_facts(const std::string& answer, std::vector<std::string>& layers) {
  ImageFacts facts;
  auto j = parse_answer(answer);
  if (!j.is_object()) return config_error("not JSON");
  facts.present = true;
  const auto& config = j.contains("Config") && j["Config"].is_object() ? j["Config"] : nlohmann::json::object();
  if (config.contains("User") && config["User"].is_string()) facts.user = config["User"];
  if (config.contains("Env") && config["Env"].is_array())
    for (const auto& e : config["Env"])
      if (e.is_string()) facts.env.push_back(e);
  // overlay2's diff directories, top first: UpperDir, then LowerDir's list.
  layers.clear();
  if (j.contains("GraphDriver") && j["GraphDriver"].is_object()) {
    const auto& g = j["GraphDriver"];
    const auto& data = g.contains("Data") && g["Data"].is_object() ? g["Data"] : nlohmann::json::object();
    auto text = [&](const char* k) { return data.contains(k) && data[k].is_string() ? data[k].get<std::string>() : ""; };
    if (g.contains("Name") && g["Name"] == "overlay2" && text("UpperDir").starts_with("/")) {
      layers.push_back(text("UpperDir"));
      std::string lower = text("LowerDir");
      for (size_t s = 0; !lower.empty() && s <= lower.size();) {
        size_t colon = std::min(lower.find(':', s), lower.size());
        layers.push_back(lower.substr(s, colon - s));
        s = colon + 1;
      }
    }
  }
  return facts;
}

Result<bool> DockerEngine::read_user_files(const std::string& ref, ImageFacts& facts) {
  read_layers_ = false;
  // A rootless engine's layer paths are its user's to choose: read through the engine instead.
  if (auto it = layers_.find(ref); !served_by_owner_ && it != layers_.end() && !it->second.empty()) {
    const int root = host_root_.valid() ? host_root_.get() : -1;
    LayerFile passwd = read_from_layers(it->second, "etc", "passwd", root);
    LayerFile group =
        passwd.state == LayerFile::kUnsupported ? passwd : read_from_layers(it->second, "etc", "group", root);
    if (passwd.state != LayerFile::kUnsupported && group.state != LayerFile::kUnsupported) {
      if (passwd.state == LayerFile::kFound) facts.passwd = std::move(passwd.content);
      if (group.state == LayerFile::kFound) facts.group = std::move(group.content);
      read_layers_ = true;
      return true;
    }
  }
  return read_user_files_by_container(ref, facts);
}

Result<bool> DockerEngine::read_user_files_by_container(const std::string& ref, ImageFacts& facts) {
  // A container created to read from, never started: its filesystem is the image's.
  nlohmann::json create = {{"Image", ref},
                           {"Entrypoint", {"/volprep-never-started"}},
                           {"Cmd", nlohmann::json::array()},
                           {"NetworkDisabled", true},
                           {"Labels", {{"volprep.purpose", "read /etc/passwd, never started"}}}};
  auto c = request("POST", "/containers/create", kMaxJsonAnswer, create.dump());
  if (!c) return c.error();
  if (c->status != 201) return config_error("the Docker engine: image " + ref + ": " + api_message(c->body));
  auto j = parse_answer(c->body);
  if (!j.is_object() || !j.contains("Id") || !j["Id"].is_string())
    return config_error("the Docker engine: image " + ref + ": no container id");
  const std::string id = j["Id"];
  if (!valid_container_id(id)) return config_error("the Docker engine: image " + ref + ": a container id that is not one");
  Result<bool> result = true;
  for (auto [path, out] : {std::pair{"/etc/passwd", &facts.passwd}, std::pair{"/etc/group", &facts.group}}) {
    auto a = request("GET", "/containers/" + id + "/archive?path=" + url_escape(path), kMaxArchiveAnswer);
    if (!a) {
      result = a.error();
      break;
    }
    if (a->status == 404) continue;
    if (a->status != 200) {
      result = config_error("the Docker engine: image " + ref + ": " + path + ": " + api_message(a->body));
      break;
    }
    auto file = first_file_in_tar(a->body, "image " + ref + ": " + path);
    if (!file) {
      result = file.error();
      break;
    }
    *out = std::move(*file);
  }
  auto rm = request("DELETE", "/containers/" + id + "?force=1&v=1", kMaxJsonAnswer);
  if (result && (!rm || (rm->status != 204 && rm->status != 404)))
    return config_error("the Docker engine: could not remove the container " + id.substr(0, 12) +
                        " made to read image " + ref + ": " + (rm ? api_message(rm->body) : rm.error().message));
  return result;
}

namespace {

LayerFile unsupported(std::string why) { return {LayerFile::kUnsupported, "", std::move(why)}; }

bool whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

// An overlay xattr on the entry `fd` (O_PATH): 1 set, 0 absent, -1 unreadable.
int overlay_xattr(int fd, const char* attr, std::string& value) {
  int r = get_xattr_at(fd, "", attr, value);
  if (r == 0) return 1;
  return r == -ENODATA || r == -EOPNOTSUPP ? 0 : -1;
}

// A regular file of a layer by descriptor, the one fstatat saw.
LayerFile read_layer_regular(int dir, const std::string& name, const struct stat& seen, const std::string& where) {
  UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != seen.st_ino ||
      st.st_dev != seen.st_dev)
    return unsupported(where + " changed while it was read");
  if (size_t(st.st_size) > kMaxLayerFile) return unsupported(where + " is over 16 MiB");
  std::string value;
  if (overlay_xattr(fd.get(), "trusted.overlay.metacopy", value) != 0)
    return unsupported(where + " is a metacopy: its data is in another layer");
  if (overlay_xattr(fd.get(), "trusted.overlay.whiteout", value) != 0)
    return unsupported(where + " is marked a whiteout by attribute");
  LayerFile out{LayerFile::kFound, std::string(size_t(st.st_size), '\0'), ""};
  size_t got = 0;
  while (got < out.content.size()) {
    ssize_t n = ::read(fd.get(), out.content.data() + got, out.content.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unsupported(where + ": " + std::strerror(errno));
    if (n == 0) break;
    got += size_t(n);
  }
  out.content.resize(got);
  return out;
}

}  // namespace

LayerFile read_from_layers(const std::vector<std::string>& layers, const std::string& dir, const std::string& name,
                           int root_fd) {
  if (dir.empty() || dir.find('/') != std::string::npos || dir == "." || dir == ".." || name.empty() ||
      name.find('/') != std::string::npos || name == "." || name == "..")
    return unsupported("not one name: " + dir + "/" + name);
  for (const auto& layer : layers) {
    const std::string where = layer + "/" + dir;
    UniqueFd top;
    if (root_fd >= 0) {
      if (!layer.starts_with('/')) return unsupported("layer " + layer + ": not an absolute path");
      const size_t rel = layer.find_first_not_of('/');
      int fd = open_beneath(root_fd, rel == std::string::npos ? "" : layer.substr(rel), O_PATH | O_DIRECTORY);
      if (fd < 0) return unsupported("layer " + layer + " below the host root: " + std::strerror(-fd));
      top.reset(fd);
    } else {
      auto root = resolve_path(layer, false);
      if (!root) return unsupported("layer " + layer + ": " + root.error().message);
      if (!S_ISDIR(root->st.mode)) return unsupported("layer " + layer + " is not a directory");
      top = std::move(root->fd);
    }
    struct stat st;
    if (::fstatat(top.get(), dir.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;  // this layer does not touch `dir`
      return unsupported(where + ": " + std::strerror(errno));
    }
    if (whiteout(st)) return {};  // `dir` deleted in this layer: nothing below shows
    if (!S_ISDIR(st.st_mode)) return unsupported(where + " is not a directory in this layer (a symlink?)");
    UniqueFd d(::openat(top.get(), dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) return unsupported(where + ": " + std::strerror(errno));
    std::string value;
    if (overlay_xattr(d.get(), "trusted.overlay.redirect", value) != 0)
      return unsupported(where + " is a renamed directory (overlay redirect)");
    if (::fstatat(d.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (whiteout(st)) return {};
      if (!S_ISREG(st.st_mode)) return unsupported(where + "/" + name + " is not a regular file in this layer");
      return read_layer_regular(d.get(), name, st, where + "/" + name);
    }
    if (errno != ENOENT) return unsupported(where + "/" + name + ": " + std::strerror(errno));
    int opaque = overlay_xattr(d.get(), "trusted.overlay.opaque", value);
    if (opaque < 0) return unsupported(where + ": its overlay attributes cannot be read");
    if (opaque == 1 && value == "y") return {};  // an opaque `dir`: lower layers hidden
    if (opaque == 1) return unsupported(where + ": opaque \"" + value + "\" (whiteouts by attribute)");
  }
  return {};
}

Result<std::string> first_file_in_tar(const std::string& tar, const std::string& what) {
  size_t pos = 0;
  while (pos + 512 <= tar.size()) {
    const char* h = tar.data() + pos;
    if (h[0] == '\0') break;
    std::string size_field(h + 124, 12);
    uint64_t size = std::strtoull(size_field.c_str(), nullptr, 8);
    char type = h[156];
    pos += 512;
    if (pos + size > tar.size()) return config_error(what + ": the engine's tar stream is cut short");
    if (type == '0' || type == '\0') return tar.substr(pos, size);
    if (type == '2' || type == '1')
      return config_error(what + " is a link in the image; volprep reads only a regular file");
    if (type != 'x' && type != 'g') return config_error(what + " is not a regular file");
    pos += (size + 511) / 512 * 512;  // a pax header: the entry follows
  }
  return config_error(what + ": no file in the engine's tar stream");
}

}  // namespace volprep
