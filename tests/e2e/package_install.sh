# cpack builds a .deb that lintian passes without errors, whose Depends dpkg-shlibdeps computed;
# installed with apt, it gives a working volprep (version, man page, bash and zsh completions,
# a prepare of the demo volume), and purging it leaves the machine's packages as they were.
. "$(dirname "$0")/lib.sh"
build=$(dirname "$VOLPREP")
dpkg-query -W -f='${Status}' volprep 2>/dev/null | grep -q 'install ok installed' &&
  fail "a volprep package is installed already: this test installs and purges its own"

cpack -G DEB -B "$T/pkg" --config "$build/CPackConfig.cmake" >"$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; fail cpack; }
deb=$(echo "$T"/pkg/volprep_*.deb)
[ -f "$deb" ] || fail "cpack made no volprep_*.deb"
# Depends: what the binary links, by package (libtbb12, libc6, ...), from dpkg-shlibdeps.
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libstdc++6 libtbb12; do
  sed 's/, /\n/g' <<<"$depends" | cut -d' ' -f1 | grep -qxF "$lib" || fail "Depends lacks $lib: $depends"
done
lintian "$deb" >"$T/lintian" 2>/dev/null || true
not grep '^E:' "$T/lintian" || fail "lintian reports errors"
cat "$T/lintian"

dpkg-query -W -f='${Package} ${Version}\n' | sort >"$T/packages.before"
on_exit 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq volprep >/dev/null 2>&1'
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$T/apt.log" 2>&1 ||
  { cat "$T/apt.log"; fail "apt-get install $deb"; }

[ "$(command -v volprep)" = /usr/bin/volprep ] || fail "volprep is not /usr/bin/volprep"
[ "$(/usr/bin/volprep --version)" = "$("$VOLPREP" --version)" ]
[ "$(man -w volprep)" = /usr/share/man/man1/volprep.1.gz ]
bash -c '. /usr/share/bash-completion/bash_completion
  . /usr/share/bash-completion/completions/volprep && complete -p volprep' | grep -q -- '-F _volprep volprep$'
[ "$(zsh -fc 'autoload -Uz compinit; compinit -u -D; print -r -- $_comps[volprep]')" = _volprep ] ||
  fail "zsh does not find _volprep in its default fpath"
[ -f /usr/share/doc/volprep/copyright ] && [ -f /usr/share/doc/volprep/changelog.gz ]

# The demo volume, with the installed binary and the demo's host configuration.
vol=$("$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T")
host=(--host-root "$VOLPREP_SRC/fixtures/host")
/usr/bin/volprep "$vol" --as 1000 "${host[@]}" --dry-run >"$T/diff"
grep -qF "$vol/config.xml  owner 1000:1000 -> 501000:501000" "$T/diff"
/usr/bin/volprep "$vol" --as 1000 "${host[@]}" | grep -q 'changed 19,'
[ "$(stat -c %u:%g "$vol/config.xml")" = 501000:501000 ]
/usr/bin/volprep "$vol" --as 1000 "${host[@]}" --check

DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq volprep >/dev/null 2>&1
[ ! -e /usr/bin/volprep ] && [ ! -e /usr/share/doc/volprep ] && [ ! -e /usr/share/man/man1/volprep.1.gz ]
dpkg-query -W -f='${Package} ${Version}\n' | sort >"$T/packages.after"
diff "$T/packages.before" "$T/packages.after" || fail "the machine's packages changed"
echo "package: $(basename "$deb") installs, works and purges cleanly; Depends: $depends"
