#!/usr/bin/env bash
# Side-by-side benchmark: our broker vs RabbitMQ (AMQP + MQTT plugin), Mosquitto and rumqttd,
# all on private loopback ports under one temp dir, driven by the same loadgen scenarios.
#
#   scripts/compare.sh [--quick] [--only ours|rabbitmq|mosquitto|rumqttd]... [--pin]
#
#   --quick   short runs and small counts (a smoke run, ~5 minutes with RabbitMQ)
#   --only B  run only broker B (repeatable)
#   --pin     pin each broker to CPU 1 and loadgen to CPU 0 (taskset); default: both share the cores
#
# Environment: DURATION (seconds per throughput run), CONNS (idle MQTT connections),
# MAX_CONNS (the most-connections row, default 50000), AMQP_CONNS (idle AMQP connections),
# BACKLOG_COUNT (persistent 1 KiB messages in the backlog scenario), LATENCY_RATE (msg/s of the
# fixed-rate latency runs), PORT_BASE (first port, default 25000), KEEP=1 (keep the temp dir).
#
# Installs what is missing (apt-get: rabbitmq-server mosquitto; cargo install rumqttd), starts
# every broker it needs itself, one at a time (restarting it on the same dirs where a row needs
# a fresh process or measures the restart), and stops each by pid (traps cover errors and ^C).
# Prints Markdown tables to stdout; progress and logs go to stderr and the temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
PIN=0
ONLY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --pin) PIN=1 ;;
        --only) shift; ONLY+=("${1:?--only needs a broker name}") ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#ONLY[@]} -eq 0 ] && ONLY=(ours rabbitmq mosquitto rumqttd)
wanted() { local b; for b in "${ONLY[@]}"; do [ "$b" = "$1" ] && return 0; done; return 1; }

if [ "$QUICK" = 1 ]; then
    DURATION=${DURATION:-3}; CONNS=${CONNS:-1000}; BACKLOG_COUNT=${BACKLOG_COUNT:-20000}
    MAX_CONNS=${MAX_CONNS:-3000}; AMQP_CONNS=${AMQP_CONNS:-500}
else
    DURATION=${DURATION:-10}; CONNS=${CONNS:-5000}; BACKLOG_COUNT=${BACKLOG_COUNT:-1000000}
    MAX_CONNS=${MAX_CONNS:-50000}; AMQP_CONNS=${AMQP_CONNS:-2000}
fi
LATENCY_RATE=${LATENCY_RATE:-10000}
PORT_BASE=${PORT_BASE:-25000}

log() { echo "[compare] $*" >&2; }

WORK=$(mktemp -d /tmp/compare.XXXXXX)
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
PIDS=()      # every process this script started, stopped in reverse order

stop_pid() {   # stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10)
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((${2:-10} * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    log "pid $pid still running after ${2:-10} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
forget_pid() {   # drop a stopped pid from PIDS, so cleanup never signals a reused pid
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
cleanup() {
    local i
    for ((i=${#PIDS[@]}-1; i>=0; i--)); do stop_pid "${PIDS[$i]}"; done
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {   # wait_port PORT SECONDS [PID]: until PORT accepts; fails early if PID exits
    local i
    for i in $(seq 1 $(($2 * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then log "pid $3 exited before port $1 opened"; return 1; fi
        sleep 0.1
    done
    log "port $1 did not open within $2 s"; return 1
}
now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))'; }

# ---------------------------------------------------------------- install what is missing
APT_PKGS=()
if wanted rabbitmq && ! [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then APT_PKGS+=(rabbitmq-server); fi
if wanted mosquitto && ! command -v mosquitto >/dev/null && ! [ -x /usr/sbin/mosquitto ]; then APT_PKGS+=(mosquitto); fi
if [ ${#APT_PKGS[@]} -gt 0 ]; then
    log "installing ${APT_PKGS[*]} (apt-get)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_PKGS[@]}" >&2
fi
if wanted rumqttd && ! command -v rumqttd >/dev/null; then
    log "installing rumqttd (cargo install rumqttd --no-default-features)"
    cargo install rumqttd --no-default-features -j2 >&2
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

log "building broker and loadgen (release)"
(cd "$ROOT" && cargo build --release -j2 -p broker -p bench >&2)
BROKER_BIN="$ROOT/target/release/broker"
LOADGEN_BIN="$ROOT/target/release/loadgen"

# Every idle connection is a descriptor in the broker and one in loadgen: MAX_CONNS plus room
# for files, in each process (each inherits this limit; our broker raises its soft limit to the
# hard one itself). Raising the hard limit needs root (CAP_SYS_RESOURCE); where it cannot be
# raised, the most-connections row holds what the limit allows and the table says so.
NOFILE=$((MAX_CONNS + 4096)); [ "$NOFILE" -lt 65536 ] && NOFILE=65536
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
echo "$NOFILE" >"$RESULTS/nofile"
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((MAX_CONNS + 1024)) ]; then
    log "open file limit $NOFILE (hard $(ulimit -Hn)) is below MAX_CONNS=$MAX_CONNS + 1024: that row will hold fewer"
fi
# Loopback has ~28k ephemeral ports per source address (ip_local_port_range); spread the
# most-connections row over one 127.0.0.x per 20,000 connections, plus one (at least two).
SOURCE_ADDRS="127.0.0.1-127.0.0.$(( MAX_CONNS / 20000 + 2 > 250 ? 250 : MAX_CONNS / 20000 + 2 ))"
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
if [ "$PIN" = 1 ]; then BROKER_PIN=(taskset -c 1); LOADGEN_PIN=(taskset -c 0); else BROKER_PIN=(); LOADGEN_PIN=(); fi

# ---------------------------------------------------------------- running scenarios
# BROKER names the broker under test; start_$BROKER starts it on its dirs (the same ones every
# time) and sets BPID (the process whose RSS and CPU are measured) and SPID (the process this
# script started and waits for; RabbitMQ's is the rabbitmq-server wrapper, BPID its Erlang VM).
BROKER=""; BPID=""; SPID=""; AMQP=""; MQTT=""; CPU_DONE=0; AMQP_UP_SECS=""
cpu_secs() { [ -n "$1" ] || { echo 0; return; }; awk -v hz="$CLK_TCK" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
add() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a + b}'; }
start_broker() {   # start_broker: start_$BROKER; false (logged) if it does not come up
    BPID=""; SPID=""; AMQP_UP_SECS=""
    "start_$BROKER" && return 0
    log "$BROKER did not start: $(tail -c 300 "$D/broker.log" 2>/dev/null)"
    return 1
}
stop_broker() {   # stop_broker [SECONDS]: SIGTERM, wait up to SECONDS (30) for the exit; keeps its CPU time
    [ -n "$BPID" ] || return 0
    CPU_DONE=$(add "$CPU_DONE" "$(cpu_secs "$BPID")")
    stop_pid "$BPID" "${1:-30}"
    [ "$SPID" = "$BPID" ] || stop_pid "$SPID" 30
    forget_pid "$BPID"; forget_pid "$SPID"
    BPID=""; SPID=""
}
fresh_broker() {   # fresh_broker NAME: restart before row NAME; an error cell for NAME if it fails
    stop_broker
    start_broker && return 0
    printf '{"error": "broker did not restart"}\n' >"$RESULTS/$BROKER.$1.json"
    return 1
}
loadgen() {   # loadgen NAME ARGS...: JSON report to $RESULTS/$BROKER.NAME.json, never fails the script
    local name=$1; shift
    local out="$RESULTS/$BROKER.$name.json" cpu0
    log "$BROKER: $name"
    cpu0=$(cpu_secs "$BPID")
    if ! timeout $((DURATION * 4 + 300)) "${LOADGEN_PIN[@]}" "$LOADGEN_BIN" "$@" --json --quiet \
            >"$out" 2>"$RESULTS/$BROKER.$name.err"; then
        log "$BROKER: $name failed: $(tail -c 300 "$RESULTS/$BROKER.$name.err")"
        printf '{"error": %s}\n' "$(tail -c 200 "$RESULTS/$BROKER.$name.err" | json_str)" >"$out"
    fi
    # The broker's CPU time (user + system) spent during this run.
    echo "{\"cpu_secs\": $(add "$(cpu_secs "$BPID")" "-$cpu0")}" >"$RESULTS/$BROKER.$name.cpu.json"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
nofile_of() { awk '/^Max open files/ {print $4}' "/proc/$1/limits" 2>/dev/null || echo 0; }

# Idle rows first, each on a freshly started broker: they measure VmRSS growth, and memory an
# earlier row freed stays in the allocator, where the next row would reuse it unseen.
run_idle() {   # run_idle mqtt|amqp|both
    local first=1
    if [ "$1" != amqp ]; then
        loadgen mqtt_idle conns --protocol mqtt --addr "$MQTT" --count "$CONNS" --rate 2000 --pid "$BPID"
        first=0
        if [ "$BROKER" = rabbitmq ]; then
            printf '{"skipped": "not run with %s connections: at ~200 KiB each they would need ~%s GiB"}\n' \
                "$MAX_CONNS" "$(awk -v n="$MAX_CONNS" 'BEGIN {printf "%.1f", n * 200 / 1048576}')" \
                >"$RESULTS/$BROKER.mqtt_idle_max.json"
        elif fresh_broker mqtt_idle_max; then
            echo "{\"broker_nofile\": $(nofile_of "$BPID")}" >"$RESULTS/$BROKER.mqtt_idle_max.limits.json"
            loadgen mqtt_idle_max conns --protocol mqtt --addr "$MQTT" --count "$MAX_CONNS" --rate 2000 \
                --pid "$BPID" --source-addrs "$SOURCE_ADDRS"
        fi
    fi
    if [ "$1" != mqtt ]; then
        if [ "$first" = 1 ] || fresh_broker amqp_idle; then
            loadgen amqp_idle conns --protocol amqp --addr "$AMQP" --count "$AMQP_CONNS" --rate 2000 --pid "$BPID"
        fi
    fi
}
run_amqp() {
    loadgen amqp_transient amqp --addr "$AMQP" --size 100 --duration "$DURATION"
    loadgen amqp_transient_latency amqp --addr "$AMQP" --size 100 --duration "$DURATION" --rate "$LATENCY_RATE"
    loadgen amqp_persistent amqp --addr "$AMQP" --size 1024 --persistent --confirm 1000 --duration "$DURATION"
    loadgen amqp_competing amqp --addr "$AMQP" --producers 2 --consumers 4 --size 1024 --persistent \
        --confirm 1000 --duration "$DURATION"
}
run_backlog() {   # publish BACKLOG_COUNT persistent 1 KiB messages, no consumer; RSS; restart; drain
    local t0
    # On a freshly started broker: its RSS is then what holding the backlog costs, not also
    # what the rows before left in the allocator.
    fresh_broker backlog_fill || return 0
    loadgen backlog_fill amqp --addr "$AMQP" --consumers 0 --size 1024 --persistent --confirm 1000 \
        --count "$BACKLOG_COUNT" --queue-prefix backlog
    sleep 2
    echo "{\"rss_kib\": $(rss_kib "$BPID")}" >"$RESULTS/$BROKER.backlog_rss.json"
    # Restart on the same data: SIGTERM, wait for the exit, start again, time until AMQP accepts.
    log "$BROKER: backlog_restart"
    stop_broker 300   # a clean stop may take a while with a backlog
    t0=$(now)
    if start_broker; then
        echo "{\"restart_secs\": ${AMQP_UP_SECS:-$(secs_since "$t0")}, \"rss_kib\": $(rss_kib "$BPID")}" \
            >"$RESULTS/$BROKER.backlog_restart.json"
        loadgen backlog_drain amqp --addr "$AMQP" --producers 0 --consumers 1 --persistent \
            --expect "$BACKLOG_COUNT" --queue-prefix backlog --drain-timeout 10
    else
        printf '{"error": %s}\n' "$(tail -c 200 "$D/broker.log" 2>/dev/null | json_str)" \
            >"$RESULTS/$BROKER.backlog_restart.json"
        printf '{"error": "broker did not restart"}\n' >"$RESULTS/$BROKER.backlog_drain.json"
    fi
}
run_mqtt() {
    loadgen mqtt_qos0 mqtt --addr "$MQTT" --size 100 --qos 0 --duration "$DURATION"
    loadgen mqtt_qos0_latency mqtt --addr "$MQTT" --size 100 --qos 0 --duration "$DURATION" --rate "$LATENCY_RATE"
    loadgen mqtt_qos1 mqtt --addr "$MQTT" --size 100 --qos 1 --duration "$DURATION"
    loadgen mqtt_fanout mqtt --addr "$MQTT" --size 100 --qos 0 --consumers 50 --duration "$DURATION"
    loadgen mqtt_qos2 mqtt --addr "$MQTT" --size 100 --qos 2 --duration "$DURATION"
    loadgen mqtt_shared mqtt --addr "$MQTT" --size 100 --qos 1 --consumers 4 --shared bench \
        --duration "$DURATION"
}
finish_broker() {   # the broker's CPU time over all its runs (every process of it), then stop it
    local total
    total=$(add "$CPU_DONE" "$( [ -n "$BPID" ] && cpu_secs "$BPID" || echo 0)")
    echo "{\"cpu_secs\": $total}" >"$RESULTS/$BROKER.cpu.json"
    stop_broker
    CPU_DONE=0
}

# ---------------------------------------------------------------- ours
start_ours() {
    local t0; t0=$(now)
    RUST_LOG=warn "${BROKER_PIN[@]}" "$BROKER_BIN" --data-dir "$D/data" --amqp-listen "$AMQP" \
        --mqtt-listen "$MQTT" --mqtt-ws-listen "127.0.0.1:$((P + 2))" "${EXTRA[@]}" >>"$D/broker.log" 2>&1 &
    BPID=$!; SPID=$BPID; PIDS+=("$BPID")
    wait_port "$P" 600 "$BPID" || return 1
    AMQP_UP_SECS=$(secs_since "$t0")
    wait_port "$((P + 1))" 30 "$BPID"
}
if wanted ours; then
    BROKER=ours; D="$WORK/ours"; mkdir -p "$D"
    P=$((PORT_BASE + 1)); AMQP="127.0.0.1:$P"; MQTT="127.0.0.1:$((P + 1))"
    EXTRA=()
    if "$BROKER_BIN" --help | grep -q -- --http-listen; then EXTRA=(--http-listen "127.0.0.1:$((P + 3))"); fi
    "$BROKER_BIN" --version >"$RESULTS/ours.version" 2>&1 || echo "broker $(git -C "$ROOT" rev-parse --short HEAD)" >"$RESULTS/ours.version"
    if start_broker; then
        run_idle both; run_mqtt; run_amqp; run_backlog
    else
        printf '{"error": "broker did not start"}\n' >"$RESULTS/$BROKER.mqtt_idle.json"
    fi
    finish_broker
fi

# ---------------------------------------------------------------- RabbitMQ (run as the current user, private node)
start_rabbitmq() {   # the RABBITMQ_* environment is exported below, so a restart reuses every dir
    local t0 beam i; t0=$(now)
    rm -f "$RABBITMQ_PID_FILE"
    "${BROKER_PIN[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server >>"$D/broker.log" 2>&1 &
    SPID=$!; BPID=$SPID; PIDS+=("$SPID")
    wait_port "$P" 600 "$SPID" || return 1
    AMQP_UP_SECS=$(secs_since "$t0")
    wait_port "$((P + 1))" 60 "$SPID" || return 1
    # rabbitmq-server is a shell script; the memory and CPU that matter are the Erlang VM's.
    for i in $(seq 1 50); do [ -s "$RABBITMQ_PID_FILE" ] && break; sleep 0.1; done
    beam=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || true)
    if [ -n "$beam" ] && [ "$beam" != "$SPID" ]; then PIDS+=("$beam"); BPID=$beam; fi
}
if wanted rabbitmq; then
    BROKER=rabbitmq; D="$WORK/rabbitmq"; mkdir -p "$D/mnesia" "$D/log"
    P=$((PORT_BASE + 11)); AMQP="127.0.0.1:$P"; MQTT="127.0.0.1:$((P + 1))"
    EPMD_PORT=$((P + 3))
    cat >"$D/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$P
mqtt.listeners.tcp.default = 127.0.0.1:$((P + 1))
mqtt.allow_anonymous = true
# the same window our loadgen and the other brokers get (the plugin's default is 10)
mqtt.prefetch = 1000
loopback_users = none
CONF
    echo '[rabbitmq_mqtt].' >"$D/enabled_plugins"
    export ERL_EPMD_PORT=$EPMD_PORT
    export RABBITMQ_NODENAME="bench-$$@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$P
    export RABBITMQ_DIST_PORT=$((P + 2)) RABBITMQ_MNESIA_BASE="$D/mnesia" RABBITMQ_LOG_BASE="$D/log"
    export RABBITMQ_CONFIG_FILE="$D/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$D/enabled_plugins"
    export RABBITMQ_PID_FILE="$D/rabbit.pid" RABBITMQ_ADVANCED_CONFIG_FILE="$D/advanced.config"
    ORIG_HOME=$HOME; export HOME="$D"   # the Erlang cookie lives here, not in the real home
    echo "[]." >"$D/advanced.config"
    # Erlang schedulers busy-wait by default, which steals the shared cores from the load
    # generator; RabbitMQ's docs recommend turning that off when cores are shared.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
    epmd -port "$EPMD_PORT" >"$D/epmd.log" 2>&1 &
    PIDS+=("$!")
    dpkg-query -W -f='RabbitMQ ${Version}' rabbitmq-server >"$RESULTS/rabbitmq.version" 2>/dev/null || true
    if start_broker; then
        run_idle both; run_mqtt; run_amqp; run_backlog
    else
        printf '{"error": "broker did not start"}\n' >"$RESULTS/$BROKER.mqtt_idle.json"
    fi
    finish_broker
    unset RABBITMQ_NODENAME RABBITMQ_NODE_PORT ERL_EPMD_PORT; export HOME=$ORIG_HOME
fi

# ---------------------------------------------------------------- Mosquitto
start_mosquitto() {
    "${BROKER_PIN[@]}" "$MOSQUITTO" -c "$D/mosquitto.conf" >>"$D/broker.log" 2>&1 &
    BPID=$!; SPID=$BPID; PIDS+=("$BPID")
    wait_port "$P" 30 "$BPID"
}
if wanted mosquitto; then
    BROKER=mosquitto; D="$WORK/mosquitto"; mkdir -p "$D"
    P=$((PORT_BASE + 21)); MQTT="127.0.0.1:$P"
    # max_connections -1 (its default, spelled out): no limit but the open file limit, which
    # Mosquitto inherits from this script's ulimit.
    cat >"$D/mosquitto.conf" <<CONF
listener $P 127.0.0.1
max_connections -1
allow_anonymous true
persistence false
# no silent drops of queued messages, and the same in-flight window as the others
max_queued_messages 0
max_inflight_messages 1000
CONF
    "$MOSQUITTO" -h 2>/dev/null | head -1 >"$RESULTS/mosquitto.version" || true
    if start_broker; then
        run_idle mqtt; run_mqtt
    else
        printf '{"error": "broker did not start"}\n' >"$RESULTS/$BROKER.mqtt_idle.json"
    fi
    finish_broker
fi

# ---------------------------------------------------------------- rumqttd
start_rumqttd() {
    "${BROKER_PIN[@]}" rumqttd -q -c "$D/rumqttd.toml" >>"$D/broker.log" 2>&1 &
    BPID=$!; SPID=$BPID; PIDS+=("$BPID")
    wait_port "$P" 30 "$BPID"
}
if wanted rumqttd; then
    BROKER=rumqttd; D="$WORK/rumqttd"; mkdir -p "$D"
    P=$((PORT_BASE + 31)); MQTT="127.0.0.1:$P"
    cat >"$D/rumqttd.toml" <<CONF
id = 0

[router]
id = 0
max_connections = 60000
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:$P"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 1000
    dynamic_filters = true

[console]
listen = "127.0.0.1:$((P + 1))"
CONF
    rumqttd --version >"$RESULTS/rumqttd.version" 2>&1 || true
    if start_broker; then
        run_idle mqtt; run_mqtt
    else
        printf '{"error": "broker did not start"}\n' >"$RESULTS/$BROKER.mqtt_idle.json"
    fi
    finish_broker
fi

# ---------------------------------------------------------------- the table
python3 "$ROOT/scripts/compare_table.py" "$RESULTS" "$DURATION" "$CONNS" "$BACKLOG_COUNT" "$LATENCY_RATE" "$PIN" \
    "$MAX_CONNS" "$AMQP_CONNS"
