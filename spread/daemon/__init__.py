"""The daemon's asyncio shell: client sessions, listeners and `serve()` (server), logging (log),
the ring's UDP sockets (transport)."""
