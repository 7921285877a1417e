// dockerd's volume store: what Docker knows of each named volume beyond its directory (moby
// volume/service/db.go): the bbolt file <data-root>/volumes/metadata.db, bucket "volumes", key
// the volume's name, value JSON {"Name", "Driver", "Labels", "Options"}. Moving a volume's
// directory does not carry its record: the dockerd on the other data root lists it as the
// local driver's with no labels and no options (the local driver still mounts it with the
// options it keeps in the volume's own opts.json, which moves with it).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "volprep/error.h"

namespace volprep {

using KeyValues = std::vector<std::pair<std::string, std::string>>;  // sorted by key

struct VolumeRecord {
  std::string name, driver;
  KeyValues labels, options;
  bool operator==(const VolumeRecord&) const = default;
};

struct VolumeStore {
  std::string path;  // the file, for messages
  std::map<std::string, VolumeRecord> volumes;  // by name
};

// One record: `value` is Docker's JSON (untrusted: anything else is an error naming `name`).
Result<VolumeRecord> parse_volume_record(std::string_view name, std::string_view value);

// The store read from `fd` (metadata.db, opened by the caller; not moved), `path` naming it.
// A file with no "volumes" bucket holds no volumes.
Result<VolumeStore> read_volume_store(int fd, const std::string& path);

// `dir`/metadata.db opened from "/" without following a symlink, and read. kExitConfig with
// "no such file" when it does not exist.
Result<VolumeStore> read_volume_store_at(const std::string& dir);

// A volume's options as they may be printed: the value of an option whose key names a secret
// (password, secret, token, ...), and of such a key=value in the mount options `o` (a CIFS
// or NFS volume's password=, credentials=), shown as "***". The journal keeps them whole
// (it is root's); nothing prints them.
KeyValues redact_options(const KeyValues& options);
// "labels a=b, c=d; options type=tmpfs" (escaped for a terminal; secrets redacted); "no
// labels or options".
std::string describe_labels(const VolumeRecord& r);
// The docker volume create arguments that give a volume `r`'s labels and options
// ("--label a=b --opt type=tmpfs"), quoted for a POSIX shell, secrets redacted.
std::string create_arguments(const VolumeRecord& r);

// What Docker loses when the volume `had` (its record in `had_where`, a store or a journal)
// moves into the data root `root`, whose store holds `there` of that name (null: none, or
// not read): a sentence, "" when it had no labels or options.
std::string labels_after_move(const VolumeRecord& had, const std::string& had_where, const VolumeRecord* there,
                              const std::string& root);

}  // namespace volprep
