#include "volprep/volume_store.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "volprep/bolt.h"
#include "volprep/fd.h"
#include "volprep/report.h"

namespace volprep {

namespace {

// A JSON object of strings (Labels, Options), or null; sorted by key.
bool key_values(const nlohmann::json& j, KeyValues& out) {
  if (j.is_null()) return true;
  if (!j.is_object()) return false;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return false;
    out.emplace_back(k, v.get<std::string>());
  }
  std::sort(out.begin(), out.end());
  return true;
}

std::string join(const KeyValues& kv) {
  std::string out;
  for (const auto& [k, v] : kv) out += (out.empty() ? "" : ", ") + k + "=" + v;
  return out;
}

std::string shell_quote(const std::string& s) {
  bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || std::strchr("_.,:/=@%+-", c);
  });
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Result<VolumeRecord> parse_volume_record(std::string_view name, std::string_view value) {
  auto fail = [&](const std::string& why) {
    return config_error("the record of volume " + escape_control(name) + " is not Docker's: " + why);
  };
  auto j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail("not a JSON object");
  VolumeRecord r;
  r.name = std::string(name);
  auto driver = j.find("Driver");
  if (driver == j.end() || !driver->is_string()) return fail("no Driver");
  r.driver = driver->get<std::string>();
  auto labels = j.find("Labels"), options = j.find("Options");
  if (labels != j.end() && !key_values(*labels, r.labels)) return fail("Labels is not an object of strings");
  if (options != j.end() && !key_values(*options, r.options)) return fail("Options is not an object of strings");
  return r;
}

Result<VolumeStore> read_volume_store(int fd, const std::string& path) {
  auto file = BoltFile::open(fd, path);
  if (!file) return file.error();
  auto items = file->bucket("volumes");
  if (!items) return items.error();
  VolumeStore store;
  store.path = path;
  if (!*items) return store;
  for (const auto& item : **items) {
    if (item.bucket) continue;  // Docker keeps no buckets in it
    auto r = parse_volume_record(item.key, item.value);
    if (!r) return Error{r.error().code, path + ": " + r.error().message};
    store.volumes[item.key] = std::move(*r);
  }
  return store;
}

Result<VolumeStore> read_volume_store_at(const std::string& dir) {
  const std::string path = dir + "/metadata.db";
  if (!path.starts_with('/')) return usage_error(path + ": not an absolute path");
  int fd = open_absolute(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return config_error("cannot open " + path + " without following a symlink: " + std::strerror(-fd));
  UniqueFd db(fd);
  return read_volume_store(fd, path);
}

namespace {

bool secret_key(std::string key) {
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const char* exact : {"pass", "passwd", "pwd", "credentials", "cred"})
    if (key == exact) return true;
  for (const char* part : {"password", "secret", "token", "passphrase"})
    if (key.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

KeyValues redact_options(const KeyValues& options) {
  KeyValues out;
  for (const auto& [k, v] : options) {
    if (secret_key(k)) {
      out.emplace_back(k, "***");
      continue;
    }
    if (k != "o") {
      out.emplace_back(k, v);
      continue;
    }
    // Mount options, comma-separated: key=value or a flag.
    std::string o;
    for (size_t at = 0; at <= v.size();) {
      size_t comma = std::min(v.find(',', at), v.size());
      std::string item = v.substr(at, comma - at);
      if (size_t eq = item.find('='); eq != std::string::npos && secret_key(item.substr(0, eq)))
        item = item.substr(0, eq + 1) + "***";
      o += (at == 0 ? "" : ",") + item;
      at = comma + 1;
    }
    out.emplace_back(k, o);
  }
  return out;
}

std::string describe_labels(const VolumeRecord& r) {
  if (r.labels.empty() && r.options.empty()) return "no labels or options";
  std::string out;
  if (!r.labels.empty()) out += "labels " + join(r.labels);
  if (!r.options.empty()) out += (out.empty() ? "" : "; ") + std::string("options ") + join(redact_options(r.options));
  return escape_control(out);
}

std::string create_arguments(const VolumeRecord& r) {
  std::string out;
  for (const auto& [k, v] : r.labels) out += (out.empty() ? "" : " ") + std::string("--label ") + shell_quote(k + "=" + v);
  for (const auto& [k, v] : redact_options(r.options))
    out += (out.empty() ? "" : " ") + std::string("--opt ") + shell_quote(k + "=" + v);
  return escape_control(out);
}

std::string labels_after_move(const VolumeRecord& had, const std::string& had_where, const VolumeRecord* there,
                              const std::string& root) {
  if (had.labels.empty() && had.options.empty()) return "";
  const std::string name = escape_control(had.name), where = escape_control(root);
  if (there && there->labels == had.labels && there->options == had.options)
    return "volume " + name + ": the dockerd on " + where + " lists it with its " + describe_labels(had) +
           " again: its store there still holds its record";
  std::string out = "volume " + name + ": " + describe_labels(had) + " (" + escape_control(had_where) +
                    "): Docker does not carry them with its directory; the dockerd on " + where + " will list it with " +
                    (there ? describe_labels(*there) + " (the record of that name in its store)" : "none");
  if (!had.options.empty())
    out += " (the local driver still mounts it with its options, which it keeps in the volume's opts.json too)";
  const bool redacted = redact_options(had.options) != had.options;
  return out + "; a volume made there with `docker volume create " + create_arguments(had) + " NAME` has them" +
         (redacted ? " (secrets shown as ***: put them back in)" : "");
}

}  // namespace volprep
