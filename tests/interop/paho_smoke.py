#!/usr/bin/env python3
"""Interop smoke test: the Eclipse Paho MQTT client against our broker.

Connects (MQTT 3.1.1 or 5.0), subscribes to `paho-smoke/#` at QoS 2,
publishes one message at each of QoS 0, 1 and 2 and checks each comes back
once at its own QoS; then publishes a retained message and checks that a
second client subscribing afterwards receives it with the retain flag, and
clears it. Exits 0 and prints OK on success, 1 with a reason otherwise.
Run by tests/tests/mqtt_interop.rs; usable by hand:

    python3 tests/interop/paho_smoke.py --port 1883 --protocol 5
"""

import argparse
import queue
import sys

import paho.mqtt.client as mqtt

TIMEOUT = 10.0


class Client:
    """A paho client on its own network thread; received messages go to a queue."""

    def __init__(self, host, port, protocol, client_id):
        self.v5 = protocol == mqtt.MQTTv5
        self.messages = queue.Queue()
        self.events = queue.Queue()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            transport=TRANSPORT,
        )
        if TRANSPORT == "websockets":
            self.c.ws_set_options(path="/mqtt")
        self.c.on_connect = lambda c, u, flags, rc, props: self.events.put(("connack", rc))
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.events.put(("suback", rcs))
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        if self.v5:
            self.c.connect(host, port, keepalive=30, clean_start=True)
        else:
            self.c.connect(host, port, keepalive=30)
        self.c.loop_start()
        kind, rc = self.events.get(timeout=TIMEOUT)
        if kind != "connack" or rc.is_failure:
            raise RuntimeError(f"connect refused: {kind} {rc}")

    def subscribe(self, topic, qos):
        self.c.subscribe(topic, qos)
        kind, codes = self.events.get(timeout=TIMEOUT)
        if kind != "suback" or any(code.is_failure for code in codes):
            raise RuntimeError(f"subscribe {topic} refused: {kind} {codes}")

    def publish(self, topic, payload, qos, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=TIMEOUT)
        if not info.is_published():
            raise RuntimeError(f"publish to {topic} at QoS {qos} not acknowledged")

    def next_message(self):
        try:
            return self.messages.get(timeout=TIMEOUT)
        except queue.Empty:
            raise RuntimeError("no message within the timeout") from None

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def run(host, port, protocol):
    tag = "5" if protocol == mqtt.MQTTv5 else "311"
    c = Client(host, port, protocol, f"paho-smoke-{tag}")
    c.subscribe("paho-smoke/#", 2)
    for qos in (0, 1, 2):
        topic = f"paho-smoke/q{qos}"
        body = f"qos{qos}".encode()
        c.publish(topic, body, qos)
        msg = c.next_message()
        if (msg.topic, msg.payload, msg.qos) != (topic, body, qos):
            raise RuntimeError(f"expected {topic} {body!r} QoS {qos}, got {msg.topic} {msg.payload!r} QoS {msg.qos}")
        print(f"QoS {qos} round trip OK")

    c.publish("paho-retained/t", b"kept", 1, retain=True)
    late = Client(host, port, protocol, f"paho-smoke-late-{tag}")
    late.subscribe("paho-retained/#", 1)
    msg = late.next_message()
    if (msg.topic, msg.payload, bool(msg.retain)) != ("paho-retained/t", b"kept", True):
        raise RuntimeError(f"expected the retained message, got {msg.topic} {msg.payload!r} retain={msg.retain}")
    print("retained OK")
    c.publish("paho-retained/t", b"", 1, retain=True)
    late.close()
    c.close()


# "tcp", or "websockets" for MQTT over WebSocket on /mqtt.
TRANSPORT = "tcp"


def main() -> int:
    global TRANSPORT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=["311", "5"], default="5")
    parser.add_argument("--transport", choices=["tcp", "websockets"], default="tcp")
    args = parser.parse_args()
    TRANSPORT = args.transport
    protocol = mqtt.MQTTv5 if args.protocol == "5" else mqtt.MQTTv311
    try:
        run(args.host, args.port, protocol)
    except Exception as e:  # any failure is a test failure, with its reason
        print(f"FAILED: {e!r}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
