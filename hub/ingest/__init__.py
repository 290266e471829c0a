"""Ingest: how MQTT messages get from the broker into the hub's state, fast and in order.

- ``occupancy``: occupancy messages checked outside the hub's lock and applied a batch per hold of it,
  the rules evaluated once per site per batch for the zones whose count moved;
- ``receiver`` / ``mqtt_process``: the hub's MQTT clients (gmqtt) run in a child process of the hub (started,
  restarted and stopped by it), so that the hub's own work does not compete with them for one interpreter;
  they hand ``(topic, payload)`` batches over a pipe;
- ``worker``: one worker thread handles those messages in arrival order (parsing, state, rules, storage
  writes, SSE);
- ``shard``: which share of the sites one of several hub processes on a machine serves (``--shard I/N``).
"""
