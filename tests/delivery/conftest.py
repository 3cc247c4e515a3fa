"""Fixtures for the receiver tests (defined in kit.py)."""

from tests.delivery.kit import exporter, make_rig, peer

__all__ = ["exporter", "make_rig", "peer"]
