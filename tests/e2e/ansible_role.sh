# The Ansible role in contrib/ansible/volprep, run for real by Debian's ansible-core against
# this machine: it installs the .deb and prepares the listed volumes; the first run reports
# changed, the second not; check mode shows volprep's dry-run diff and changes nothing; a
# container user the map lacks fails the host with volprep's message.
. "$(dirname "$0")/lib.sh"
build=$(dirname "$VOLPREP")
dpkg-query -W -f='${Status}' volprep 2>/dev/null | grep -q 'install ok installed' &&
  fail "a volprep package is installed already: this test installs and purges its own"
[ ! -e /var/cache/volprep ] || fail "/var/cache/volprep exists: the role's cache must be ours to remove"
cpack -G DEB -B "$T/pkg" --config "$build/CPackConfig.cmake" >"$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; fail cpack; }
deb=$(echo "$T"/pkg/volprep_*.deb)
on_exit 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq volprep >/dev/null 2>&1; rm -rf /var/cache/volprep'

# Ansible's own files stay under $T, whatever /etc/ansible or ~/.ansible hold.
: >"$T/ansible.cfg"
export ANSIBLE_CONFIG=$T/ansible.cfg ANSIBLE_HOME=$T/ansible ANSIBLE_LOCAL_TEMP=$T/ansible/tmp \
  ANSIBLE_REMOTE_TEMP=$T/ansible/remote ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
  ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 DEBIAN_FRONTEND=noninteractive

vol=$("$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T")
mkdir -p "$T/shared/src" && echo 'int x;' >"$T/shared/src/x.c" && echo log >"$T/shared/src/build.log"
playbook() { # playbook AS [ansible-playbook options...]: the role on localhost, output in $T/out
  local as=$1; shift
  cat >"$T/site.yml" <<YAML
- hosts: all
  gather_facts: false
  roles:
    - role: $VOLPREP_SRC/contrib/ansible/volprep
      volprep_package_file: $deb
      volprep_args: [--host-root, $VOLPREP_SRC/fixtures/host, --journal-dir, $T/journals]
      volprep_volumes:
        - {path: $vol, as: "$as", chmod: "g+rX"}
        - {path: $T/shared/src, as: "$as", mode: acl, acl_perms: rX, exclude: ["*.log"]}
YAML
  timeout 300 ansible-playbook -i localhost, -c local "$T/site.yml" "$@" >"$T/out" 2>&1
}
recap() { grep -oE "$1=[0-9]+" "$T/out" | tail -1 | cut -d= -f2; }

playbook 1000 || { cat "$T/out"; fail "first run"; }
[ "$(recap changed)" -eq 4 ] || { cat "$T/out"; fail "first run: want 4 tasks changed (directory, copy, apt, volumes)"; }
[ "$(stat -c %u:%g "$vol/config.xml")" = 501000:501000 ]
getfacl -p "$T/shared/src/x.c" | grep -qx 'user:501000:r--'
getfacl -p "$T/shared/src/build.log" | not grep -q 501000
/usr/bin/volprep --version >/dev/null

playbook 1000 || { cat "$T/out"; fail "second run"; }
[ "$(recap changed)" -eq 0 ] || { cat "$T/out"; fail "second run changed something"; }

# Drift: the file is the container user's again on the host side; check mode shows it only.
chown 1000:1000 "$vol/config.xml"
playbook 1000 --check --diff || { cat "$T/out"; fail "check mode"; }
[ "$(recap changed)" -eq 1 ] || { cat "$T/out"; fail "check mode: want the one volume changed"; }
grep -qF "$vol/config.xml  owner 1000:1000 -> 501000:501000" "$T/out" || { cat "$T/out"; fail "no diff"; }
[ "$(stat -c %u:%g "$vol/config.xml")" = 1000:1000 ] || fail "check mode changed the volume"

not playbook 70000
[ "$(recap failed)" -eq 1 ] || { cat "$T/out"; fail "a bad 'as' does not fail the host"; }
grep -q 'container uid 70000 is not mapped by the uid map' "$T/out" || { cat "$T/out"; fail "not volprep's message"; }
[ "$(stat -c %u:%g "$vol/config.xml")" = 1000:1000 ]
echo "ansible: installs, prepares, idempotent, check mode is a dry run, failures in volprep's words"
