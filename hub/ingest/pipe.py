"""The pipe between the hub and its MQTT receiver process: length-prefixed pickles, and how batches are cut.

Both sides import this (the hub's ``receiver`` and the child's ``mqtt_process``); only the child imports
the MQTT client.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

HEADER = struct.Struct("<I")
LINGER_S = 0.002        # a batch waits this long for more: batches of messages, not one per frame
MAX_PENDING = 20_000    # messages held in the child before they are written at once


def write_frame(out: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(data)) + data)
    out.flush()


def read_frame(inp: BinaryIO) -> Any:
    """The next object, or None at the end of the stream (the other side closed or died)."""
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (n,) = HEADER.unpack(head)
    data = inp.read(n)
    if len(data) < n:
        return None
    return pickle.loads(data)
