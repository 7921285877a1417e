// Docker's named volumes between a data root and its remapped root (volprep migrate-volumes):
// the volumes directories held by descriptor, the local driver's volumes listed, dockerd's
// lock on the volume store taken, and a volume directory renamed from one volumes directory
// to the other, journaled before the rename.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/error.h"
#include "volprep/fd.h"
#include "volprep/journal.h"
#include "volprep/shift_history.h"
#include "volprep/volume_store.h"

namespace volprep {

// What Docker makes (moby daemon/volume/local/local.go and daemon/daemon_unix.go; measured
// on dockerd 20.10 by tests/e2e/docker_migrate.sh): the volumes directory and each volume's
// directory root's and 0701, the remapped root 0710 with the remapped root's group.
inline constexpr uint32_t kDockerVolumeDirMode = 0701;
inline constexpr uint32_t kDockerRemappedRootMode = 0710;

// A directory that holds volumes (<data-root>/volumes), opened from "/" without following a
// symlink, root's and writable by nobody else: no one can swap a name in it between a check
// and a rename.
struct VolumesDir {
  std::string path;  // absolute
  UniqueFd fd;       // O_RDONLY|O_DIRECTORY
  EntryStat st;
};
// kExitConfig when it does not exist (-ENOENT), kExitRefused when someone else could write it.
Result<VolumesDir> open_volumes_dir(const std::string& path);

// Makes the directory `name` in `parent` owned uid:gid with `mode` (set through its
// descriptor, whatever the umask), unless it exists. True if it was made.
Result<bool> make_owned_dir(int parent, const std::string& parent_path, const std::string& name, uint32_t mode,
                            uint32_t uid, uint32_t gid);

struct DockerVolume {
  std::string name;
  EntryStat st;         // the volume's directory
  bool local = false;   // the local driver's: a directory holding a directory _data
  std::string why_not;  // when not local, why: what is there instead
};
// The volumes of `dir`, sorted by name: every directory in it (metadata.db, its only file,
// is the volume store's). A name Docker would not give a volume is not listed.
Result<std::vector<DockerVolume>> list_volumes(const VolumesDir& dir);

// Docker's volume name pattern: [a-zA-Z0-9][a-zA-Z0-9_.-]+
bool is_volume_name(const std::string& name);

// An exclusive lock on `dir`'s metadata.db, which dockerd's volume store holds as long as it
// runs (bbolt's flock): held, no dockerd can start on this data root; kExitRefused when one
// holds it. An invalid descriptor when the file does not exist (no dockerd has run here).
Result<UniqueFd> lock_volume_store(const VolumesDir& dir);

// Renames the volume directory `v` from `from` to `to` under its name: checks it is still
// the inode listed and that `to` has no such name, journals the rename (JournalWriter::
// record_move, durable when it returns; `journal` may be null), then renameat2(RENAME_
// NOREPLACE) and checks the entry arrived. Both directories on one filesystem.
Result<bool> move_volume(const VolumesDir& from, const VolumesDir& to, const DockerVolume& v, JournalWriter* journal);
// The same for any entry: `from_name` of `from`, which must still be the inode `st`, to
// `to_name` of `to`.
Result<bool> move_entry(const VolumesDir& from, const std::string& from_name, const EntryStat& st, const VolumesDir& to,
                        const std::string& to_name, JournalWriter* journal);

// Copies across filesystems (or with --copy) are made in a directory beside the target's
// volumes directory, where no dockerd looks (moby's local driver lists only the entries of
// <root>/volumes): a copy is made as NAME.partial (a rerun removes one left by a kill), then
// renamed to NAME.<UTC time> and from there, journaled, into the volumes directory. Rollback
// renames it back to NAME.<UTC time>, aside, where nothing removes it.
inline constexpr const char* kCopiesDir = "volprep-copies";
inline constexpr const char* kPartialSuffix = ".partial";

// Volumes of other drivers, by Docker's store: marked not local (why_not names the driver),
// as a directory without _data is; a plugin's volume, a record with no directory here (its
// data is the plugin's to keep), is added. `here` stays sorted by name.
void mark_other_drivers(std::vector<DockerVolume>& here, const VolumeStore& store);

// The records that earlier runs of a migration (journals whose header names `project`)
// journaled of the volumes they moved into `dir`, the newest run's of each, with the journal:
// what Docker knew of a volume on the other data root when it left it.
using JournaledRecords = std::map<std::string, std::pair<VolumeRecord, std::string>>;
JournaledRecords journaled_records(const std::string& journal_dir, const std::string& project, const std::string& dir);

// A migration's journal names the remapped root it moved volumes into (or out of) as its
// project: "migrate-volumes:<data root>/<uid>.<gid>".
inline constexpr std::string_view kMigrateProject = "migrate-volumes:";
// A data root as journals name it and as they are compared: absolute, "//" and "/./" collapsed,
// no trailing "/" ("/" itself stays); nullopt when it is not absolute or has a "..".
std::optional<std::string> normal_data_root(std::string_view path);
// The data root of the migration whose journal has this header, normal (nullopt: not a
// migration's, or its data root is not absolute).
std::optional<std::string> migrated_data_root(const JournalHeader& h);
// Why a migration's journal cannot give the way back its map and data root ("" if it can): its
// project is not an absolute remapped root, or that root's UID.GID is not container root's
// host ids in the header's map.
std::string migration_journal_fault(const JournalHeader& h);
// The migrations of `data_root` (also named so in messages), for run_history: the forward one
// whose map and data root migrate-volumes --reverse takes once remapping is off.
RunsOf migrations_of(const std::string& data_root);

}  // namespace volprep
