#!/usr/bin/env bash
# volprep compose with a real `dockerd --userns-remap=default` and Debian's docker-compose: a
# service with user "1000:1000", one running as root and one with no user: whose image says
# USER jenkins (1000 in its passwd) each fail to write their bind mount; after `volprep
# compose` (which asks the engine for the image's user, and reads its passwd from the image's
# layers, never making a container) `up` succeeds and
# each writes; `rollback --last` puts every bind source back. A user name the image does not
# have, and an image the engine does not have, are refused naming them, with nothing changed;
# an image whose passwd is a symlink is asked through a container, which refuses the link.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
docker_require
command -v docker-compose >/dev/null || fail "this scenario needs docker-compose (apt-get install docker-compose)"
before=$(host_fingerprint)
chmod 755 "$T"

prepare_hostroot "$T/hostroot"
start_dockerd "$T/hostroot" --userns-remap=default
make_busybox_image volprep-busybox
# The jenkins image: the busybox rootfs with a jenkins user (1000), USER jenkins.
make_jenkins_image
[ "$(docker_cmd image inspect -f '{{.Config.User}}' volprep-jenkins)" = jenkins ]

p=$T/proj
mkdir -p "$p/app" "$p/root" "$p/jenkins_home"
cat >"$p/compose.yaml" <<'YAML'
services:
  app:
    image: volprep-busybox
    user: "1000:1000"
    network_mode: none
    command: ["sh", "-c", "echo app >/data/written"]
    volumes: ["./app:/data"]
  rootsvc:
    image: volprep-busybox
    network_mode: none
    command: ["sh", "-c", "echo root >/data/written"]
    volumes: ["./root:/data"]
  jenkins:
    image: volprep-jenkins
    network_mode: none
    command: ["sh", "-c", "id -u >/var/jenkins_home/written"]
    volumes:
      - type: bind
        source: ./jenkins_home
        target: /var/jenkins_home
YAML
export DOCKER_HOST=unix://$DOCKER_SOCK
compose() { (cd "$p" && timeout 120 docker-compose "$@"); }
src() { stat -c '%u:%g %a' "$p/app" "$p/root" "$p/jenkins_home"; }
orig=$(src)
vc=("$VOLPREP" compose --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID")
vc_in() { (cd "$1" && shift && "${vc[@]}" "$@"); }  # vc_in DIR [ARGS...]
# The engine's container creates since SINCE (seconds.nanoseconds), up to the next second;
# fails if `docker events` does (an empty answer then is no evidence of none), its error in
# $T/events.err.
created_since() {
  docker_cmd events --since "$1" --until "$(($(date +%s) + 1))" --filter type=container \
    --filter event=create 2>"$T/events.err"
}

# Before: each service is denied its bind mount.
compose up >"$T/up1.log" 2>&1 || true
for d in app root jenkins_home; do
  [ ! -e "$p/$d/written" ] || fail "$d was written before volprep compose"
done

# The dry run names each service's user, from user:, root, and the image's USER; it changes nothing.
vc_in "$p" -n >"$T/plan" || fail "the dry run failed"
grep -q '^# app: ./app -> /data (rw, own 1000:1000 = host 501000:501000)' "$T/plan" || { cat "$T/plan"; fail "app's plan"; }
grep -q '^# rootsvc: ./root -> /data (rw, own 0:0 = host 500000:500000)' "$T/plan" || { cat "$T/plan"; fail "rootsvc's plan"; }
grep -q '^# jenkins: ./jenkins_home -> /var/jenkins_home (rw, own 1000:1000 = host 501000:501000)' "$T/plan" ||
  { cat "$T/plan"; fail "jenkins's plan"; }
[ "$(src)" = "$orig" ] || fail "the dry run changed a source"
expect_rc 1 vc_in "$p" --check >/dev/null
# No container of volprep's is left: jenkins's passwd is read from the image's overlay2 layers,
# without a container; the engine's events show none created.
[ -z "$(docker_cmd ps -aq --filter label=volprep.purpose)" ] || fail "volprep left a container"
# To the nanosecond: `up` above made its containers a second or two ago (2.4 s on a loaded
# 2-core machine), and --since in whole seconds shows one made earlier in the same second.
since=$(date +%s.%N)
vc_in "$p" -n -vv >/dev/null 2>"$T/log" || { cat "$T/log"; fail "the dry run failed"; }
grep -q 'image volprep-jenkins: /etc/passwd and /etc/group read from its overlay2 layers' "$T/log" ||
  { cat "$T/log"; fail "the passwd was not read from the layers"; }
creates=$(created_since "$since") || fail "docker events failed: $(cat "$T/events.err")"
[ -z "$creates" ] || fail "volprep created a container: $creates"

vc_in "$p" >"$T/run" 2>&1 || { cat "$T/run"; fail "volprep compose failed"; }
[ "$(stat -c %u:%g "$p/app")" = 501000:501000 ]
[ "$(stat -c %u:%g "$p/root")" = 500000:500000 ]
[ "$(stat -c %u:%g "$p/jenkins_home")" = 501000:501000 ]
vc_in "$p" --check >/dev/null || fail "--check after the run still finds changes"

# After: up succeeds and each service writes.
compose rm -fs >/dev/null 2>&1 || true
compose up >"$T/up2.log" 2>&1 || { cat "$T/up2.log"; fail "docker-compose up failed"; }
[ "$(cat "$p/app/written")" = app ] || { cat "$T/up2.log"; fail "app did not write"; }
[ "$(cat "$p/root/written")" = root ] || fail "rootsvc did not write"
[ "$(cat "$p/jenkins_home/written")" = 1000 ] || fail "jenkins did not write as 1000"
compose down >/dev/null 2>&1 || true
rm -f "$p"/*/written

# The run wrote one journal, naming the project, with a root per bind source; one rollback
# --project puts every one back (--last finds it too, by its first root: app's source).
[ "$(ls "$VOLPREP_JOURNAL_DIR" | wc -l)" = 1 ] || fail "expected one journal: $(ls "$VOLPREP_JOURNAL_DIR")"
"$VOLPREP" journal show "$VOLPREP_JOURNAL_DIR"/*.vpj | grep -q '^# project proj in ' || fail "the journal does not name the project"
"$VOLPREP" rollback --last "$p/app" -n | grep -q "$p/root" || fail "rollback --last of app's source does not cover the project"
expect_rc 3 "$VOLPREP" rollback --project no-such-project 2>/dev/null
"$VOLPREP" rollback --project proj >/dev/null
[ "$(src)" = "$orig" ] || fail "rollback left $(src), expected $orig"

# A user name the image lacks, and an image the engine lacks: refused, naming them; nothing changes.
mkdir -p "$T/bad"
cat >"$T/bad/compose.yaml" <<'YAML'
services:
  web:
    image: volprep-busybox
    user: www-data
    volumes: ["./site:/site"]
YAML
expect_rc 3 vc_in "$T/bad" 2>"$T/err"
grep -q "service web: user: \"www-data\" (.*compose.yaml:4:11): the image's /etc/passwd has no such user" "$T/err" ||
  { cat "$T/err"; fail "the missing user is not named"; }
[ ! -e "$T/bad/site" ] || fail "a source was created for a refused project"
sed -i 's/image: volprep-busybox/image: not-pulled:1/; /user:/d' "$T/bad/compose.yaml"
expect_rc 3 vc_in "$T/bad" 2>"$T/err"
grep -q "does not have image not-pulled:1 (service web).*Pull or build it first.*x-volprep" "$T/err" ||
  { cat "$T/err"; fail "the missing image is not named"; }

# An image whose /etc/passwd is a symlink: the layers are not enough, so volprep asks through a
# container (created, never started, removed), which refuses the link too.
mv "$T/jenkins-rootfs/etc/passwd" "$T/jenkins-rootfs/etc/passwd.real"
ln -s passwd.real "$T/jenkins-rootfs/etc/passwd"
tar -C "$T/jenkins-rootfs" -c . | docker_cmd import - volprep-linked >/dev/null
sed -i 's/image: not-pulled:1/image: volprep-linked\n    user: jenkins/' "$T/bad/compose.yaml"
since=$(date +%s.%N)
expect_rc 3 vc_in "$T/bad" -vv 2>"$T/err"
grep -q "image volprep-linked: /etc/passwd is a link in the image; volprep reads only a regular file" "$T/err" ||
  { cat "$T/err"; fail "the linked passwd is not refused"; }
creates=$(created_since "$since") || fail "docker events failed: $(cat "$T/events.err")"
[ -n "$creates" ] || fail "no container was made for the image the layers could not answer for"
[ -z "$(docker_cmd ps -aq --filter label=volprep.purpose)" ] || fail "volprep left a container"

unset DOCKER_HOST
stop_dockerd
[ "$(host_fingerprint)" = "$before" ] || fail "the host changed"
echo "docker_compose: user:, root and the image's USER each write their bind mount after volprep compose; one rollback undoes it"
