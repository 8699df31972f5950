"""An independent Kafka client for Weir's tests (kafka-python, pinned in requirements-kafka.txt).

  python kafka_client.py produce BOOTSTRAP TOPIC [--key-field F] [--partition-field F] < lines
      sends each stdin line as a message value; prints the number sent.
  python kafka_client.py consume BOOTSTRAP TOPIC COUNT [--timeout S]
      reads every message from the start of every partition until at least COUNT arrived and
      the topic was quiet for half a second, and prints each as a JSON line
      {"partition", "offset", "key", "value", "headers"}; fails if fewer arrive in time.
"""
import argparse
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def produce(args):
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=5)
    sent = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        key = None
        partition = None
        if args.key_field or args.partition_field:
            try:
                obj = json.loads(line)
            except ValueError:
                obj = {}
            if args.key_field and args.key_field in obj:
                key = str(obj[args.key_field]).encode()
            if args.partition_field and args.partition_field in obj:
                partition = int(obj[args.partition_field])
        producer.send(args.topic, value=line.encode(), key=key, partition=partition)
        sent += 1
    producer.flush(timeout=60)
    producer.close()
    print(sent)


def consume(args):
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=500)
    partitions = consumer.partitions_for_topic(args.topic) or set()
    deadline = time.time() + args.timeout
    while not partitions and time.time() < deadline:
        time.sleep(0.2)
        partitions = consumer.partitions_for_topic(args.topic) or set()
    tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    # Offset 0, not seek_to_beginning: tansu 0.6 answers "earliest" with the batch stored
    # first, which is not the lowest offset when two producers wrote a partition at once.
    # The tests' topics are fresh, so they start at 0.
    for tp in tps:
        consumer.seek(tp, 0)
    got = 0
    while got < args.count and time.time() < deadline:
        # The first metadata may list only some partitions of a topic a job just wrote:
        # ask again (topics() always asks the broker) and read the new ones from the start.
        consumer.topics()
        now = consumer.partitions_for_topic(args.topic) or set()
        if not now <= partitions:
            partitions |= now
            new = [TopicPartition(args.topic, p) for p in sorted(now - {tp.partition for tp in tps})]
            tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            for tp in new:
                consumer.seek(tp, 0)
        for m in consumer:
            print(json.dumps({
                "partition": m.partition,
                "offset": m.offset,
                "key": m.key.decode(errors="replace") if m.key is not None else None,
                "value": m.value.decode(errors="replace") if m.value is not None else None,
                "headers": {k: v.decode(errors="replace") for k, v in (m.headers or [])},
            }))
            got += 1
    consumer.close()
    if got < args.count:
        print(f"only {got} of {args.count} messages arrived in {args.timeout} s "
              f"(partitions read: {sorted(partitions)})", file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("produce")
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.add_argument("--key-field")
    p.add_argument("--partition-field")
    c = sub.add_parser("consume")
    c.add_argument("bootstrap")
    c.add_argument("topic")
    c.add_argument("count", type=int)
    c.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    produce(args) if args.command == "produce" else consume(args)


if __name__ == "__main__":
    main()
