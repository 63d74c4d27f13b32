"""Profiles: named sets of enabled models, routing settings and instances; one is active."""
