"""Realtime bus adapter: in-process or Redis pub/sub."""
