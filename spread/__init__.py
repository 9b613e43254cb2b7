"""Spread 5.0.1-compatible group communication daemon, client library and tools."""
