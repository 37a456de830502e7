#!/usr/bin/env bash
# Remote benchmark (docs/bench-remote.md): push a synthetic ~1 GiB bf16 model to a
# remote - git over git:// (git daemon), chunks to a WebDAV directory (nginx) on
# loopback - then rewrite 1% of its tensor bytes (sluice-synth mutate --percent 1),
# propose and promote that, and push again. For each push: HTTP requests made and
# bytes sent, counted by sluice and by nginx's access log, against the ideal: one
# PUT per chunk actually new (what the ingest reports as new) and those chunks'
# bytes. A clone after the first push and a pull after the second are measured
# the same way (GETs).
#
# usage: bench/remote.sh [--markdown FILE] [--keep]
#   SLUICE_BUILD=DIR  use the sluice and sluice-synth already built in DIR
#                     (default: configure and build build/bench, Release)
#   BENCH_TMP=DIR     where the temporary directory goes (default $TMPDIR or /tmp)
#   BENCH_CONCURRENCY=N  requests in flight (default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

markdown=""
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--markdown) markdown=$(realpath -m "$2"); shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "remote.sh: unknown argument $1" >&2; exit 3 ;;
	esac
done
CONC=${BENCH_CONCURRENCY:-8}

t_start=$(date +%s)
say() { printf '[%4ds] %s\n' "$(($(date +%s) - t_start))" "$*" >&2; }

command -v nginx >/dev/null || { echo "remote.sh: needs nginx (scripts/deps.sh installs it)" >&2; exit 3; }
command -v jq >/dev/null || { echo "remote.sh: needs jq" >&2; exit 3; }
if [ -n "${SLUICE_BUILD:-}" ]; then
	B=$(realpath "$SLUICE_BUILD")
else
	say "building sluice (Release)"
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
	cmake --build build/bench -j"$(nproc)" --target sluice sluice-synth >/dev/null
	B=$ROOT/build/bench
fi
S=$B/sluice
SYNTH=$B/sluice-synth

work=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/sluice-bench-remote.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	if [ "$keep" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
export SLUICE_KEYS=$work/keys SLUICE_KEY=ops

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "remote.sh: nothing listens on port $1" >&2
	exit 5
}

# ---- servers -----------------------------------------------------------------
ng=$work/nginx
mkdir -p "$ng/tmp" "$ng/www" "$work/git"
nport=$(free_port)
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$ng/nginx.conf" <<EOF
$user_line
worker_processes 2;
pid $ng/nginx.pid;
error_log $ng/error.log;
events { worker_connections 512; }
http {
  log_format bench '\$request_method \$status \$request_length \$bytes_sent \$uri';
  access_log $ng/access.log bench;
  client_body_temp_path $ng/tmp/body;
  proxy_temp_path $ng/tmp/proxy;
  fastcgi_temp_path $ng/tmp/fcgi;
  uwsgi_temp_path $ng/tmp/uwsgi;
  scgi_temp_path $ng/tmp/scgi;
  server {
    listen 127.0.0.1:$nport;
    client_max_body_size 1g;
    root $ng/www;
    dav_methods PUT;
    create_full_put_path on;
    dav_access user:rw group:r all:r;
  }
}
EOF
nginx -p "$ng" -e "$ng/error.log" -c "$ng/nginx.conf" -g 'daemon off;' >"$ng/out.log" 2>&1 &
pids+=($!)
gport=$(free_port)
git init -q --bare "$work/git/remote.git"
git daemon --export-all --enable=receive-pack --base-path="$work/git" --listen=127.0.0.1 \
	--port="$gport" --reuseaddr "$work/git" >"$work/git-daemon.log" 2>&1 &
pids+=($!)
wait_port "$nport"
wait_port "$gport"
STORE=http://127.0.0.1:$nport/store
GITURL=git://127.0.0.1:$gport/remote.git

# ---- the model and the repository --------------------------------------------
MODEL_ARGS=(--hidden 1024 --inter 2816 --layers 44 --heads 8 --kv-heads 2 --vocab 32000
	--dtype bf16 --shards 3 --seed 1)
say "synthesizing the model: ${MODEL_ARGS[*]}"
"$SYNTH" model "$work/m1" "${MODEL_ARGS[@]}" >/dev/null
model_bytes=$(du -sb "$work/m1" | cut -f1)
repo=$work/repo
"$S" init "$repo" --required-gates none >/dev/null
"$S" -C "$repo" key new ops --role operator --role proposer >/dev/null
say "proposing it"
"$S" -C "$repo" propose base "$work/m1" -m v1 --json >"$work/p1.json"
v1=$(jq -r .version "$work/p1.json")
"$S" -C "$repo" promote "$v1" --channel prod >/dev/null
"$S" -C "$repo" remote add origin "$GITURL" --chunks "$STORE" >/dev/null

# One push or pull: its --json, its wall time, and what nginx logged for it.
log=$ng/access.log
run() { # NAME DIR ARGS...
	local name=$1 dir=$2 t0 t1
	shift 2
	: >"$log"
	t0=$(date +%s.%N)
	"$S" -C "$dir" "$@" --concurrency "$CONC" --json >"$work/$name.json"
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}' >"$work/$name.time"
	awk '{n[$1]++; req[$1] += $3; resp[$1] += $4}
	     END {printf "%d %d %d %d %d\n", n["PUT"], req["PUT"], n["GET"], resp["GET"], NR}' \
		"$log" >"$work/$name.log"
}
clone() { # NAME DIR
	local name=$1 dir=$2 t0 t1
	: >"$log"
	t0=$(date +%s.%N)
	"$S" clone "$GITURL" "$dir" --chunks "$STORE" --concurrency "$CONC" --json >"$work/$name.json"
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}' >"$work/$name.time"
	awk '{n[$1]++; req[$1] += $3; resp[$1] += $4}
	     END {printf "%d %d %d %d %d\n", n["PUT"], req["PUT"], n["GET"], resp["GET"], NR}' \
		"$log" >"$work/$name.log"
}

say "push 1 (everything)"
run push1 "$repo" push origin
say "clone"
clone clone "$work/clone"

say "mutating 1% of the tensor bytes (sluice-synth mutate --percent 1 --seed 7)"
cp -r "$work/m1" "$work/m2"
"$SYNTH" mutate "$work/m2" --percent 1 --seed 7
"$S" -C "$repo" propose base "$work/m2" --onto prod -m v2 --json >"$work/p2.json"
v2=$(jq -r .version "$work/p2.json")
"$S" -C "$repo" promote "$v2" --channel prod >/dev/null
say "push 2 (after the 1% change)"
run push2 "$repo" push origin
say "pull into the clone"
run pull2 "$work/clone" pull origin
say "verifying the clone"
"$S" -C "$work/clone" verify >/dev/null
[ "$(git --git-dir="$repo" rev-parse refs/sluice/journal)" = \
	"$(git --git-dir="$work/clone" rev-parse refs/sluice/journal)" ] ||
	{ echo "remote.sh: the clone's journal differs" >&2; exit 1; }

# ---- the report --------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
row() { # LABEL NAME IDEAL_CHUNKS IDEAL_BYTES DIRECTION
	local label=$1 name=$2 ic=$3 ib=$4 dir=$5 j=$work/$2.json puts putb gets getb all
	read -r puts putb gets getb all <"$work/$name.log"
	local http chunks bytes
	http=$(jq '.requests.http' "$j")
	if [ "$dir" = up ]; then
		chunks=$(jq '.chunks.sent' "$j")
		bytes=$(jq '.chunks.bytes_sent' "$j")
		wire=$putb
	else
		chunks=$(jq '.chunks.received' "$j")
		bytes=$(jq '.chunks.bytes_received' "$j")
		wire=$getb
	fi
	printf '| %s | %s | %s | %s (%s) | %s | %s MiB | %s MiB | %s MiB | %s s |\n' \
		"$label" "$ic" "$chunks" "$http" "$all" "$(jq '.requests.git' "$j")" "$(mib "$ib")" \
		"$(mib "$bytes")" "$(mib "$wire")" "$(cat "$work/$name.time")"
}
c1=$(jq .stored.new_chunks "$work/p1.json")
b1=$(jq .stored.new_bytes "$work/p1.json")
c2=$(jq .stored.new_chunks "$work/p2.json")
b2=$(jq .stored.new_bytes "$work/p2.json")
total_chunks=$(jq .stored.chunks "$work/p2.json")
{
	echo "Model: $(mib "$model_bytes") MiB (sluice-synth model ${MODEL_ARGS[*]}),"
	echo "$total_chunks chunks; after the 1% change, $c2 chunks ($(mib "$b2") MiB) are new."
	echo "Concurrency $CONC; loopback; $(nproc) cores."
	echo
	echo "| transfer | new chunks (ideal) | chunks moved | HTTP requests (nginx log) | git connections | ideal bytes | chunk bytes moved | bytes on the wire (nginx) | wall time |"
	echo "|---|---|---|---|---|---|---|---|---|"
	row "push 1 (empty remote)" push1 "$c1" "$b1" up
	row "clone" clone "$c1" "$b1" down
	row "push 2 (1% changed)" push2 "$c2" "$b2" up
	row "pull 2 into the clone" pull2 "$c2" "$b2" down
} | tee "$work/report.md"
if [ -n "$markdown" ]; then
	cp "$work/report.md" "$markdown"
	say "wrote $markdown"
fi
