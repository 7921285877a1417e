// A small HTTP/1.1 client for the Docker engine API on its unix socket: one connection per
// request (Connection: close), chunked bodies decoded, a deadline on every read.
#include "volprep/docker_engine.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "volprep/fd.h"

namespace volprep {
namespace {

constexpr int kTimeoutMs = 30000;
constexpr size_t kMaxBody = 64 << 20;

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

std::string api_message(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"];
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

Result<DockerEngine> DockerEngine::connect(const std::string& host) {
  DockerEngine e;
  if (host.empty()) e.socket_ = "/var/run/docker.sock";
  else if (host.starts_with("unix://")) e.socket_ = host.substr(7);
  else return config_error("DOCKER_HOST=" + host + ": volprep reads images through a unix:// socket only");
  if (e.socket_.size() >= sizeof(sockaddr_un::sun_path)) return config_error(e.socket_ + ": socket path too long");
  return e;
}

Result<DockerEngine::Response> DockerEngine::request(const std::string& method, const std::string& path,
                                                     const std::string& body) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return config_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.c_str(), socket_.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return config_error("cannot reach the Docker engine at " + socket_ + ": " + std::strerror(errno) +
                        " (is dockerd running? DOCKER_HOST names another socket)");
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 || peer.uid != 0)
    return Error{kExitRefused, "refusing the Docker engine at " + socket_ + ": the process serving it runs as uid " +
                                   std::to_string(peer.uid) + ", not root"};
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: docker\r\nUser-Agent: volprep\r\nConnection: close\r\n";
  if (!body.empty())
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = ::send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return config_error("the Docker engine at " + socket_ + ": " + std::strerror(errno));
    sent += size_t(n);
  }
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  char buf[65536];
  for (;;) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    pollfd p{fd.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, left) == 0)
      return config_error("the Docker engine at " + socket_ + " did not answer " + method + " " + path + " in time");
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return config_error("the Docker engine at " + socket_ + ": " + std::strerror(errno));
    if (n == 0) break;
    in.append(buf, size_t(n));
    if (in.size() > kMaxBody) return config_error("the Docker engine's answer to " + path + " is over 64 MiB");
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
  auto r = request("GET", "/images/" + url_escape(ref) + "/json");
  if (!r) return r.error();
  if (r->status == 404) return facts;
  if (r->status != 200) return config_error("the Docker engine: image " + ref + ": " + api_message(r->body));
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object()) return config_error("the Docker engine: image " + ref + ": not JSON");
  facts.present = true;
  const auto& config = j.contains("Config") && j["Config"].is_object() ? j["Config"] : nlohmann::json::object();
  if (config.contains("User") && config["User"].is_string()) facts.user = config["User"];
  if (config.contains("Env") && config["Env"].is_array())
    for (const auto& e : config["Env"])
      if (e.is_string()) facts.env.push_back(e);
  return facts;
}

Result<bool> DockerEngine::read_user_files(const std::string& ref, ImageFacts& facts) {
  // A container created to read from, never started: its filesystem is the image's.
  nlohmann::json create = {{"Image", ref},
                           {"Entrypoint", {"/volprep-never-started"}},
                           {"Cmd", nlohmann::json::array()},
                           {"NetworkDisabled", true},
                           {"Labels", {{"volprep.purpose", "read /etc/passwd, never started"}}}};
  auto c = request("POST", "/containers/create", create.dump());
  if (!c) return c.error();
  if (c->status != 201) return config_error("the Docker engine: image " + ref + ": " + api_message(c->body));
  auto j = nlohmann::json::parse(c->body, nullptr, false);
  if (!j.is_object() || !j.contains("Id") || !j["Id"].is_string())
    return config_error("the Docker engine: image " + ref + ": no container id");
  const std::string id = j["Id"];
  Result<bool> result = true;
  for (auto [path, out] : {std::pair{"/etc/passwd", &facts.passwd}, std::pair{"/etc/group", &facts.group}}) {
    auto a = request("GET", "/containers/" + url_escape(id) + "/archive?path=" + url_escape(path));
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
  auto rm = request("DELETE", "/containers/" + url_escape(id) + "?force=1&v=1");
  if (result && (!rm || (rm->status != 204 && rm->status != 404)))
    return config_error("the Docker engine: could not remove the container " + id.substr(0, 12) +
                        " made to read image " + ref + ": " + (rm ? api_message(rm->body) : rm.error().message));
  return result;
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
