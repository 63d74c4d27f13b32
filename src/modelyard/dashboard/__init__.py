"""The web dashboard: one HTML page and its static files, served by ``modelyard serve`` at ``/``.

The page is plain HTML, CSS and JavaScript modules (no build step). It reads and changes
everything through the management API (``/api/*``) and follows ``/api/events``.
"""

from modelyard.dashboard.router import STATIC_DIR, router

__all__ = ["STATIC_DIR", "router"]
