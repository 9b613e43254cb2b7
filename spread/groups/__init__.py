"""Sessions and groups, sans-IO: handshake and framing (session), group state and notices
(layer), IP access rules (access). Fed by the daemon shell and the ring engine; no I/O here."""
