"""Engines: small adapters that describe how to serve a model. Only the fleet runs them."""
