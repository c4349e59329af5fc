#!/usr/bin/env bash
# shellcheck disable=SC2016 # the sh -c '...' scripts expand $1 themselves
# Checks the packaging (docs/operations.md): `make install` into a temporary
# DESTDIR (layout, modes, never overwriting a config, uninstall), the
# installed binary and config, the systemd unit (systemd-analyze verify),
# the logrotate snippet (logrotate -d, then a real rotation of a running
# gateway's access log), the container's health check, and what can be
# checked of the Dockerfile without Docker. Checks whose tool is missing are
# skipped with a message. Runs in seconds; `make test` runs it last.
set -euo pipefail
# logrotate run as root ignores a group-writable config or log directory.
umask 022
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0 failed=0 skipped=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
skip() { echo "skip: $*"; skipped=$((skipped + 1)); }
check() { # check WHAT COMMAND...: passes when the command succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
has() { command -v "$1" >/dev/null 2>&1; }
# A make of this tree, quiet unless it fails. SANITIZE (when `make test
# SANITIZE=1` runs this) comes through MAKEFLAGS, so the binary installed
# is the one the other tests ran.
run_make() {
  if ! make --no-print-directory -C "$root" "$@" >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log"
    return 1
  fi
}

# --- make install DESTDIR=... PREFIX=/usr --------------------------------
dest=$tmp/root
run_make install DESTDIR="$dest" PREFIX=/usr || { fail "make install"; exit 1; }
ok "make install DESTDIR=\$tmp PREFIX=/usr"

# Exactly these files, with these modes (docs: every docs/*.md + README).
expected="755 usr/bin/tollgate
644 etc/tollgate/tollgate.yaml
600 etc/tollgate/env
644 usr/lib/systemd/system/tollgate.service
644 usr/lib/sysusers.d/tollgate.conf
644 etc/logrotate.d/tollgate
644 usr/share/doc/tollgate/README.md"
for f in docs/*.md; do
  expected+=$'\n'"644 usr/share/doc/tollgate/$(basename "$f")"
done
actual=$(cd "$dest" && find . -type f -printf '%m %P\n' | sort)
if [ "$actual" = "$(sort <<<"$expected")" ]; then
  ok "installed files and modes"
else
  fail "installed files and modes"
  diff <(sort <<<"$expected") <(echo "$actual") || true
fi

bin=$dest/usr/bin/tollgate
conf=$dest/etc/tollgate/tollgate.yaml
unit=$dest/usr/lib/systemd/system/tollgate.service
lr=$dest/etc/logrotate.d/tollgate

check "installed binary: --version" \
  grep -qE '^tollgate [0-9]+\.[0-9]+' <("$bin" --version)
# As the service starts it: no provider key in the environment.
if env -i PATH="$PATH" "$bin" -t -c "$conf" >"$tmp/t.log" 2>&1; then
  ok "installed binary: -t -c on the installed config"
else
  fail "installed binary: -t -c on the installed config"
  cat "$tmp/t.log"
fi
check "installed config: state file and logs in the service's directories" \
  grep -qx 'state_file: /var/lib/tollgate/tollgate.state' "$conf"
check "installed config: access_log and usage_log under /var/log/tollgate" \
  test "$(grep -cE '^(access|usage)_log: /var/log/tollgate/[a-z]+\.log$' \
    "$conf")" = 2
# Every ${NAME} the example config reads has its line in the env file.
missing_vars=
while read -r v; do
  grep -q "^#\?$v=" "$dest/etc/tollgate/env" || missing_vars+=" $v"
done < <(grep -v '^ *#' config/tollgate.yaml | grep -oE '\$\{[A-Z_]+' |
  cut -c3- | sort -u)
check "env file names every variable of the config${missing_vars:+ (missing:$missing_vars)}" \
  test -z "$missing_vars"

# --- the systemd unit --------------------------------------------------
check "unit: ExecStart runs the installed binary on /etc/tollgate" \
  grep -qx 'ExecStart=/usr/bin/tollgate -c /etc/tollgate/tollgate.yaml' "$unit"
check "unit: no @PLACEHOLDER@ left" \
  sh -c '! grep -q "@[A-Z]*@" "$1"' - "$unit"
absent=
for d in Type=exec 'ExecReload=/bin/kill -HUP $MAINPID' KillMode=mixed \
  KillSignal=SIGTERM Restart=on-failure User=tollgate StateDirectory=tollgate \
  LogsDirectory=tollgate EnvironmentFile=-/etc/tollgate/env \
  CapabilityBoundingSet= NoNewPrivileges=yes ProtectSystem=strict \
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
  MemoryDenyWriteExecute=yes; do
  grep -qxF "$d" "$unit" || absent+=" [$d]"
done
check "unit: the directives the service relies on${absent:+ (missing:$absent)}" \
  test -z "$absent"
# SIGTERM drains for shutdown_timeout_s, then the master needs up to 2 s
# more: systemd must not SIGKILL before that.
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
drain_s=$(sed -n 's/^shutdown_timeout_s: \([0-9]*\).*/\1/p' "$conf")
check "unit: TimeoutStopSec ($stop_s) > shutdown_timeout_s ($drain_s) + 2" \
  test "${stop_s:-0}" -gt $((${drain_s:-1000} + 2))
check "sysusers.d creates the unit's user" \
  grep -qE '^u tollgate - ' "$dest/usr/lib/sysusers.d/tollgate.conf"

# verify checks every directive against this systemd, and that the
# commands exist: point ExecStart at the binary in DESTDIR.
if ! has systemd-analyze; then
  skip "systemd-analyze verify: systemd-analyze is not installed"
else
  mkdir -p "$tmp/verify"
  printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' \
    >"$tmp/verify/tg-probe.service"
  if ! systemd-analyze verify --man=no "$tmp/verify/tg-probe.service" \
    >/dev/null 2>&1; then
    skip "systemd-analyze verify: does not work here (no systemd?)"
  else
    sed "s#/usr/bin/tollgate#$bin#g" "$unit" >"$tmp/verify/tollgate.service"
    if systemd-analyze verify --man=no "$tmp/verify/tollgate.service" \
      >"$tmp/verify.log" 2>&1 && ! grep -q . "$tmp/verify.log"; then
      ok "systemd-analyze verify: no warning"
    else
      fail "systemd-analyze verify"
      cat "$tmp/verify.log"
    fi
    systemd-analyze security --offline=yes "$tmp/verify/tollgate.service" \
      2>/dev/null | sed -n 's/^→ /info: systemd-analyze security: /p' || true
  fi
fi

# --- logrotate ---------------------------------------------------------
# Without a tollgate user (a build machine), `create` names the current one.
me_user=$(id -un) me_group=$(id -gn)
as_here() { sed -e "s/ tollgate tollgate$/ $me_user $me_group/" "$@"; }
if ! has logrotate; then
  skip "logrotate: not installed (scripts/install-deps.sh --test installs it)"
else
  lr_conf=$lr
  if ! getent passwd tollgate >/dev/null; then
    lr_conf=$tmp/lr-debug.conf
    as_here "$lr" >"$lr_conf"
  fi
  if logrotate -d -s "$tmp/lr-debug.state" "$lr_conf" >"$tmp/lr-debug.log" 2>&1 &&
    ! grep -q '^error' "$tmp/lr-debug.log"; then
    ok "logrotate -d accepts the snippet"
  else
    fail "logrotate -d"
    cat "$tmp/lr-debug.log"
  fi
fi

# --- the installed gateway, rotated for real, and its health check -------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
if ! has logrotate || ! has curl || ! has python3; then
  skip "rotation of a running gateway: needs logrotate, curl and python3"
else
  port=$(free_port)
  run=$tmp/run log=$tmp/log
  mkdir -p "$run" "$log"
  sed -e "s/\"127.0.0.1:8000\"/\"127.0.0.1:$port\"/" -e 's/^workers: .*/workers: 2/' \
    -e "s#/var/lib/tollgate/#$run/#" -e "s#/var/log/tollgate/#$log/#" \
    -e "s#^shutdown_timeout_s: .*#shutdown_timeout_s: 5\npid_file: $run/tollgate.pid#" \
    "$dest/etc/tollgate/tollgate.yaml" >"$run/tollgate.yaml"
  # The snippet on these paths; an absent unit name, so the pid_file path of
  # postrotate is the one taken even where systemd runs a real tollgate.
  as_here -e "s#/var/log/tollgate/#$log/#g" -e "s#/run/tollgate/#$run/#g" \
    -e 's/ tollgate\.service / tollgate-packaging-test.service /' \
    "$lr" >"$tmp/lr.conf"
  env -i PATH="$PATH" "$bin" -c "$run/tollgate.yaml" >"$tmp/gw.log" 2>&1 &
  pid=$!
  url=http://127.0.0.1:$port
  for _ in $(seq 1 50); do curl -sf -o /dev/null "$url/healthz" && break; sleep 0.1; done
  curl -sf -o /dev/null "$url/healthz" || { fail "the installed gateway starts"; cat "$tmp/gw.log"; }
  check "healthcheck.sh: 0 on a serving gateway" \
    scripts/packaging/healthcheck.sh "$port"
  check "healthcheck.sh: 1 on a closed port" \
    sh -c '! scripts/packaging/healthcheck.sh "$1" 2>/dev/null' - "$(free_port)"
  curl -s -o /dev/null "$url/before-rotation" || true
  for _ in $(seq 1 50); do grep -q before-rotation "$log/access.log" 2>/dev/null && break; sleep 0.1; done
  if ! logrotate -f -s "$tmp/lr.state" "$tmp/lr.conf" >"$tmp/lr.log" 2>&1; then
    fail "logrotate -f"
    cat "$tmp/lr.log"
  fi
  # The reopen is asynchronous: ask until a line lands in the new file.
  for i in $(seq 1 50); do
    curl -s -o /dev/null "$url/after-rotation-$i" || true
    grep -q after-rotation "$log/access.log" 2>/dev/null && break
    sleep 0.1
  done
  check "rotation: the old lines are in access.log.1" \
    grep -q before-rotation "$log/access.log.1"
  check "rotation: after SIGUSR1 new lines go to a new access.log" \
    sh -c 'grep -q after-rotation "$1" && ! grep -q before-rotation "$1"' \
    - "$log/access.log"
  check "rotation: the new file is $me_user's, mode 640" \
    test "$(stat -c '%U %a' "$log/access.log")" = "$me_user 640"
  kill -TERM "$pid" 2>/dev/null || true
  status=0
  wait "$pid" || status=$?
  pid=
  check "SIGTERM: the gateway stops with status 0 and removes its pid file" \
    test "$status" = 0 -a ! -e "$run/tollgate.pid"
fi

# --- reinstall keeps the config; uninstall; PREFIX=/usr/local ----------
# In a DESTDIR of their own: the checks above and below use $dest.
again=$tmp/again
run_make install DESTDIR="$again" PREFIX=/usr || fail "make install (again)"
echo "# local edit" >>"$again/etc/tollgate/tollgate.yaml"
echo "OPENAI_API_KEY=kept" >>"$again/etc/tollgate/env"
run_make install DESTDIR="$again" PREFIX=/usr || fail "make install over it"
check "reinstall keeps the config and adds tollgate.yaml.example" \
  sh -c 'grep -qx "# local edit" "$1/tollgate.yaml" &&
    test -f "$1/tollgate.yaml.example" &&
    ! grep -q "# local edit" "$1/tollgate.yaml.example"' - "$again/etc/tollgate"
check "reinstall keeps the env file" \
  grep -qx OPENAI_API_KEY=kept "$again/etc/tollgate/env"
run_make uninstall DESTDIR="$again" PREFIX=/usr || fail "make uninstall"
check "uninstall leaves only the config and the env file" \
  test "$(cd "$again" && find . -type f -printf '%P\n' | sort | tr '\n' ' ')" \
  = "etc/tollgate/env etc/tollgate/tollgate.yaml "

run_make install DESTDIR="$tmp/local" || fail "make install (default PREFIX)"
check "default PREFIX /usr/local: binary, config in /usr/local/etc, unit" \
  grep -qx 'ExecStart=/usr/local/bin/tollgate -c /usr/local/etc/tollgate/tollgate.yaml' \
  "$tmp/local/usr/local/lib/systemd/system/tollgate.service"
check "default PREFIX: logrotate snippet still in /etc/logrotate.d" \
  test -f "$tmp/local/etc/logrotate.d/tollgate"

# --- the Dockerfile, statically ------------------------------------------
df=scripts/packaging/Dockerfile
# Instructions with their continuation lines joined.
instructions=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba}' "$df" | grep -v '^ *#')
bad_copy=
while read -r src; do
  [ -e "$src" ] || bad_copy+=" $src"
done < <(grep -E '^COPY ' <<<"$instructions" | grep -v -- '--from=' |
  awk '{ for (i = 2; i < NF; i++) print $i }')
check "Dockerfile: every file it COPYs exists${bad_copy:+ (missing:$bad_copy)}" \
  test -z "$bad_copy"
# The build stage needs every directory the Makefile compiles.
uncopied=
for d in include master $(sed -n 's/^LIB_SRC *:= *\$(wildcard \(.*\))$/\1/p' \
  Makefile | grep -oE '[a-z_]+/' | tr -d /); do
  grep -qE "^COPY $d $d\$" <<<"$instructions" || uncopied+=" $d"
done
check "Dockerfile: the build stage copies every source directory${uncopied:+ (not:$uncopied)}" \
  test -z "$uncopied"
check "Dockerfile: both stages FROM debian:bookworm-slim" \
  test "$(grep -c '^FROM debian:bookworm-slim' "$df")" = 2 -a \
  "$(grep -c '^FROM ' "$df")" = 2
check "Dockerfile: builds with the packages scripts/install-deps.sh names" \
  grep -qx 'RUN scripts/install-deps.sh' "$df"
runtime_pkgs=$(awk '/^FROM/ { n++ } n == 2' "$df" |
  sed -e ':a' -e '/\\$/{N;s/\\\n//;ba}' | grep -E '^RUN apt-get' |
  grep -oE 'install -y --no-install-recommends [^&]*' | cut -d' ' -f4-)
# Each runtime package exists (the binary runs here, so they are installed).
read -ra runtime_pkgs <<<"$runtime_pkgs"
check "Dockerfile: runtime packages are real Debian packages (${runtime_pkgs[*]})" \
  sh -c 'dpkg-query -W "$@" >/dev/null' - "${runtime_pkgs[@]}"
if readelf -d "$bin" | grep -q 'NEEDED.*libasan'; then
  skip "Dockerfile: runtime libraries (a sanitizer build links libasan)"
else
  unprovided=
  for lib in $(readelf -d "$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
    pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(realpath "$path")" 2>/dev/null ||
      echo "?:")
    pkg=${pkg%%:*}
    [ "$pkg" = libc6 ] && continue # in the base image
    grep -qw -- "$pkg" <<<"${runtime_pkgs[*]}" || unprovided+=" $lib($pkg)"
  done
  check "Dockerfile: runtime stage installs every library the binary links${unprovided:+ (not:$unprovided)}" \
    test -z "$unprovided"
fi
check "Dockerfile: ca-certificates in the runtime stage" \
  grep -qw ca-certificates <<<"${runtime_pkgs[*]}"
check "Dockerfile: runs as the non-root user it creates" \
  sh -c 'grep -qx "USER tollgate" "$1" && grep -q "useradd .*tollgate" "$1"' - "$df"
check "Dockerfile: STOPSIGNAL SIGTERM" grep -qx 'STOPSIGNAL SIGTERM' "$df"
check "Dockerfile: volumes for the config and the state" \
  grep -qx 'VOLUME \["/etc/tollgate", "/var/lib/tollgate"\]' "$df"
check "Dockerfile: HEALTHCHECK runs the copied health check on 8000" \
  sh -c 'grep -q "CMD \[\"tollgate-healthcheck\", \"8000\"\]" "$1" &&
    grep -q "^COPY scripts/packaging/healthcheck.sh /usr/bin/tollgate-healthcheck" "$1"' - "$df"
check "Dockerfile: the image's config listens on 0.0.0.0:8000" \
  sh -c 'grep -q "s#^listen: .*#listen: \[\"0.0.0.0:8000\"\]#" "$1" &&
    grep -qx "EXPOSE 8000" "$1"' - "$df"
# The lines `make install` and the Dockerfile rewrite with sed exist, once.
for key in listen state_file usage_log access_log; do
  test "$(grep -c "^$key: " config/tollgate.yaml)" = 1 ||
    fail "config/tollgate.yaml: not exactly one line '$key: ...' to rewrite"
done

echo "packaging: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
