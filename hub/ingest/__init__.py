"""Ingest: how MQTT messages get from the network thread into the hub's state, fast and in order.

- ``occupancy``: occupancy messages checked outside the hub's lock and applied a batch per hold of it,
  the rules evaluated once per site per batch for the zones whose count moved;
- ``worker``: the network thread only hands messages over; one worker thread handles them in arrival
  order (parsing, state, rules, storage writes, SSE), so paho's loop keeps reading and acknowledging;
- ``shard``: which share of the sites one of several hub processes on a machine serves (``--shard I/N``).
"""
