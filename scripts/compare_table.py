#!/usr/bin/env python3
"""Turns the JSON reports compare.sh collected into a Markdown table (stdout).

usage: compare_table.py RESULTS_DIR DURATION CONNS BACKLOG_COUNT LATENCY_RATE PIN
"""
import json
import os
import sys

results, duration, conns, backlog, latency_rate, pin = sys.argv[1:7]
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
    ("mqtt_idle", f"{int(conns):,} idle MQTT connections: broker RSS per connection",
     lambda r: (r.get("conns") or {}).get("per_conn_kib"), "KiB", False, False),
    ("backlog_fill", f"Backlog: publish {int(backlog):,} persistent 1 KiB msgs (confirms, no consumer)",
     lambda r: r.get("send_rate"), "msg/s", True, False),
    ("backlog_rss", "Backlog: broker RSS holding them", lambda r: r.get("rss_kib", 0) / 1024.0, "MiB", False, False),
    ("backlog_drain", "Backlog: drain with 1 consumer", recv_rate, "msg/s", True, True),
]


def cell(r, get, unit, notes_on):
    if r is None:
        return "–", None
    if "error" in r:
        return "error", None
    v = get(r)
    if v is None:
        return "–", None
    text = human(v) if unit not in ("ms", "KiB", "MiB") else (f"{v:.2f}" if v < 10 else f"{v:.0f}" if v >= 100 else f"{v:.1f}")
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
    for key, _ in present:
        text, v = cell(load(key, name), get, unit, notes_on)
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
