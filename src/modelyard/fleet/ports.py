"""Ports for instances: from the configured range, free right now, never the gateway's."""

from __future__ import annotations

import socket
from collections.abc import Collection

from modelyard.errors import NoFreePort

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when ``port`` can be bound on ``host`` now (as a server would, with SO_REUSEADDR,
    so a port in TIME_WAIT counts as free and one with a listener does not)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(
    port_range: tuple[int, int],
    *,
    gateway_port: int,
    held: Collection[int] = (),
    host: str = HOST,
) -> int:
    """The lowest port in ``port_range`` (inclusive) that is not the gateway's, not in
    ``held`` (ports other instances own) and binds now. Raises NoFreePort.

    A bound-and-released port can still be taken by someone else before the server binds it;
    the start then fails and the next start picks again.
    """
    low, high = port_range
    for port in range(low, high + 1):
        if port == gateway_port or port in held:
            continue
        if port_is_free(port, host):
            return port
    raise NoFreePort(
        f"no free port in {low}-{high} (gateway {gateway_port}, {len(held)} held by "
        "instances); widen fleet.port_range"
    )
