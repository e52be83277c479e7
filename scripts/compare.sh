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
# BACKLOG_COUNT (persistent 1 KiB messages in the backlog scenario), LATENCY_RATE (msg/s of the
# fixed-rate latency runs), PORT_BASE (first port, default 25000), KEEP=1 (keep the temp dir).
#
# Installs what is missing (apt-get: rabbitmq-server mosquitto; cargo install rumqttd), starts
# every broker it needs itself, one at a time, and stops each by pid (traps cover errors and ^C).
# Prints a Markdown table to stdout; progress and logs go to stderr and the temp dir.
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
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#ONLY[@]} -eq 0 ] && ONLY=(ours rabbitmq mosquitto rumqttd)
wanted() { local b; for b in "${ONLY[@]}"; do [ "$b" = "$1" ] && return 0; done; return 1; }

if [ "$QUICK" = 1 ]; then
    DURATION=${DURATION:-3}; CONNS=${CONNS:-1000}; BACKLOG_COUNT=${BACKLOG_COUNT:-20000}
else
    DURATION=${DURATION:-10}; CONNS=${CONNS:-5000}; BACKLOG_COUNT=${BACKLOG_COUNT:-1000000}
fi
LATENCY_RATE=${LATENCY_RATE:-10000}
PORT_BASE=${PORT_BASE:-25000}

log() { echo "[compare] $*" >&2; }

WORK=$(mktemp -d /tmp/compare.XXXXXX)
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
PIDS=()      # every process this script started, stopped in reverse order

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local i
    for ((i=${#PIDS[@]}-1; i>=0; i--)); do stop_pid "${PIDS[$i]}"; done
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {   # wait_port PORT SECONDS
    local i
    for i in $(seq 1 $(($2 * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "port $1 did not open within $2 s"; return 1
}

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

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$PIN" = 1 ]; then BROKER_PIN=(taskset -c 1); LOADGEN_PIN=(taskset -c 0); else BROKER_PIN=(); LOADGEN_PIN=(); fi

# ---------------------------------------------------------------- running scenarios
BROKER=""; BPID=""; AMQP=""; MQTT=""
loadgen() {   # loadgen NAME ARGS...: JSON report to $RESULTS/$BROKER.NAME.json, never fails the script
    local name=$1; shift
    local out="$RESULTS/$BROKER.$name.json"
    log "$BROKER: $name"
    if ! timeout $((DURATION * 4 + 300)) "${LOADGEN_PIN[@]}" "$LOADGEN_BIN" "$@" --json --quiet \
            >"$out" 2>"$RESULTS/$BROKER.$name.err"; then
        log "$BROKER: $name failed: $(tail -c 300 "$RESULTS/$BROKER.$name.err")"
        printf '{"error": %s}\n' "$(tail -c 200 "$RESULTS/$BROKER.$name.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')" >"$out"
    fi
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

run_amqp() {
    loadgen amqp_transient amqp --addr "$AMQP" --size 100 --duration "$DURATION"
    loadgen amqp_transient_latency amqp --addr "$AMQP" --size 100 --duration "$DURATION" --rate "$LATENCY_RATE"
    loadgen amqp_persistent amqp --addr "$AMQP" --size 1024 --persistent --confirm 1000 --duration "$DURATION"
    loadgen amqp_competing amqp --addr "$AMQP" --producers 2 --consumers 4 --size 1024 --persistent \
        --confirm 1000 --duration "$DURATION"
}
run_backlog() {   # publish BACKLOG_COUNT persistent 1 KiB messages, no consumer; RSS; drain
    loadgen backlog_fill amqp --addr "$AMQP" --consumers 0 --size 1024 --persistent --confirm 1000 \
        --count "$BACKLOG_COUNT" --queue-prefix backlog
    sleep 2
    echo "{\"rss_kib\": $(rss_kib "$BPID")}" >"$RESULTS/$BROKER.backlog_rss.json"
    loadgen backlog_drain amqp --addr "$AMQP" --producers 0 --consumers 1 --persistent \
        --expect "$BACKLOG_COUNT" --queue-prefix backlog --drain-timeout 10
}
run_mqtt() {
    # Idle connections first, on a fresh broker, so earlier runs' heap does not hide the growth.
    loadgen mqtt_idle conns --protocol mqtt --addr "$MQTT" --count "$CONNS" --rate 2000 --pid "$BPID"
    loadgen mqtt_qos0 mqtt --addr "$MQTT" --size 100 --qos 0 --duration "$DURATION"
    loadgen mqtt_qos0_latency mqtt --addr "$MQTT" --size 100 --qos 0 --duration "$DURATION" --rate "$LATENCY_RATE"
    loadgen mqtt_qos1 mqtt --addr "$MQTT" --size 100 --qos 1 --duration "$DURATION"
    loadgen mqtt_fanout mqtt --addr "$MQTT" --size 100 --qos 0 --consumers 50 --duration "$DURATION"
}
cpu_secs() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
finish_broker() {
    echo "{\"cpu_secs\": $(cpu_secs "$BPID")}" >"$RESULTS/$BROKER.cpu.json"
    stop_pid "$BPID"
}

# ---------------------------------------------------------------- ours
if wanted ours; then
    BROKER=ours; D="$WORK/ours"; mkdir -p "$D"
    P=$((PORT_BASE + 1)); AMQP="127.0.0.1:$P"; MQTT="127.0.0.1:$((P + 1))"
    EXTRA=()
    if "$BROKER_BIN" --help | grep -q -- --http-listen; then EXTRA=(--http-listen "127.0.0.1:$((P + 3))"); fi
    RUST_LOG=warn "${BROKER_PIN[@]}" "$BROKER_BIN" --data-dir "$D/data" --amqp-listen "$AMQP" \
        --mqtt-listen "$MQTT" --mqtt-ws-listen "127.0.0.1:$((P + 2))" "${EXTRA[@]}" >"$D/broker.log" 2>&1 &
    BPID=$!; PIDS+=("$BPID")
    wait_port "$P" 30; wait_port "$((P + 1))" 30
    "$BROKER_BIN" --version >"$RESULTS/ours.version" 2>&1 || echo "broker $(git -C "$ROOT" rev-parse --short HEAD)" >"$RESULTS/ours.version"
    run_mqtt; run_amqp; run_backlog
    finish_broker
fi

# ---------------------------------------------------------------- RabbitMQ (run as the current user, private node)
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
    "${BROKER_PIN[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server >"$D/stdout.log" 2>&1 &
    BPID=$!; PIDS+=("$BPID")
    wait_port "$P" 180; wait_port "$((P + 1))" 60
    sleep 1
    # rabbitmq-server is a shell script; the memory that matters is the Erlang VM's.
    BEAM=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || true)
    if [ -n "$BEAM" ] && [ "$BEAM" != "$BPID" ]; then PIDS+=("$BEAM"); BPID=$BEAM; fi
    dpkg-query -W -f='RabbitMQ ${Version}' rabbitmq-server >"$RESULTS/rabbitmq.version" 2>/dev/null || true
    run_mqtt; run_amqp; run_backlog
    finish_broker
    unset RABBITMQ_NODENAME RABBITMQ_NODE_PORT ERL_EPMD_PORT; export HOME=$ORIG_HOME
fi

# ---------------------------------------------------------------- Mosquitto
if wanted mosquitto; then
    BROKER=mosquitto; D="$WORK/mosquitto"; mkdir -p "$D"
    P=$((PORT_BASE + 21)); MQTT="127.0.0.1:$P"
    cat >"$D/mosquitto.conf" <<CONF
listener $P 127.0.0.1
allow_anonymous true
persistence false
# no silent drops of queued messages, and the same in-flight window as the others
max_queued_messages 0
max_inflight_messages 1000
CONF
    "${BROKER_PIN[@]}" "$MOSQUITTO" -c "$D/mosquitto.conf" >"$D/broker.log" 2>&1 &
    BPID=$!; PIDS+=("$BPID")
    wait_port "$P" 30
    "$MOSQUITTO" -h 2>/dev/null | head -1 >"$RESULTS/mosquitto.version" || true
    run_mqtt
    finish_broker
fi

# ---------------------------------------------------------------- rumqttd
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
    "${BROKER_PIN[@]}" rumqttd -q -c "$D/rumqttd.toml" >"$D/broker.log" 2>&1 &
    BPID=$!; PIDS+=("$BPID")
    wait_port "$P" 30
    rumqttd --version >"$RESULTS/rumqttd.version" 2>&1 || true
    run_mqtt
    finish_broker
fi

# ---------------------------------------------------------------- the table
python3 "$ROOT/scripts/compare_table.py" "$RESULTS" "$DURATION" "$CONNS" "$BACKLOG_COUNT" "$LATENCY_RATE" "$PIN"
