# Every option in --help appears in the man page and the README, in the part that describes
# its command, and the man page renders without warnings: a user-facing change updates all
# three together.
. "$(dirname "$0")/lib.sh"
man_page=$VOLPREP_SRC/man/volprep.1
readme=$VOLPREP_SRC/README.md
MANWIDTH=200 man --warnings -l "$man_page" >"$T/man.txt" 2>"$T/man.err"
[ ! -s "$T/man.err" ] || { cat "$T/man.err"; fail "man page warnings"; }
# An .fi with no .nf open fills what follows into one paragraph, and groff says nothing.
awk '/^\.nf/ { if (open) { print FILENAME ":" NR ": .nf inside .nf"; bad = 1 } open = 1 }
     /^\.fi/ { if (!open) { print FILENAME ":" NR ": .fi with no .nf"; bad = 1 } open = 0 }
     END { if (open) { print FILENAME ": .nf never closed"; bad = 1 } exit bad }' "$man_page" ||
  fail "man page: unbalanced .nf/.fi"
sed 's/\\-/-/g; s/\\f[BIRP]//g' "$man_page" >"$T/man.src"
# The man page's text of a command: its sections (SHIFT, SHIFT OPTIONS) and its entry in
# COMMANDS (the .TP whose tag names `volprep CMD`).
man_text() { # CMD
  awk -v sh="${1^^}" -v cmd="volprep $1" '
    /^\.SH / { name = substr($0, 5); gsub(/"/, "", name)
               insec = name == sh || name == sh " OPTIONS"; cmds = name == "COMMANDS"; inent = 0; next }
    cmds && /^\.TP/ { tp = 1; inent = 0; next }
    cmds && tp { tp = 0; tag = $0; gsub(/"/, "", tag); gsub(/ +/, " ", tag)
                 inent = index(tag " ", cmd " ") > 0 || (cmd == "volprep prepare" && index(tag, "[prepare]") > 0) }
    insec || inent' "$T/man.src"
}
# The README's text of a command: from the paragraph that starts with `volprep CMD (else from
# where it is first named) to the next paragraph that starts with another command, or a heading.
readme_text() { # CMD
  awk -v cmd="$1" '
    function names(s) { return index(s, "`volprep " cmd " ") > 0 || (cmd == "prepare" && index(s, "`volprep [prepare]") > 0) }
    function starts(s) { return s ~ /^`volprep / && names(substr(s, 1, length(cmd) + 11)) }
    NR == FNR { if (blank && starts($0) && !from) from = FNR; if (!first && names($0)) first = FNR
                blank = $0 == ""; next }
    FNR == 1 { from = from ? from : first; blank = 0 }
    /^#/ || (blank && /^`volprep / && !starts($0)) { on = 0 }
    FNR == from { on = 1 }
    on; { blank = $0 == "" }' "$readme" "$readme"
}
# Whether TEXT names OPT (or its short form): as a word, --journal not by --journal-dir.
names_opt() { # TEXT LONG [SHORT]
  grep -qE -- "(^|[^a-z-])($2${3:+|$3})([^a-z-]|$)" <<<"$1"
}
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
  # The command's own options (not the remap sources, which have a section of their own), in
  # its part of the man page and of the README. "As for prepare: --x, --y" names them.
  [ -n "$sub" ] || continue
  man_cmd=$(man_text "$sub")
  readme_cmd=$(readme_text "$sub")
  [ -n "$man_cmd" ] || fail "man page: no section or COMMANDS entry for volprep $sub"
  [ -n "$readme_cmd" ] || fail "README.md: no paragraph of volprep $sub"
  awk '/^Options:/ { on = 1; next } /^[A-Z]/ { on = 0 } on' "$T/help.txt" |
    grep -oE '^ +(-[a-z],)?--[a-z][a-z-]+' | sed 's/^ *//' | grep -v -- '--help$' >"$T/own" || true
  while IFS=, read -r short long; do
    [ -n "$long" ] || { long=$short; short=; }
    names_opt "$man_cmd" "$long" "$short" ||
      fail "volprep $sub: $long is in --help but not where man/volprep.1 describes volprep $sub"
    names_opt "$readme_cmd" "$long" "$short" ||
      fail "volprep $sub: $long is in --help but not where README.md describes volprep $sub"
  done <"$T/own"
done
echo "docs: every --help option is documented, where its command is"
