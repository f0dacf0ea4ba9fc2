"""The WebSocket gateway (``kc gateway``): the engine's live feed for browsers, phones and programs.

One process between Redis and WebSocket clients (docs/gateway.md):

- :mod:`.auth`: tokens (``name:scope:token``), hashed at rest, compared in constant time;
- :mod:`.settings`: the ``[gateway]`` config section as one object;
- :mod:`.routes`: which ``P:ev:<topic>`` goes to which ``/ws/<channel>``;
- :mod:`.outbox`: one bounded queue per connection (quotes dropped first, orders never);
- :mod:`.hub`: the Redis side (one Pub/Sub subscription, snapshots, outages);
- :mod:`.server`: the WebSocket side (handshake, channels, ``/ws/commands``, ``/ws/stats``).
"""
