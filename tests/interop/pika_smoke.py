#!/usr/bin/env python3
"""Interop smoke test: the pika client against our broker.

Declares a queue, publishes 100 messages with publisher confirms, consumes
them with basic_consume and manual acks, and checks every body arrived once,
in order. Exits 0 on success, 1 with a reason otherwise. Run by
tests/tests/pika_interop.rs; usable by hand:

    python3 tests/interop/pika_smoke.py --port 5672
"""

import argparse
import sys

import pika

COUNT = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queue", default="pika-smoke")
    args = parser.parse_args()

    params = pika.ConnectionParameters(
        host=args.host,
        port=args.port,
        virtual_host="/",
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=3,
        retry_delay=0.2,
        socket_timeout=10,
        blocked_connection_timeout=10,
    )
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    declared = channel.queue_declare(queue=args.queue, durable=False)
    if declared.method.queue != args.queue:
        print(f"FAIL: declare-ok names {declared.method.queue!r}")
        return 1

    channel.confirm_delivery()
    for i in range(COUNT):
        # With confirm_delivery, basic_publish blocks until the broker acks
        # and raises on nack or return.
        channel.basic_publish(
            exchange="",
            routing_key=args.queue,
            body=f"pika-{i}".encode(),
            properties=pika.BasicProperties(content_type="text/plain", delivery_mode=1),
            mandatory=True,
        )
    print(f"published {COUNT} messages, all confirmed")

    again = channel.queue_declare(queue=args.queue, passive=True)
    if again.method.message_count != COUNT:
        print(f"FAIL: message_count {again.method.message_count}, expected {COUNT}")
        return 1

    received = []

    def on_message(ch, method, properties, body):
        received.append((body.decode(), method.redelivered, properties.content_type))
        ch.basic_ack(delivery_tag=method.delivery_tag)
        if len(received) == COUNT:
            ch.stop_consuming()

    channel.basic_qos(prefetch_count=20)
    channel.basic_consume(queue=args.queue, on_message_callback=on_message, auto_ack=False)
    # Fail instead of hanging if deliveries stop.
    connection.call_later(15, channel.stop_consuming)
    channel.start_consuming()

    expected = [f"pika-{i}" for i in range(COUNT)]
    bodies = [r[0] for r in received]
    if bodies != expected:
        missing = sorted(set(expected) - set(bodies))
        print(f"FAIL: got {len(bodies)} bodies; missing {missing[:10]}; first {bodies[:5]}")
        return 1
    if any(r[1] for r in received):
        print("FAIL: first deliveries flagged redelivered")
        return 1
    if any(r[2] != "text/plain" for r in received):
        print("FAIL: content_type property lost")
        return 1
    print(f"consumed and acked {COUNT} messages")

    final = channel.queue_declare(queue=args.queue, passive=True)
    if final.method.message_count != 0:
        print(f"FAIL: {final.method.message_count} messages left after acking all")
        return 1
    channel.queue_delete(queue=args.queue)
    connection.close()
    print("OK")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # report any client-side failure as a test failure
        print(f"FAIL: {type(exc).__name__}: {exc}")
        sys.exit(1)
