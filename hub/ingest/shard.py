"""Several hub processes on one machine, each serving a share of the sites: ``hallgrid hub --shard I/N``.

Why processes: one hub uses about two cores (the MQTT client in its receiver process, its own work in the
hub's), so a machine with more cores than one hub can use serves more halls with more hubs. A site's messages all go to the
process that serves it (its subscriptions name only its sites), so each site's messages stay in order and
no broker feature (shared subscriptions) is needed.

Which process serves a site is a stable hash of the site id (SHA-256), not its place in a list: adding a hall
moves no other hall to another process. With a few halls the shares can be uneven; name them with
``--sites`` then.
"""

from __future__ import annotations

import re
import hashlib
from typing import Iterable, TypeVar

T = TypeVar("T")
SHARD = re.compile(r"^(\d{1,3})/(\d{1,3})$")


class ShardError(ValueError):
    """A ``--shard`` that is not ``I/N`` with 0 <= I < N."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` -> (1, 4): this process is share 1 of 4 (counted from 0)."""
    m = SHARD.fullmatch(text.strip())
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise ShardError(f"{text!r} is not I/N with 0 <= I < N (e.g. 0/2 and 1/2 for two hubs)")
    return int(m[1]), int(m[2])


def shard_of(site_id: str, shards: int) -> int:
    """The share (0..shards-1) that serves ``site_id``: the same in every process and every run."""
    return int.from_bytes(hashlib.sha256(site_id.encode()).digest()[:8], "big") % shards


def share(items: Iterable[T], index: int, shards: int, key=lambda s: s.id) -> list[T]:
    """The items (sites) of share ``index`` of ``shards``."""
    return [s for s in items if shard_of(key(s), shards) == index]
