"""The fleet: every inference server process, its readiness, supervision and memory."""
