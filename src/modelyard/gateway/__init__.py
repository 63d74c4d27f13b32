"""The OpenAI-compatible gateway: /v1 routes, forwarding, and per-request figures."""
