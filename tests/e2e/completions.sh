# The bash and zsh completions offer every option each subcommand's --help shows (so they
# cannot drift from the command line), and the cheap values: subcommands, --acl-perms and
# --need words, journal files for rollback and journal show, directories for PATH.
. "$(dirname "$0")/lib.sh"
bash_file=$VOLPREP_SRC/completions/volprep.bash
zsh_file=$VOLPREP_SRC/completions/_volprep
[ -f /usr/share/bash-completion/bash_completion ] || fail "bash-completion is not installed"

# complete WORD... : what bash offers for the last word (maybe empty) after the others.
complete() {
  mkdir -p "$T/cwd"  # empty: no directories offered for an empty word
  (cd "$T/cwd" && bash -c '
    . /usr/share/bash-completion/bash_completion
    . "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _volprep volprep "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$bash_file" volprep "$@") | sort -u
}
# expect_words "WORDS" WORD...: complete WORD... offers exactly WORDS.
expect_words() {
  local want; want=$(printf '%s\n' $1 | sort -u); shift
  [ "$(complete "$@")" = "$want" ] || fail "volprep $* <TAB>: got '$(complete "$@" | tr '\n' ' ')', want '$1'"
}
# zsh_complete LINE...: what zsh offers at the end of each LINE, typed into a real
# interactive zsh; in $T/zsh.N, one file per LINE.
zsh_complete() {
  (cd "$T/cwd" && timeout 120 zsh -f "$VOLPREP_SRC/tests/e2e/zsh_complete.zsh" \
    "$VOLPREP_SRC/completions" "$T/zsh.out" "$@")
  awk -v t="$T" 'BEGIN { n = 1 } /^END$/ { close(t "/zsh." n); n++; next } /^$/ { next }
    { print > (t "/zsh." n) }' "$T/zsh.out"
  local i
  for ((i = 1; i <= $#; i++)); do [ -f "$T/zsh.$i" ] || : >"$T/zsh.$i"; sort -u -o "$T/zsh.$i" "$T/zsh.$i"; done
}

bash -n "$bash_file"
zsh -n "$zsh_file"

# Every option of every --help, offered after the subcommand (and `volprep -` offers the
# global options and prepare's, since prepare is the default).
# Every command, as --help lists them: a new command must be completed.
mapfile -t subs < <(volprep_commands | grep -vx journal)  # journal itself only names its two
[ "${#subs[@]}" -ge 10 ] || fail "only ${#subs[@]} commands in --help: ${subs[*]}"
mkdir -p "$T/cwd"
lines=()
for sub in "${subs[@]}"; do lines+=("volprep ${sub:+$sub }-"); done
zsh_complete "${lines[@]}"
n=0
for sub in "${subs[@]}"; do
  n=$((n + 1))
  # The options sections: the example after them is prepare's, shown by every subcommand.
  "$VOLPREP" $sub --help | sed '/^Example/,$d' >"$T/help"
  grep -oE '(^|[ ,])--?[a-zA-Z][a-z-]*' "$T/help" | sed 's/^[ ,]*//' | sort -u >"$T/opts"
  [ -s "$T/opts" ] || fail "no options in volprep $sub --help"
  complete $sub - >"$T/bash"
  while read -r opt; do
    grep -qx -- "$opt" "$T/bash" || fail "bash: volprep $sub $opt is in --help but not completed"
    grep -qx -- "$opt" "$T/zsh.$n" || fail "zsh: volprep $sub $opt is in --help but not completed"
  done <"$T/opts"
done

# Values.
expect_words "prepare check rollback journal map compose shift migrate-volumes mount umount" ""
expect_words "check" ch
expect_words "list show" journal ""
expect_words "r rX rw rwX rwx" prepare ./v --as 1000 --acl --acl-perms ""
expect_words "r rX rw rwX rwx" ./v --acl-perms ""  # prepare by default
expect_words "r rw rwx" check ./v --need ""
complete ./v --as 1000 - | grep -qx -- --acl-perms || fail "volprep PATH - does not offer prepare's options"
not grep -qx -- --need < <(complete ./v --as 1000 -)

mkdir -p "$T/journals" "$T/other" "$T/vols/jenkins_home"
touch "$T/journals/a.vpj" "$T/journals/b.vpj" "$T/other/c.vpj" "$T/vols/file"
expect_words "$T/journals/a.vpj $T/journals/b.vpj" rollback ""
expect_words "$T/other/c.vpj" rollback --journal-dir "$T/other" ""
expect_words "$T/journals/a.vpj $T/journals/b.vpj" journal show ""
expect_words "$T/vols/jenkins_home" prepare "$T/vols/"
expect_words "$T/vols/jenkins_home" check --as 1000 "$T/vols/"
expect_words "$T/vols/jenkins_home" rollback --last "$T/vols/"
# The same values in zsh.
zsh_complete "volprep " "volprep journal " "volprep ./v --acl-perms " "volprep check ./v --need " \
  "volprep rollback " "volprep rollback --journal-dir $T/other " "volprep journal show "
want=("check compose journal map migrate-volumes mount prepare rollback shift umount" "list show" "r rX rw rwX rwx" "r rw rwx"
  "$T/journals/a.vpj $T/journals/b.vpj" "$T/other/c.vpj" "$T/journals/a.vpj $T/journals/b.vpj")
for i in "${!want[@]}"; do
  got=$(paste -sd' ' "$T/zsh.$((i + 1))")
  [ "$got" = "${want[i]}" ] || fail "zsh: case $((i + 1)): got '$got', want '${want[i]}'"
done
echo "completions: every --help option is completed in bash and zsh, with values"
