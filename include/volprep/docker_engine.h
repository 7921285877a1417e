// The local Docker engine, asked through its API socket (no docker binary runs): an image's
// config, and a file of its filesystem read from a container created for that and never
// started. The daemon on the other end must be root's (SO_PEERCRED): a socket someone else
// serves could tell any user.
#pragma once

#include <optional>
#include <string>

#include "volprep/compose_plan.h"
#include "volprep/error.h"

namespace volprep {

class DockerEngine {
 public:
  // `host`: DOCKER_HOST's value (unix:// only), or "" for /var/run/docker.sock.
  static Result<DockerEngine> connect(const std::string& host);

  // The image's USER and Env; present=false if the engine has no such image.
  Result<ImageFacts> image(const std::string& ref);
  // /etc/passwd and /etc/group of the image into `facts` (absent files stay nullopt).
  Result<bool> read_user_files(const std::string& ref, ImageFacts& facts);

  const std::string& socket() const { return socket_; }

 private:
  struct Response {
    int status = 0;
    std::string body;
  };
  Result<Response> request(const std::string& method, const std::string& path, const std::string& body = "");
  std::string socket_;
};

// The content of the first regular file in a tar stream; an error for a symlink or none.
Result<std::string> first_file_in_tar(const std::string& tar, const std::string& what);

// The body of an HTTP chunked transfer; nullopt if it is malformed or cut short.
std::optional<std::string> dechunk(const std::string& in);

// An image reference as Compose writes it, safe to put in a URL path: letters, digits, . _ - / : @.
bool valid_image_ref(const std::string& ref);

}  // namespace volprep
