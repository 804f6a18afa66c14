"""The systems eventyard is measured against, each in its best ordinary use.

A peer that cannot run here (its server is down, its client is missing) raises
:class:`PeerUnavailable` with the reason; the scenario reports that reason in the peer column
instead of a figure, so the table never shows a number nobody measured.
"""

from __future__ import annotations

__all__ = ["PeerUnavailable"]


class PeerUnavailable(Exception):
    """The peer cannot be measured on this machine; the message says why."""
