#!/usr/bin/env python3
"""Turns the JSON reports compare.sh collected into a Markdown table (stdout).

usage: compare_table.py RESULTS_DIR DURATION CONNS BACKLOG_COUNT LATENCY_RATE PIN [MAX_CONNS AMQP_CONNS]

A report {"skipped": "why"} shows as a "–" cell with a numbered footnote under the table.
"""
import json
import os
import sys

results, duration, conns, backlog, latency_rate, pin = sys.argv[1:7]
max_conns = sys.argv[7] if len(sys.argv) > 7 else "50000"
amqp_conns = sys.argv[8] if len(sys.argv) > 8 else "2000"
BROKERS = [("ours", "ours"), ("rabbitmq", "RabbitMQ"), ("mosquitto", "Mosquitto"), ("rumqttd", "rumqttd")]


def load(broker, name):
    path = os.path.join(results, f"{broker}.{name}.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"error": "unreadable report"}


def human(n):
    if n >= 10_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return f"{n:.1f}" if n < 100 else f"{n:.0f}"


def delivery_notes(r):
    notes = []
    if r.get("lost"):
        notes.append(f"lost {r['lost']:,}")
    if r.get("duplicated"):
        notes.append(f"dup {r['duplicated']:,}")
    if r.get("out_of_order"):
        notes.append(f"out of order {r['out_of_order']:,}")
    return notes


def recv_rate(r):
    return r.get("recv_rate") if r.get("received") else None


def p(q):
    def get(r):
        lat = r.get("latency_us")
        return lat[q] / 1000.0 if lat else None
    return get


def per_conn(r):
    return (r.get("conns") or {}).get("per_conn_kib")


# (report name, label, value getter, unit, higher is better, show delivery notes)
ROWS = [
    ("amqp_transient", "AMQP transient 1→1, 100 B", recv_rate, "msg/s", True, True),
    ("amqp_transient_latency", f"AMQP transient 1→1, 100 B at {int(latency_rate):,} msg/s: p50", p("p50"), "ms", False, True),
    ("amqp_transient_latency", f"AMQP transient 1→1, 100 B at {int(latency_rate):,} msg/s: p99", p("p99"), "ms", False, False),
    ("amqp_persistent", "AMQP persistent + confirms 1→1, 1 KiB", recv_rate, "msg/s", True, True),
    ("amqp_persistent", "  … its p99 latency (at full load)", p("p99"), "ms", False, False),
    ("amqp_competing", "AMQP 2 producers → 4 competing consumers, persistent + confirms, 1 KiB", recv_rate, "msg/s", True, True),
    ("mqtt_qos0", "MQTT QoS 0 1→1, 100 B", recv_rate, "msg/s", True, True),
    ("mqtt_qos0_latency", f"MQTT QoS 0 1→1, 100 B at {int(latency_rate):,} msg/s: p99", p("p99"), "ms", False, True),
    ("mqtt_qos1", "MQTT QoS 1 1→1, 100 B", recv_rate, "msg/s", True, True),
    ("mqtt_fanout", "MQTT fan-out 1→50, QoS 0, 100 B", recv_rate, "deliveries/s", True, True),
    ("mqtt_qos2", "MQTT QoS 2 1→1, 100 B", recv_rate, "msg/s", True, True),
    ("mqtt_shared", "MQTT shared subscription 1→4 (`$share/`), QoS 1, 100 B", recv_rate, "msg/s", True, True),
    ("mqtt_idle", f"{int(conns):,} idle MQTT connections: broker RSS per connection", per_conn, "KiB", False, False),
    ("mqtt_idle_max", f"{int(max_conns):,} idle MQTT connections: how many were held",
     lambda r: (r.get("conns") or {}).get("succeeded"), "connections", True, False),
    ("mqtt_idle_max", "  … broker RSS per connection", per_conn, "KiB", False, False),
    ("amqp_idle", f"{int(amqp_conns):,} idle AMQP connections: broker RSS per connection", per_conn, "KiB", False, False),
    ("backlog_fill", f"Backlog: publish {int(backlog):,} persistent 1 KiB msgs (confirms, no consumer)",
     lambda r: r.get("send_rate"), "msg/s", True, False),
    ("backlog_rss", "Backlog: broker RSS holding them", lambda r: r.get("rss_kib", 0) / 1024.0, "MiB", False, False),
    ("backlog_restart", "Backlog: restart (SIGTERM, start) until the AMQP port accepts",
     lambda r: r.get("restart_secs"), "s", False, False),
    ("backlog_drain", "Backlog: drain with 1 consumer", recv_rate, "msg/s", True, True),
]


FOOTNOTES = []   # (broker label, why) of skipped cells, numbered in order


def skipped(label, why):
    key = (label, why)
    if key not in FOOTNOTES:
        FOOTNOTES.append(key)
    return f"– ({FOOTNOTES.index(key) + 1})"


def number(v, unit):
    if unit == "connections":
        return f"{v:,.0f}"
    if unit in ("ms", "KiB", "MiB", "s"):
        return f"{v:.2f}" if v < 10 else f"{v:.0f}" if v >= 100 else f"{v:.1f}"
    return human(v)


def cell(r, get, unit, notes_on):
    if r is None:
        return "–", None
    if "error" in r:
        return "error", None
    v = get(r)
    if v is None:
        return "–", None
    text = number(v, unit)
    notes = delivery_notes(r) if notes_on else []
    if r.get("balance_pct") is not None and notes_on:
        notes.append(f"balance ±{r['balance_pct']:.0f}%")
    if r.get("conns") and r["conns"].get("failed"):
        notes.append(f"{r['conns']['failed']} failed")
        if not r["conns"].get("succeeded"):
            return "all failed", None
    if notes:
        text += " (" + ", ".join(notes) + ")"
    return text, v


present = [b for b in BROKERS if any(f.startswith(b[0] + ".") for f in os.listdir(results))]
head = ["scenario", "unit"] + [label for _, label in present] + ["ours ÷ best peer"]
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
for name, label, get, unit, higher, notes_on in ROWS:
    cells, values = [], {}
    for key, blabel in present:
        r = load(key, name)
        if r is not None and "skipped" in r:
            cells.append(skipped(blabel, r["skipped"]))
            continue
        text, v = cell(r, get, unit, notes_on)
        cells.append(text)
        if v is not None:
            values[key] = v
    if all(c == "–" for c in cells):
        continue
    peers = [v for k, v in values.items() if k != "ours" and v > 0]
    ratio = "–"
    if "ours" in values and peers:
        best = max(peers) if higher else min(peers)
        if best > 0 and values["ours"] > 0:
            ratio = f"{values['ours'] / best:.2f}×"
    print(f"| {label} | {unit} ({'higher' if higher else 'lower'} is better) | " + " | ".join(cells) + f" | {ratio} |")

print()
for i, (blabel, why) in enumerate(FOOTNOTES, 1):
    print(f"({i}) {blabel}: {why}.")
# The most-connections row can only hold what the open file limits allow (one descriptor per
# connection in the broker and one in loadgen); say which limit it met.
for key, blabel in present:
    r = load(key, "mqtt_idle_max") or {}
    c = r.get("conns") or {}
    if c and c.get("failed"):
        lim = load(key, "mqtt_idle_max.limits") or {}
        print(f"{blabel} held {c.get('succeeded', 0):,} of {c.get('attempted', 0):,} connections: "
              f"open file limit {lim.get('broker_nofile', '?')} in the broker, {c.get('nofile_limit', '?')} in loadgen "
              f"(first error: {c.get('first_error') or '?'}).")
if FOOTNOTES or any((load(k, "mqtt_idle_max") or {}).get("conns", {}).get("failed") for k, _ in present):
    print()
versions = []
for key, label in present:
    path = os.path.join(results, f"{key}.version")
    if os.path.exists(path):
        with open(path) as f:
            versions.append(f"{label}: {f.read().strip().splitlines()[0] if f else ''}")
cpu = []
for key, label in present:
    r = load(key, "cpu")
    if r and "cpu_secs" in r:
        cpu.append(f"{label} {r['cpu_secs']:.0f} s")
print(f"Throughput runs: {duration} s each; 1 connection per producer/consumer; "
      f"{'broker pinned to CPU 1, loadgen to CPU 0' if pin == '1' else 'broker and loadgen share both cores'}. "
      "Rates are deliveries per second at the consumers; \"ours ÷ best peer\" compares with the best "
      "peer in this run (for lower-is-better rows, below 1 means we are better).")
if versions:
    print("Versions: " + "; ".join(versions) + ".")
if cpu:
    print("Broker CPU time over the whole matrix: " + ", ".join(cpu) + ".")

# Broker CPU time (user + system, /proc/PID/stat) during each throughput run, per million
# messages: deliveries at the consumers, or messages published where there is no consumer.
CPU_ROWS = [
    ("amqp_transient", "AMQP transient 1→1, 100 B"),
    ("amqp_persistent", "AMQP persistent + confirms 1→1, 1 KiB"),
    ("amqp_competing", "AMQP 2 producers → 4 competing consumers, persistent"),
    ("mqtt_qos0", "MQTT QoS 0 1→1, 100 B"),
    ("mqtt_qos1", "MQTT QoS 1 1→1, 100 B"),
    ("mqtt_fanout", "MQTT fan-out 1→50, QoS 0 (per million deliveries)"),
    ("mqtt_qos2", "MQTT QoS 2 1→1, 100 B"),
    ("mqtt_shared", "MQTT shared subscription 1→4, QoS 1"),
    ("backlog_fill", "Backlog: publish (per million published)"),
    ("backlog_drain", "Backlog: drain"),
]


def cpu_per_million(key, name):
    r, c = load(key, name), load(key, name + ".cpu")
    if not r or "error" in r or not c or c.get("cpu_secs") is None:
        return None
    n = r.get("received") or r.get("sent")
    return c["cpu_secs"] / n * 1e6 if n else None


lines = []
for name, label in CPU_ROWS:
    values = {key: cpu_per_million(key, name) for key, _ in present}
    if all(v is None for v in values.values()):
        continue
    peers = [v for k, v in values.items() if k != "ours" and v]
    ratio = f"{values['ours'] / min(peers):.2f}×" if values.get("ours") and peers else "–"
    cells = [f"{v:.2f}" if v is not None else "–" for v in values.values()]
    lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
if lines:
    print()
    print("Broker CPU-seconds per million messages (lower is better; user + system time of the broker "
          "process during the run, so idle waits cost nothing):")
    print()
    print("| scenario | " + " | ".join(label for _, label in present) + " | ours ÷ best peer |")
    print("|---|" + "|".join(["---:"] * (len(present) + 1)) + "|")
    for line in lines:
        print(line)
