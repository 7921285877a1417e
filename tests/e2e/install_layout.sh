# cmake --install puts the binary, the man page and the bash and zsh completions where man,
# bash-completion and zsh look for them, under CMAKE_INSTALL_PREFIX (or --prefix) and DESTDIR.
. "$(dirname "$0")/lib.sh"
build=$(dirname "$VOLPREP")
[ -f "$build/cmake_install.cmake" ] || fail "$build is not the build directory"
# Every destination is under the prefix, so CMAKE_INSTALL_PREFIX at configure time moves them
# all as --prefix does at install time.
not grep -E 'file\(INSTALL DESTINATION "/' "$build/cmake_install.cmake"

for prefix in /usr/local /opt/volprep; do
  dest=$T/dest$prefix/root
  DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >/dev/null
  root=$dest$prefix
  for f in bin/volprep share/man/man1/volprep.1.gz share/bash-completion/completions/volprep \
    share/zsh/site-functions/_volprep share/doc/volprep/copyright share/doc/volprep/changelog.gz; do
    [ -f "$root/$f" ] || fail "--prefix $prefix: no $prefix/$f under DESTDIR"
  done
  [ -z "$(find "$T/dest$prefix" -path "$dest" -prune -o -type f -print)" ] || fail "wrote outside DESTDIR"
  [ "$("$root/bin/volprep" --version)" = "$("$VOLPREP" --version)" ] || fail "installed binary"
  # man finds the page by section on MANPATH; bash-completion on XDG_DATA_DIRS; zsh on fpath.
  MANPATH=$root/share/man man -w volprep | grep -qx "$root/share/man/man1/volprep.1.gz"
  MANPATH=$root/share/man MANWIDTH=80 man volprep 2>&1 | grep -q 'volprep \[prepare\]' ||
    fail "man volprep does not render"
  XDG_DATA_DIRS=$root/share bash -c '. /usr/share/bash-completion/bash_completion
    __load_completion volprep && complete -p volprep' | grep -q -- '-F _volprep volprep$' ||
    fail "bash-completion does not load the installed completion"
  [ "$(zsh -fc 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[volprep]' \
      _ "$root/share/zsh/site-functions")" = _volprep ] || fail "zsh's compinit does not find _volprep"
done
echo "install: binary, man page and completions found where man, bash and zsh look"
