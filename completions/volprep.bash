# bash completion for volprep                                  -*- shell-script -*-
# Installed as bash-completion's completions/volprep (loaded on first use of volprep).
# Subcommands, their options, and the values that are cheap to list: --acl-perms and --need
# words, journal files for rollback and journal show, directories for paths, users, pids.
# tests/e2e/completions.sh checks that every option of every --help is offered here.

_volprep_source_opts="--map --uid-map --gid-map --pid --rootless --podman-rootless --dockerd-pid
  --config-file --userns-remap --docker-version --host-root"
_volprep_global_opts="-h --help --version -v --verbose -q --quiet"
_volprep_prepare_opts="-h --help --as --chmod --exclude -n --dry-run --check --json --threads --no-wait
  --cross-filesystems --allow-system-path --follow-path-symlinks --force --acl --acl-perms
  --journal --journal-dir --no-journal $_volprep_source_opts"
_volprep_check_opts="-h --help --as --groups --need --json --all --cross-filesystems --allow-system-path
  --follow-path-symlinks --threads $_volprep_source_opts"
_volprep_rollback_opts="-h --help --last --project --project-directory --follow-path-symlinks --journal-dir --journal
  --no-journal --force -n --dry-run --cross-filesystems --json --threads --no-wait"
_volprep_compose_opts="-h --help -f --file --project-directory --env-file --compose-cli --allow-source -n --dry-run
  --check --json --threads --no-wait --journal --journal-dir --no-journal --force $_volprep_source_opts"
_volprep_shift_opts="-h --help --reverse --keep-setid --unmapped --exclude -n --dry-run --check --json --threads --no-wait
  --journal --journal-dir --no-journal --cross-filesystems --allow-system-path
  --follow-path-symlinks --force $_volprep_source_opts"
_volprep_migrate_opts="-h --help --volume --reverse --copy --keep-setid --data-root --unmapped -n --dry-run --threads --no-wait
  --journal-dir --force $_volprep_source_opts"
_volprep_mount_opts="-h --help --as --from --shift --reverse -n --dry-run --list --persist --unit-dir
  --allow-system-path --follow-path-symlinks $_volprep_source_opts"
_volprep_umount_opts="-h --help --persist --unit-dir --force"
_volprep_map_opts="-h --help --json $_volprep_source_opts"
_volprep_journal_list_opts="-h --help --journal-dir --json"
_volprep_journal_show_opts="-h --help --journal-dir"
# Options followed by a value (so the word after them is not a PATH).
_volprep_value_opts="--as --chmod --exclude --threads --acl-perms --journal --journal-dir --groups
  --need --last --project -f --file --project-directory --env-file --compose-cli --allow-source --from --unit-dir --unmapped --volume --data-root --map --uid-map --gid-map --pid --rootless --podman-rootless --dockerd-pid
  --config-file --userns-remap --docker-version --host-root"

# The journal files (*.vpj) of the directory --journal-dir names on the line, else
# $VOLPREP_JOURNAL_DIR, else /var/lib/volprep/journals.
_volprep_journals() {
  local dir=${VOLPREP_JOURNAL_DIR:-/var/lib/volprep/journals} i
  for ((i = 1; i < ${#words[@]} - 1; i++)); do
    case ${words[i]} in
      --journal-dir) dir=${words[i + 1]} ;;
      --journal-dir=*) dir=${words[i]#--journal-dir=} ;;
    esac
  done
  dir=${dir/#\~/$HOME}
  local IFS=$'\n' f
  for f in $(compgen -G "$dir/*.vpj" 2>/dev/null); do
    [[ $f == "$cur"* || ${f##*/} == "$cur"* ]] && COMPREPLY+=("$f")
  done
}

_volprep() {
  local cur prev words cword split
  _init_completion -s || return

  # The subcommand: the first word that is neither an option nor an option's value.
  local sub="" sub2="" i w
  for ((i = 1; i < cword; i++)); do
    w=${words[i]}
    if [[ $w == -* ]]; then
      [[ $w != *=* && " ${_volprep_value_opts//$'\n'/ } " == *" $w "* ]] && ((i++))
      continue
    fi
    if [[ -z $sub ]]; then
      case $w in
        prepare | check | rollback | journal | map | compose | shift | migrate-volumes | mount | umount) sub=$w ;;
        *) sub=prepare ;;  # volprep PATH --as N: prepare is the default subcommand
      esac
    elif [[ $sub == journal && -z $sub2 ]]; then
      sub2=$w
    fi
  done

  case $prev in
    --acl-perms) COMPREPLY=($(compgen -W "r rX rw rwX rwx" -- "$cur")); return ;;
    --need) COMPREPLY=($(compgen -W "r rw rwx" -- "$cur")); return ;;
    --unmapped) COMPREPLY=($(compgen -W "refuse skip nobody" -- "$cur")); return ;;
    --journal-dir | --host-root | --last | --project-directory | --unit-dir | --allow-source | --data-root) _filedir -d; return ;;
    --journal | --config-file | --env-file) _filedir; return ;;
    -f | --file) _filedir '@(yml|yaml)'; return ;;
    --compose-cli) COMPREPLY=($(compgen -W "auto never" -- "$cur")); _filedir; return ;;
    --rootless | --podman-rootless) COMPREPLY=($(compgen -u -- "$cur")); return ;;
    --pid) _pids; return ;;
    --dockerd-pid) COMPREPLY=($(compgen -W "$(pidof dockerd 2>/dev/null)" -- "$cur")); return ;;
    --threads) COMPREPLY=($(compgen -W "$(nproc 2>/dev/null)" -- "$cur")); return ;;
    --as | --chmod | --exclude | --groups | --map | --uid-map | --gid-map | --userns-remap | \
      --docker-version | --project | --from | --volume)
      return ;;
  esac
  $split && return

  local opts
  case $sub in
    "") opts="$_volprep_global_opts $_volprep_prepare_opts" ;;
    prepare) opts=$_volprep_prepare_opts ;;
    check) opts=$_volprep_check_opts ;;
    rollback) opts=$_volprep_rollback_opts ;;
    map) opts=$_volprep_map_opts ;;
    compose) opts=$_volprep_compose_opts ;;
    shift) opts=$_volprep_shift_opts ;;
    migrate-volumes) opts=$_volprep_migrate_opts ;;
    mount) opts=$_volprep_mount_opts ;;
    umount) opts=$_volprep_umount_opts ;;
    journal)
      case $sub2 in
        list) opts=$_volprep_journal_list_opts ;;
        show) opts=$_volprep_journal_show_opts ;;
        *) opts="-h --help" ;;
      esac ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi

  case $sub in
    "")
      COMPREPLY=($(compgen -W "prepare check rollback journal map compose shift migrate-volumes mount umount" -- "$cur"))
      _filedir -d ;;
    prepare | check | shift | mount | umount) _filedir -d ;;
    rollback)
      _volprep_journals
      [[ $cur == */* || ${#COMPREPLY[@]} -eq 0 ]] && _filedir vpj ;;
    journal)
      if [[ -z $sub2 ]]; then
        COMPREPLY=($(compgen -W "list show" -- "$cur"))
      elif [[ $sub2 == show ]]; then
        _volprep_journals
      fi ;;
  esac
} &&
  complete -F _volprep volprep

# ex: filetype=sh
