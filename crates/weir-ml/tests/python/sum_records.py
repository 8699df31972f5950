"""A process node for weir-ml's tests: sums its input records (numbers) and reports what the
node host told it. Standard library only, plus the weir_node helper the host provides."""
import os
import sys
import time

import weir_node

node = weir_node.context()
if os.environ.get("PRINT_INVALID_UTF8"):
    # Bytes that are not UTF-8, on both streams: the host must pass them on, not hang up.
    sys.stdout.buffer.write(b"\xff\xfe not utf-8 \xc3\n")
    sys.stdout.flush()
    sys.stderr.buffer.write(b"\xff on stderr\n")
    sys.stderr.flush()
if os.environ.get("CHECK_PRIVATE"):
    # The rings and their directory hold the job's records: only this user may open them.
    for path in (os.environ["WEIR_INPUT_RING"], os.environ["WEIR_OUTPUT_RING"]):
        for target in (path, os.path.dirname(path)):
            mode = os.stat(target).st_mode & 0o777
            if mode & 0o077:
                print(f"{target} has mode {oct(mode)}", file=sys.stderr, flush=True)
                sys.exit(4)
if node.attempt < int(os.environ.get("HANG_UNTIL_ATTEMPT", "0")):
    # Stuck without a sign of life: with runner liveness the AM times the node out.
    time.sleep(3600)
total = 0
count = 0
for record in node.records():
    total += record
    count += 1
node.emit({
    "node": f"{node.role}:{node.index}",
    "attempt": node.attempt,
    "sum": total,
    "count": count,
    "address": node.address,
    "tf_config": node.tf_config,
    "master": f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}",
    "world_size": int(os.environ["WORLD_SIZE"]),
    "rank": int(os.environ["RANK"]),
    "workers": node.spec["nodes"]["worker"],
})
print(f"summed {count} records", flush=True)
fail_until = int(os.environ.get("FAIL_UNTIL_ATTEMPT", "0"))
if node.attempt < fail_until:
    print(f"failing on purpose on attempt {node.attempt}", file=sys.stderr, flush=True)
    sys.exit(3)
