"""The realtime client: job and space streams over WebSocket (``client.realtime``).

- ``streams``: ``Realtime`` / ``AsyncRealtime``, the public methods of both clients;
- ``options``: ``StreamOptions`` and ``Callbacks``, what a caller asks of a stream;
- ``connection``: the connection objects, a background thread or a task;
- ``driver``: one stream on asyncio (connect, read, call back, reconnect);
- ``protocol``: the decisions, sans I/O (URLs, cursor, backoff, close codes, redaction);
- ``events``: the typed events the streams deliver.

Nothing is imported here: ``import emit_push`` loads these modules only when used.
"""
