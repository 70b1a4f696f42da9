#!/usr/bin/env bash
# The remote cache / remote execution suite: the strata Bazel rules against a
# real REAPI server, BuildGrid (PyPI 0.4.4), on the e2e workspace tests/bazel.
# `.ci/run` runs it.
#  0. installs what is missing: Debian's postgresql, bazel-bootstrap and
#     bazel-rules-java; BuildGrid (tests/remote/requirements.txt, pinned) in a
#     venv kept in $STRATA_REMOTE_VENV (default ~/.cache/strata/buildgrid-0.4.4);
#  1. starts a private PostgreSQL cluster (fresh, in a temp dir, on a free
#     127.0.0.1 port), `bgd migrate apply`, `bgd server start` with
#     tests/remote/bgd.yml.in (CAS on disk in the temp dir, bot keep-alive 10 s)
#     on a free 127.0.0.1 port, and tests/remote/worker.py (test scaffolding:
#     a minimal Remote Workers API worker; no registry here carries one);
#  2. a local build of //... and //remote:images (output base L; the latter,
#     "manual", is a 4 MB base image and two images on it): the reference
#     bytes, and the README example's digests against tests/golden/hello.json;
#  3. remote cache only (output base R): build --remote_cache, bazel clean,
#     build again: every strata action is a remote cache hit, outputs
#     byte-identical to the local build's;
#  4. what the CAS then holds against the distinct layer bytes of the images
#     (tests/remote/cas_report.py): every layer stored once;
#  5. remote execution: bazel clean, build --remote_executor (with
#     --noremote_accept_cached, so the cache filled in 3 does not answer):
#     every strata action (and the genrule) ran remotely ("N remote"),
#     every strata action in the worker's sandbox (tests/remote/sandbox.py:
#     a chroot with its inputs and the C runtime only; its --self-test runs
#     first), outputs byte-identical;
#     then bazel test //... runs the e2e tests on the worker too.
# Everything started here is stopped by its pid, and the temp dir removed, on exit.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
ROOT=$(cd ../.. && pwd)
WS=$ROOT/tests/bazel
export DEBIAN_FRONTEND=noninteractive
T0=$SECONDS
step() { echo; echo "--- $* ($((SECONDS - T0)) s)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "install"
missing=()
command -v bazel >/dev/null 2>&1 || missing+=(bazel-bootstrap)
[ -d /usr/share/bazel/rules/java ] || missing+=(bazel-rules-java)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt-get install ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
PGBIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
echo "bazel: $(dpkg-query -W -f='${Version}' bazel-bootstrap 2>/dev/null || bazel --version)"
echo "postgresql: $("$PGBIN/postgres" --version)"

VENV=${STRATA_REMOTE_VENV:-$HOME/.cache/strata/buildgrid-0.4.4}
if ! cmp -s "$HERE/requirements.txt" "$VENV/requirements.txt" 2>/dev/null || ! "$VENV/bin/bgd" --help >/dev/null 2>&1; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$VENV/requirements.txt"
fi
echo "buildgrid: $("$VENV/bin/pip" show buildgrid 2>/dev/null | sed -n 's/^Version: //p') ($("$VENV/bin/python" --version))"

step "cargo build --release"
(cd "$ROOT" && cargo build --release --locked -q)
STRATA_BINARY=${CARGO_TARGET_DIR:-$ROOT/target}/release/strata
case $STRATA_BINARY in /*) ;; *) STRATA_BINARY=$ROOT/$STRATA_BINARY ;; esac
test -x "$STRATA_BINARY"

WORK=$(mktemp -d /tmp/strata-remote.XXXXXX)
chmod 755 "$WORK" # the postgres user reaches its data dir through it
PIDS=()
OBS=()
PG_STARTED=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  local rc=$?
  for ob in "${OBS[@]}"; do bazel --output_base="$ob" shutdown >/dev/null 2>&1 || true; done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -z "$PG_STARTED" ] || as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  if [ $rc -ne 0 ]; then
    for log in "$WORK"/*.log; do
      [ -f "$log" ] || continue
      echo "--- tail of $(basename "$log")"
      tail -n 30 "$log"
    done
  fi
  chmod -R u+w "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # port seconds pid
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

step "PostgreSQL: a fresh cluster on 127.0.0.1"
PG_PORT=$(free_port)
mkdir -p "$WORK/pg"
[ "$(id -u)" != 0 ] || chown postgres: "$WORK/pg"
as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -U bgd -A trust --no-sync -E UTF8 >"$WORK/initdb.log"
PG_STARTED=1
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/postgres.log" -w \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $WORK/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
"$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U bgd bgd
DB_URL=postgresql+psycopg2://bgd@127.0.0.1:$PG_PORT/bgd
"$VENV/bin/bgd" migrate apply "$DB_URL" >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; fail "bgd migrate apply"; }
echo "postgres on 127.0.0.1:$PG_PORT, schema migrated"

step "the worker's sandbox: nothing of the host but the C runtime"
"$VENV/bin/python" "$HERE/sandbox.py" --self-test
echo "strata needs: $(ldd "$STRATA_BINARY" | awk '$1 ~ /^\// { print $1 } $3 ~ /^\// { print $3 }' | paste -sd' ')"

step "BuildGrid server and worker"
BG_PORT=$(free_port)
sed -e "s|@PORT@|$BG_PORT|" -e "s|@DB_URL@|$DB_URL|" -e "s|@CAS_DIR@|$WORK/cas|" "$HERE/bgd.yml.in" >"$WORK/bgd.yml"
"$VENV/bin/bgd" server lint "$WORK/bgd.yml" >/dev/null
"$VENV/bin/bgd" server start "$WORK/bgd.yml" >"$WORK/bgd.log" 2>&1 &
PIDS+=($!)
wait_port "$BG_PORT" 60 "${PIDS[-1]}" || fail "bgd server did not listen on 127.0.0.1:$BG_PORT"
"$VENV/bin/python" "$HERE/worker.py" --remote "127.0.0.1:$BG_PORT" --instance main \
  --work-dir "$WORK/worker" --keepalive 10 >"$WORK/worker.log" 2>&1 &
PIDS+=($!)
echo "bgd server on 127.0.0.1:$BG_PORT (pid ${PIDS[0]}), worker pid ${PIDS[1]}"
REMOTE=grpc://127.0.0.1:$BG_PORT

# Bazel: the e2e workspace in place, with output bases of our own.
OB_L=$WORK/ob-local
OB_R=$WORK/ob-remote
OBS=("$OB_L" "$OB_R")
F=(--repo_env=STRATA_BINARY="$STRATA_BINARY")
RF=(--remote_instance_name=main --remote_timeout=120)
T=(//... //remote:images)
cd "$WS"

outputs() { # output_base: a digest of every byte the rules wrote (as tests/bazel/run.sh)
  local bin
  bin=$(bazel --output_base="$1" info "${F[@]}" bazel-bin 2>/dev/null)
  for t in hello app app_arm64 multi app_load; do
    printf 'example/%s %s\n' "$t" "$(cat "$bin/example/$t.digest" 2>/dev/null || sha256sum <"$bin/example/$t.tar" | cut -c1-64)"
  done
  (cd "$bin" && find . -type f ! -path '*.runfiles*' ! -name '*.runfiles_manifest' -print0 |
    sort -z | xargs -0 sha256sum)
}
summary() { grep -E '^INFO: [0-9]+ process' "$1" | tail -1; }
# bazel_log LOG BAZEL-ARGS...: runs bazel with its output in LOG; a non-zero
# exit fails the suite (with the log's tail); then shows the summary lines.
bazel_log() {
  local log=$1 rc=0
  shift
  bazel "$@" >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    tail -n 40 "$log" >&2
    fail "bazel $* exited $rc (log: $log)"
  fi
  grep -E '^INFO: [0-9]+ process|Elapsed|Executed|PASSED|FAILED' "$log" || true
}
count() { # summary kind: the count of "N <kind>" in a summary line, else 0
  local n
  n=$(echo "$1" | grep -oE "[0-9]+ $2([,.]|$)" | grep -oE '^[0-9]+' || true)
  echo "${n:-0}"
}

step "local build of ${T[*]} (reference)"
bazel_log "$WORK/local-build.log" --output_base="$OB_L" build "${F[@]}" "${T[@]}"
outputs "$OB_L" >"$WORK/local"
aq() { bazel --output_base="$OB_L" aquery "${F[@]}" "mnemonic(\"$1\", deps(//... + //remote:images))" --output=text 2>/dev/null; }
N=$(aq 'Strata.*' | grep -c '^action ')
G=$(aq Genrule | grep -c '^action ' || true)
echo "$N strata actions ($(aq 'Strata.*' | sed -n 's/^ *Mnemonic: //p' |
  sort | uniq -c | awk '{printf "%s%s %s", s, $1, $2; s=", "}')) and $G genrule"
[ "$N" -gt 0 ] || fail "no strata action found"
S=$((N + G)) # the spawns of the build: each must be a remote cache hit, or remote
golden() { sed -n 's/.*"'"$1"'": *"\(sha256:[0-9a-f]*\)".*/\1/p' "$ROOT/tests/golden/hello.json"; }
check_golden() { # output_base
  local bin layer manifest
  bin=$(bazel --output_base="$1" info "${F[@]}" bazel-bin 2>/dev/null)
  layer=$(sed -n 's/.*"digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' "$bin/example/hello_layer.descriptor.json")
  manifest=$(cat "$bin/example/hello.digest")
  [ "$layer" = "$(golden layer)" ] || fail "hello_layer: $layer, golden $(golden layer)"
  [ "$manifest" = "$(golden manifest)" ] || fail "hello manifest: $manifest, golden $(golden manifest)"
  echo "ok: golden digests: layer $layer, manifest $manifest"
}
check_golden "$OB_L"
grep '^example/' "$WORK/local"
bazel --output_base="$OB_L" shutdown

step "remote cache: build, bazel clean, build: every strata action a remote cache hit"
B=(bazel --output_base="$OB_R")
bazel_log "$WORK/cache1.log" --output_base="$OB_R" build "${F[@]}" "${RF[@]}" --remote_cache="$REMOTE" "${T[@]}"
"${B[@]}" clean
bazel_log "$WORK/cache2.log" --output_base="$OB_R" build "${F[@]}" "${RF[@]}" --remote_cache="$REMOTE" "${T[@]}"
s=$(summary "$WORK/cache2.log")
hits=$(count "$s" 'remote cache hit')
if echo "$s" | grep -qE 'sandbox|local|worker|remote[,.]'; then fail "actions ran instead of coming from the remote cache: $s"; fi
[ "$hits" -eq "$S" ] || fail "$N strata actions + $G genrule, $hits remote cache hits: $s"
echo "ok: all $N strata actions (and $G genrule) were remote cache hits"
outputs "$OB_R" >"$WORK/cached"
diff "$WORK/local" "$WORK/cached" || fail "outputs from the remote cache differ from the local build's"
echo "ok: byte-identical to the local build ($(wc -l <"$WORK/local") output files)"

step "what the remote cache holds"
BIN=$("${B[@]}" info "${F[@]}" bazel-bin 2>/dev/null)
"$VENV/bin/python" "$HERE/cas_report.py" "$WORK/cas" "$BIN" | tee "$WORK/cas-cache.txt"
echo "files in the CAS directory: $(find "$WORK/cas/cas/objects" -type f -printf "%s\n" | awk "{ s += \$1 } END { print s }") bytes"

step "remote execution: bazel clean, build: every strata action runs on the worker"
"${B[@]}" clean
bazel_log "$WORK/exec.log" --output_base="$OB_R" build "${F[@]}" "${RF[@]}" --remote_executor="$REMOTE" --noremote_accept_cached "${T[@]}"
s=$(summary "$WORK/exec.log")
remote=$(count "$s" remote)
if echo "$s" | grep -qE 'sandbox|local|worker|cache hit'; then fail "actions did not all run remotely: $s"; fi
[ "$remote" -eq "$S" ] || fail "$N strata actions + $G genrule, $remote ran remotely: $s"
ran=$(grep -c ': exit 0$' "$WORK/worker.log" || true)
echo "ok: all $N strata actions (and $G genrule) ran remotely (the worker completed $ran leases)"
# Every strata action ran in the sandbox (no shell, tar or Python: only its
# inputs and the libraries ldd names); nothing else did.
boxed=$(grep -c '^worker: ran [^ ]*/strata in the sandbox: ' "$WORK/worker.log" || true)
hosted=$(grep '^worker: ran .* on the host$' "$WORK/worker.log" | sed 's/^worker: ran //; s/ on the host$//' | sort | uniq -c | awk '{ printf "%s%s (%s)", s, $2, $1; s = ", " }' || true)
[ "$boxed" -eq "$N" ] || fail "$boxed strata actions ran in the worker's sandbox, not $N"
echo "ok: all $N strata actions ran in the sandbox; on the host: ${hosted:-nothing}"
outputs "$OB_R" >"$WORK/remote"
diff "$WORK/local" "$WORK/remote" || fail "remotely built outputs differ from the local build's"
check_golden "$OB_R"
echo "ok: byte-identical to the local build"

step "remote execution: bazel test //... on the worker"
bazel_log "$WORK/test.log" --output_base="$OB_R" test "${F[@]}" "${RF[@]}" --remote_executor="$REMOTE" //...
grep -qE '^INFO: Build completed successfully' "$WORK/test.log" || fail "bazel test //... remotely"
s=$(summary "$WORK/test.log")
tests=$(grep -cE ' PASSED in ' "$WORK/test.log" || true)
# Bazel 4 counts a test and its test.xml generation as two remote spawns.
if echo "$s" | grep -qE 'sandbox|local|worker|cache hit'; then fail "tests did not all run remotely: $s"; fi
[ "$(count "$s" remote)" -ge "$tests" ] && [ "$tests" -gt 0 ] || fail "$tests tests passed, but: $s"
echo "ok: $tests tests ran remotely and passed ($s)"

step "what the CAS holds after remote execution (inputs too)"
"$VENV/bin/python" "$HERE/cas_report.py" "$WORK/cas" "$BIN" "$STRATA_BINARY" | tee "$WORK/cas-exec.txt" | sed -n '/^CAS:/,$p'

step "remote suite: ok"
echo "remote: $N strata actions + $G genrule: $S remote cache hits, then $S remote; $tests tests remote"
tail -1 "$WORK/cas-cache.txt"
