# Every option in --help appears in the man page and the README, and the man page renders
# without warnings: a user-facing change updates all three together.
. "$(dirname "$0")/lib.sh"
man_page=$VOLPREP_SRC/man/volprep.1
readme=$VOLPREP_SRC/README.md
MANWIDTH=200 man --warnings -l "$man_page" >"$T/man.txt" 2>"$T/man.err"
[ ! -s "$T/man.err" ] || { cat "$T/man.err"; fail "man page warnings"; }
sed 's/\\-/-/g' "$man_page" >"$T/man.src"
# Every command, as --help lists them (main.cc's table).
mapfile -t subs < <(volprep_commands)
[ "${#subs[@]}" -ge 7 ] || fail "only ${#subs[@]} commands found in --help: ${subs[*]}"
for sub in "${subs[@]}"; do
  "$VOLPREP" $sub --help >"$T/help.txt"
  grep -oE '(^|[ ,])--[a-z][a-z-]+' "$T/help.txt" | sed 's/^[ ,]*//' | sort -u >"$T/opts"
  while read -r opt; do
    case $opt in --help) continue ;; esac
    grep -qF -- "$opt" "$T/man.src" || fail "volprep $sub: $opt is in --help but not in man/volprep.1"
    grep -qF -- "$opt" "$readme" || fail "volprep $sub: $opt is in --help but not in README.md"
  done <"$T/opts"
  [ -z "$sub" ] || grep -qE "volprep $sub|\[$sub\]" "$T/man.src" || fail "man page lacks the $sub command"
done
echo "docs: every --help option is documented"
