"""Loopback ports: is one free, and pick a free one (tests run side by side on one machine)."""

from __future__ import annotations

import socket


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out (free now; used at once by the caller)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
