#!/usr/bin/env bash
# Side-by-side benchmark: a local 3-node raftlimit cluster against two
# redis-server instances (appendfsync everysec and always) on the same
# machine, driven by redis-benchmark. Prints a Markdown table and rewrites the
# generated part of docs/benchmarks.md (between the bench:begin/bench:end
# markers). Method and interpretation: docs/benchmarks.md.
#
# Environment:
#   BENCH_TARGETS        all (default) | redis | raftlimit
#   BENCH_SECONDS        approximate seconds per measured run (default 3)
#   BENCH_KEYSPACE       redis-benchmark -r (default 100000)
#   BENCH_READY_TIMEOUT  seconds to wait for the cluster to elect a leader (default 30)
#   BENCH_RUN_TIMEOUT    hard limit in seconds for one redis-benchmark run (default 60)
#   BENCH_DOC            document to update (default docs/benchmarks.md)
#   BENCH_NO_BUILD=1     use the existing raftlimit-server and raftlimit-cluster binaries, do not run cargo
#   BENCH_KEEP_TMP=1     keep the temporary directory (configs, logs, data)
#
# Everything it starts listens on 127.0.0.1 only, and only the processes it
# started (by PID) are stopped on exit.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGETS=${BENCH_TARGETS:-all}
RUN_SECS=${BENCH_SECONDS:-3}
KEYSPACE=${BENCH_KEYSPACE:-100000}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-30}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-60}
DOC=${BENCH_DOC:-docs/benchmarks.md}
NO_BUILD=${BENCH_NO_BUILD:-0}
KEEP_TMP=${BENCH_KEEP_TMP:-0}

# Benchmark matrix. Each entry is "connections pipeline".
CONFIGS=("1 1" "10 1" "50 1" "10 16" "50 16")
TESTS=(set get incr)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

case "$TARGETS" in
  all) RUN_RAFT=1; RUN_REDIS=1 ;;
  redis) RUN_RAFT=0; RUN_REDIS=1 ;;
  raftlimit) RUN_RAFT=1; RUN_REDIS=0 ;;
  *) die "BENCH_TARGETS must be all, redis or raftlimit (got '$TARGETS')" ;;
esac
for v in RUN_SECS KEYSPACE READY_TIMEOUT RUN_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$v must be a number (got '${!v}')"
done

# ---------------------------------------------------------------------------
# Setup: environment, dependencies, build.

# shellcheck source=scripts/env.sh
source scripts/env.sh
bash scripts/ensure-deps.sh redis
for tool in redis-server redis-cli redis-benchmark timeout awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

BIN="$RAFTLIMIT_BIN_DIR/raftlimit-server"
CLUSTER_BIN="$RAFTLIMIT_BIN_DIR/raftlimit-cluster"
if [ "$RUN_RAFT" = 1 ]; then
  if [ "$NO_BUILD" != 1 ]; then
    log "building raftlimit-server and raftlimit-cluster (release)"
    cargo build --release -p raftlimit-server -p raftlimit-launcher
  fi
  for b in "$BIN" "$CLUSTER_BIN"; do
    [ -x "$b" ] || die "$b not found (build it with: cargo build --release -p raftlimit-server -p raftlimit-launcher)"
  done
fi

# The numbers only mean something on an otherwise idle machine: sample how
# busy the CPUs are (steal included) before anything is started.
cpu_busy_pct() {
  local a b
  a=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]
    if (d > 0) printf "%.0f\n", 100 * (y[1] - x[1]) / d; else print 0 }'
}
BUSY_PCT=$(cpu_busy_pct 2>/dev/null || echo 0)
LOADAVG=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo unknown)
BUSY_WARNING=""
if [ "$BUSY_PCT" -gt 20 ]; then
  BUSY_WARNING="Other processes kept the CPUs ${BUSY_PCT}% busy just before the run (1-minute load average $LOADAVG on $(nproc) CPUs); these numbers are not representative. Rerun on an idle machine."
  printf 'bench: warning: %s\n' "$BUSY_WARNING" >&2
fi

# ---------------------------------------------------------------------------
# Process bookkeeping and cleanup.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/raftlimit-bench.XXXXXX")
FS_TYPE=$(df -PT "$WORK" 2>/dev/null | awk 'NR == 2 { print $2 }' || true)
PIDS=()

stop_started() {
  local pid deadline alive
  [ ${#PIDS[@]} -gt 0 ] || return 0
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 10))
  while :; do
    alive=0
    for pid in "${PIDS[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    if [ "$alive" = 0 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      printf 'bench: pid %s did not stop after SIGTERM, sending SIGKILL\n' "$pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_started
  if [ "$KEEP_TMP" = 1 ]; then
    printf 'bench: kept %s\n' "$WORK" >&2
  else
    rm -rf -- "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints N distinct free loopback ports. Ports are taken below the kernel's
# ephemeral range when possible, so that outgoing connections (the cluster's
# own peer connections, the benchmark's clients) cannot take them between
# selection and bind.
free_ports() {
  local n=$1
  if command -v python3 >/dev/null; then
    python3 - "$n" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, _hi = map(int, f.read().split())
except (OSError, ValueError):
    lo = 32768
held = []
candidates = list(range(10000, lo)) if lo > 11000 else []
random.shuffle(candidates)
for port in candidates:
    if len(held) == n:
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
while len(held) < n:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
  else
    local ports=() p
    while [ ${#ports[@]} -lt "$n" ]; do
      p=$((20000 + RANDOM % 12000))
      [[ " ${ports[*]} " == *" $p "* ]] && continue
      # A refused connection means nothing listens there.
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ports+=("$p"); fi
    done
    echo "${ports[*]}"
  fi
}

rcli() { # rcli PORT ARGS... -- bounded redis-cli call
  local port=$1; shift
  timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null | tr -d '\r'
}

# ---------------------------------------------------------------------------
# raftlimit cluster.

LEADER_PORT="" FOLLOWER_PORT="" LEADER_ID="" FOLLOWER_ID=""

# The launcher (raftlimit-cluster) reserves the ports, writes the configs,
# waits until every node is ready and prints the cluster as one JSON line;
# it stops every node by PID on SIGTERM (stop_started) or when its stdin
# closes.
start_cluster() {
  local info addrs i
  coproc LAUNCHER { "$CLUSTER_BIN" up --json --control --dir "$WORK/cluster" --name raftlimit-bench \
    --server-bin "$BIN" --ready-timeout "${READY_TIMEOUT%.*}" 2>"$WORK/launcher.log"; }
  PIDS+=("$LAUNCHER_PID")
  log "raftlimit cluster starting, waiting up to ${READY_TIMEOUT}s for every node and a leader"
  if ! read -r info <&"${LAUNCHER[0]}"; then
    cat "$WORK/launcher.log" >&2
    die "raftlimit cluster failed to start"
  fi
  LEADER_ID=$(grep -o '"leader":[0-9]*' <<<"$info" | head -n 1 | cut -d: -f2)
  mapfile -t addrs < <(grep -o '"addr":"[^"]*"' <<<"$info" | cut -d'"' -f4)
  [ -n "$LEADER_ID" ] && [ ${#addrs[@]} = 3 ] || die "raftlimit cluster has no leader: $info"
  LEADER_PORT=${addrs[$((LEADER_ID - 1))]##*:}
  for i in 1 2 3; do
    if [ "$i" != "$LEADER_ID" ]; then FOLLOWER_ID=$i; break; fi
  done
  FOLLOWER_PORT=${addrs[$((FOLLOWER_ID - 1))]##*:}
  log "raftlimit leader is node $LEADER_ID (port $LEADER_PORT); follower node $FOLLOWER_ID (port $FOLLOWER_PORT)"
}

# ---------------------------------------------------------------------------
# redis-server instances.

REDIS_EVERYSEC_PORT="" REDIS_ALWAYS_PORT=""

start_redis() { # start_redis NAME FSYNC PORT
  local name=$1 fsync=$2 port=$3 pid deadline
  mkdir -p "$WORK/$name"
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
    --dir "$WORK/$name" --save '' --appendonly yes --appendfsync "$fsync" \
    --daemonize no --logfile '' >"$WORK/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  deadline=$((SECONDS + 10))
  until [ "$(rcli "$port" PING || true)" = PONG ]; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$WORK/$name.log" >&2 || true
      die "redis-server ($name) did not start on port $port"
    fi
    sleep 0.2
  done
}

start_redis_pair() {
  local ports
  read -r -a ports <<<"$(free_ports 2)"
  [ ${#ports[@]} -eq 2 ] || die "could not find 2 free loopback ports"
  REDIS_EVERYSEC_PORT=${ports[0]}
  REDIS_ALWAYS_PORT=${ports[1]}
  start_redis redis-everysec everysec "$REDIS_EVERYSEC_PORT"
  start_redis redis-always always "$REDIS_ALWAYS_PORT"
  log "redis-server everysec on port $REDIS_EVERYSEC_PORT, always on port $REDIS_ALWAYS_PORT"
}

# ---------------------------------------------------------------------------
# Measurement.

declare -A PORT_OF LABEL_OF RES SKIP
TARGET_LIST=()
NOTES=()
[ -z "$BUSY_WARNING" ] || NOTES+=("**Warning:** $BUSY_WARNING")
if [ "$FS_TYPE" = tmpfs ]; then
  NOTES+=("**Warning:** the data directories were on tmpfs, where fsync costs nothing; set TMPDIR to a disk-backed directory.")
  printf 'bench: warning: %s is on tmpfs; fsync costs nothing there (set TMPDIR to a disk-backed directory)\n' "$WORK" >&2
fi

add_target() { # add_target ID PORT LABEL
  TARGET_LIST+=("$1")
  PORT_OF[$1]=$2
  LABEL_OF[$1]=$3
}

# Checks that a target answers the command with a non-error reply before it is
# benchmarked: redis-benchmark counts error replies as completed requests only
# until it aborts, which would make the numbers meaningless.
precheck() { # precheck TARGET
  local t=$1 port=${PORT_OF[$1]} test reply
  for test in "${TESTS[@]}"; do
    case "$test" in
      set) reply=$(rcli "$port" --no-raw SET key:bench-check 1 || true) ;;
      get) reply=$(rcli "$port" --no-raw GET key:bench-check || true) ;;
      incr) reply=$(rcli "$port" --no-raw INCR counter:bench-check || true) ;;
    esac
    if [ -z "$reply" ] || [[ $reply == "(error)"* ]]; then
      SKIP["$t|$test"]=1
      NOTES+=("${LABEL_OF[$t]} does not answer ${test^^} (reply: ${reply:-no reply}); its ${test^^} rows are not measured.")
      log "skipping ${test^^} on ${LABEL_OF[$t]}: ${reply:-no reply}"
    fi
  done
}

# Runs redis-benchmark once and prints "rps p50 p95 p99", or nothing.
bench_once() { # bench_once PORT TEST CONNS PIPELINE N ERRFILE
  local port=$1 test=$2 c=$3 p=$4 n=$5 err=$6
  {
    timeout --foreground "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" \
      -t "$test" -n "$n" -c "$c" -P "$p" -r "$KEYSPACE" --csv 2>"$err" &&
      echo 0 >"$err.rc" || echo $? >"$err.rc"
  } | tr -d '\r' |
    awk -F, -v want="${test^^}" '
      { for (i = 1; i <= NF; i++) gsub(/^"|"$/, "", $i) }
      $1 == want && $2 + 0 > 0 { print $2, $5, $6, $7; exit }'
}

RUN_NO=0
TOTAL_RUNS=0

measure() { # measure TARGET TEST CONNS PIPELINE
  local t=$1 test=$2 c=$3 p=$4 port=${PORT_OF[$1]} key="$1|$2|$3|$4"
  local err="$WORK/bench-$t-$test-$c-$p.err" probe_n n out rps
  RUN_NO=$((RUN_NO + 1))
  if [ -n "${SKIP["$t|$test"]:-}" ]; then
    RES[$key]=skip
    return
  fi
  # Calibrate: a short run sizes the measured run to about RUN_SECS seconds,
  # so slow fsync-bound targets and fast in-memory ones both finish quickly.
  probe_n=$((c * p * 4 > 200 ? c * p * 4 : 200))
  out=$(bench_once "$port" "$test" "$c" "$p" "$probe_n" "$err" || true)
  if [ -n "$out" ]; then
    rps=${out%% *}
    n=$(awk -v r="$rps" -v s="$RUN_SECS" -v lo=$((c * p * 10 > 1000 ? c * p * 10 : 1000)) \
      'BEGIN { n = int(r * s); if (n < lo) n = lo; if (n > 5000000) n = 5000000; print n }')
    out=$(bench_once "$port" "$test" "$c" "$p" "$n" "$err" || true)
  fi
  if [ -z "$out" ]; then
    local why
    if [ "$(cat "$err.rc" 2>/dev/null)" = 124 ]; then
      why="redis-benchmark did not finish within ${RUN_TIMEOUT}s"
    else
      why=$(grep -v '^WARNING' "$err" 2>/dev/null | tail -n 1 | tr -d '\r' | cut -c1-160)
      why=${why:-redis-benchmark printed no result (exit status $(cat "$err.rc" 2>/dev/null || echo unknown))}
    fi
    RES[$key]=error
    NOTES+=("${LABEL_OF[$t]} ${test^^} -c $c -P $p failed: $why")
    printf '  [%d/%d] %-18s %-4s c=%-2s P=%-2s  FAILED (see notes)\n' "$RUN_NO" "$TOTAL_RUNS" "${LABEL_OF[$t]}" "${test^^}" "$c" "$p" >&2
    return
  fi
  RES[$key]=$out
  read -r rps _ <<<"$out"
  printf '  [%d/%d] %-18s %-4s c=%-2s P=%-2s n=%-8s %12.0f ops/s\n' "$RUN_NO" "$TOTAL_RUNS" "${LABEL_OF[$t]}" "${test^^}" "$c" "$p" "$n" "$rps" >&2
}

# ---------------------------------------------------------------------------
# Report.

fmt_int() { # thousands separators, no locale dependency
  awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); o = ""
    while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
    print s o }'
}

cell_ops() { # cell_ops KEY
  local v=${RES[$1]:-}
  case "$v" in
    "") echo "–" ;;
    skip) echo "n/a" ;;
    error) echo "error" ;;
    *) fmt_int "${v%% *}" ;;
  esac
}

cell_lat() { # cell_lat KEY
  local v=${RES[$1]:-} rps p50 p95 p99
  case "$v" in
    "") echo "–" ;;
    skip) echo "n/a" ;;
    error) echo "error" ;;
    *) read -r rps p50 p95 p99 <<<"$v"; echo "$p50 / $p95 / $p99" ;;
  esac
}

cell_ratio() { # cell_ratio KEY_NUM KEY_DEN
  local a=${RES[$1]:-} b=${RES[$2]:-}
  if [[ $a =~ ^[0-9] ]] && [[ $b =~ ^[0-9] ]]; then
    awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN { if (b > 0) printf "%.2f×\n", a / b; else print "–" }'
  else
    echo "–"
  fi
}

render_table() {
  local t hdr sep test cfg c p row
  local ratios=0
  [ "$RUN_RAFT" = 1 ] && [ "$RUN_REDIS" = 1 ] && ratios=1
  hdr="| Test | Conns | Pipeline |"
  sep="|---|---:|---:|"
  for t in "${TARGET_LIST[@]}"; do
    hdr+=" ${LABEL_OF[$t]} ops/s | ${LABEL_OF[$t]} p50 / p95 / p99 ms |"
    sep+="---:|---:|"
  done
  if [ "$ratios" = 1 ]; then
    hdr+=" leader ÷ always | leader ÷ everysec |"
    sep+="---:|---:|"
  fi
  echo "$hdr"
  echo "$sep"
  for test in "${TESTS[@]}"; do
    for cfg in "${CONFIGS[@]}"; do
      read -r c p <<<"$cfg"
      row="| ${test^^} | $c | $p |"
      for t in "${TARGET_LIST[@]}"; do
        row+=" $(cell_ops "$t|$test|$c|$p") | $(cell_lat "$t|$test|$c|$p") |"
      done
      if [ "$ratios" = 1 ]; then
        row+=" $(cell_ratio "leader|$test|$c|$p" "always|$test|$c|$p") | $(cell_ratio "leader|$test|$c|$p" "everysec|$test|$c|$p") |"
      fi
      echo "$row"
    done
  done
}

git_commit() {
  local rev
  if rev=$(git rev-parse --short=12 HEAD 2>/dev/null); then
    if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
      rev+=" (with uncommitted changes)"
    fi
    echo "$rev"
  else
    echo "none (repository has no commits)"
  fi
}

render_section() { # render_section TABLE_FILE
  local table=$1 cpu targets note
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
  case "$TARGETS" in
    all) targets="raftlimit (leader, follower) and redis-server (everysec, always)" ;;
    redis) targets="redis-server (everysec, always) only; raftlimit was not measured in this run" ;;
    raftlimit) targets="raftlimit (leader, follower) only; redis-server was not measured in this run" ;;
  esac
  echo "<!-- bench:begin -->"
  echo "<!-- Generated by scripts/bench.sh; edits between these markers are overwritten. -->"
  echo "## Results"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| Date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| Targets | $targets |"
  echo "| CPUs (\`nproc\`) | $(nproc)${cpu:+ × $cpu} |"
  echo "| Kernel | $(uname -sr) |"
  echo "| Other CPU use at start | ${BUSY_PCT}% busy over 1 s before the servers started (1-minute load average $LOADAVG) |"
  echo "| Data directories | ${FS_TYPE:-unknown} filesystem |"
  echo "| redis-server | $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') |"
  echo "| redis-benchmark | $(redis-benchmark --version | awk '{ print $2 }') |"
  echo "| raftlimit commit | $(git_commit) |"
  echo "| Parameters | \`-r $KEYSPACE\`, 3-byte values, each run sized to about ${RUN_SECS} s after a calibration run |"
  echo
  echo "\`free -g\`:"
  echo
  echo '```'
  free -g
  echo '```'
  echo
  echo "Throughput in operations per second; latencies in milliseconds as reported by redis-benchmark."
  echo
  cat "$table"
  if [ ${#NOTES[@]} -gt 0 ]; then
    echo
    echo "Notes from this run:"
    echo
    for note in "${NOTES[@]}"; do echo "- $note"; done
  fi
  echo "<!-- bench:end -->"
}

update_doc() { # update_doc SECTION_FILE
  local section=$1 tmp
  mkdir -p "$(dirname "$DOC")"
  tmp=$(mktemp "$WORK/doc.XXXXXX")
  if [ -f "$DOC" ] && grep -q '<!-- bench:begin -->' "$DOC" && grep -q '<!-- bench:end -->' "$DOC"; then
    awk -v sec="$section" '
      /<!-- bench:begin -->/ { while ((getline line < sec) > 0) print line; skip = 1; next }
      /<!-- bench:end -->/ { skip = 0; next }
      !skip { print }' "$DOC" >"$tmp"
  else
    if [ -f "$DOC" ]; then cat "$DOC"; echo; else printf '# Benchmarks\n\n'; fi >"$tmp"
    cat "$section" >>"$tmp"
  fi
  cat "$tmp" >"$DOC"
}

# ---------------------------------------------------------------------------
# Main.

if [ "$RUN_RAFT" = 1 ]; then
  start_cluster
  add_target leader "$LEADER_PORT" "raftlimit leader"
  add_target follower "$FOLLOWER_PORT" "raftlimit follower"
fi
if [ "$RUN_REDIS" = 1 ]; then
  start_redis_pair
  add_target everysec "$REDIS_EVERYSEC_PORT" "redis everysec"
  add_target always "$REDIS_ALWAYS_PORT" "redis always"
fi

for t in "${TARGET_LIST[@]}"; do precheck "$t"; done

TOTAL_RUNS=$((${#CONFIGS[@]} * ${#TESTS[@]} * ${#TARGET_LIST[@]}))
log "running $TOTAL_RUNS benchmarks (about ${RUN_SECS}s each)"
START=$SECONDS
# Targets are interleaved per (config, test) so slow drift on the machine
# affects them alike; SET runs before GET so GETs find keys.
for cfg in "${CONFIGS[@]}"; do
  read -r c p <<<"$cfg"
  for test in "${TESTS[@]}"; do
    for t in "${TARGET_LIST[@]}"; do
      measure "$t" "$test" "$c" "$p"
    done
  done
done
log "benchmarks finished in $((SECONDS - START))s"

if [ "$RUN_RAFT" = 1 ]; then
  role=$(rcli "$LEADER_PORT" INFO replication | awk -F: '$1=="role"{print $2}' || true)
  if [ "$role" != master ]; then
    NOTES+=("Node $LEADER_ID was no longer the Raft leader at the end of the run (role: ${role:-unknown}); leader and follower numbers may include a failover.")
  fi
fi

render_table >"$WORK/table.md"
render_section "$WORK/table.md" >"$WORK/section.md"

mkdir -p bench-results
stamp=$(date -u '+%Y%m%dT%H%M%SZ')
{
  echo "target,test,connections,pipeline,rps,p50_ms,p95_ms,p99_ms"
  for t in "${TARGET_LIST[@]}"; do
    for cfg in "${CONFIGS[@]}"; do
      read -r c p <<<"$cfg"
      for test in "${TESTS[@]}"; do
        v=${RES["$t|$test|$c|$p"]:-}
        if [[ $v =~ ^[0-9] ]]; then
          echo "$t,${test^^},$c,$p,${v// /,}"
        else
          echo "$t,${test^^},$c,$p,${v:-none},,,"
        fi
      done
    done
  done
} >"bench-results/bench-$stamp.csv"
cp "$WORK/section.md" "bench-results/bench-$stamp.md"

update_doc "$WORK/section.md"

echo
cat "$WORK/table.md"
if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  for note in "${NOTES[@]}"; do echo "- $note"; done
fi
echo
log "updated $DOC; raw results in bench-results/bench-$stamp.csv"
