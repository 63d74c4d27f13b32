"""The embedded SQLite store: discovery cache, overrides, instances, figures, audit log."""

from modelyard.store.db import Store

__all__ = ["Store"]
