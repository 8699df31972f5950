"""The Python side of a Weir process node (standard library only).

A Weir node host starts your program with its cluster context in the environment and two
shared-memory rings: one brings the node's input records, one takes its output records.

    import weir_node

    node = weir_node.context()          # role, index, attempt, spec, properties, tf_config
    for record in node.records():       # input records (JSON values) until the input ends
        node.emit({"seen": record})     # output records (any JSON value)
    node.close()                        # end of output (also done at interpreter exit)

Ring layout (little-endian): bytes 0..8 b"WEIRRING", 8..16 data capacity, 16..24 head (bytes
written), 24..32 tail (bytes read), 32..36 closed flag, 40..48 signs of life (bumped by the
writer while it works); data from byte 64. A frame is a u32
length and the payload, wrapping around the data area. One writer, one reader.
"""

import atexit
import json
import mmap
import os
import struct
import sys
import time

HEADER = 64


class Ring:
    """One end of a shared-memory ring."""

    def __init__(self, path):
        self._file = open(path, "r+b")
        self._map = mmap.mmap(self._file.fileno(), 0)
        if self._map[:8] != b"WEIRRING":
            raise ValueError(f"{path} is not a Weir ring")
        if sys.byteorder != "little":
            raise RuntimeError("Weir rings are little-endian")
        # Whole-word views: one aligned load or store per counter (struct.pack_into writes
        # byte by byte, and the other side could read a torn value).
        self._words = memoryview(self._map).cast("Q")
        self._flags = memoryview(self._map).cast("I")
        self.capacity = self._words[1]

    def _get(self, offset):
        return self._words[offset // 8]

    def _set(self, offset, value):
        self._words[offset // 8] = value

    def _copy_out(self, at, n):
        start = at % self.capacity
        first = min(n, self.capacity - start)
        data = self._map[HEADER + start:HEADER + start + first]
        if first < n:
            data += self._map[HEADER:HEADER + n - first]
        return data

    def _copy_in(self, at, data):
        start = at % self.capacity
        first = min(len(data), self.capacity - start)
        self._map[HEADER + start:HEADER + start + first] = data[:first]
        if first < len(data):
            self._map[HEADER:HEADER + len(data) - first] = data[first:]

    def beat(self):
        """Bumps the signs-of-life counter."""
        self._set(40, self._get(40) + 1)

    def read(self, on_wait=None):
        """The next frame as bytes, or None at the end of the stream."""
        tail = self._get(24)
        pause = 0.00001
        while True:
            head = self._get(16)
            if head > tail:
                (length,) = struct.unpack("<I", self._copy_out(tail, 4))
                payload = self._copy_out(tail + 4, length)
                self._set(24, tail + 4 + length)
                return payload
            if self._flags[8] == 1 and self._get(16) == tail:
                return None
            if on_wait:
                on_wait()
            time.sleep(pause)
            pause = min(pause * 2, 0.001)

    def write(self, payload, on_wait=None):
        """Appends a frame, waiting while the ring is full."""
        needed = 4 + len(payload)
        if needed > self.capacity:
            raise ValueError(f"a frame of {len(payload)} bytes does not fit the ring's {self.capacity}")
        head = self._get(16)
        pause = 0.00001
        while self.capacity - (head - self._get(24)) < needed:
            if on_wait:
                on_wait()
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
        self._copy_in(head, struct.pack("<I", len(payload)))
        self._copy_in(head + 4, payload)
        self._set(16, head + needed)

    def close(self):
        """Marks the end of the stream."""
        self._flags[8] = 1


class NodeContext:
    """What the node host told this process."""

    def __init__(self, env):
        self.role = env["WEIR_ROLE"]
        self.index = int(env["WEIR_INDEX"])
        self.attempt = int(env["WEIR_ATTEMPT"])
        self.address = env.get("WEIR_NODE_ADDRESS")
        self.spec = json.loads(env["WEIR_CLUSTER_SPEC"])
        self.properties = self.spec.get("properties", {})
        self.tf_config = json.loads(env["TF_CONFIG"]) if "TF_CONFIG" in env else None
        self._input = Ring(env["WEIR_INPUT_RING"])
        self._output = Ring(env["WEIR_OUTPUT_RING"])
        self._closed = False
        atexit.register(self.close)

    def alive(self):
        """A sign of life: with runner liveness, a node that gives none for the heartbeat
        timeout is failed (reading and emitting records give them too)."""
        self._output.beat()

    def records(self):
        """Input records (decoded JSON) until the input ends."""
        while True:
            self.alive()
            frame = self._input.read(on_wait=self.alive)
            if frame is None:
                return
            yield json.loads(frame)

    def emit(self, record):
        """Sends one record (any JSON value) into the dataflow."""
        self.alive()
        self._output.write(json.dumps(record).encode(), on_wait=self.alive)

    def close(self):
        """Ends the output stream."""
        if not self._closed:
            self._closed = True
            self._output.close()


def context():
    """The node context from the environment."""
    return NodeContext(os.environ)
