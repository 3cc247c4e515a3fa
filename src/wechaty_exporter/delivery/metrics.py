"""The receiver's own metrics, apart so the rescuer and the HTTP shell can both count in them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ReceiverMetrics"]


class ReceiverMetrics:
    """The receiver's own metrics, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "wechaty_receiver_requests",
            "Webhook requests to POST /alerts, by HTTP status code.",
            ["code"],
            registry=registry,
        )
        self.command_requests = Counter(
            "wechaty_receiver_command_requests",
            "Chat commands a plugin bot forwarded to POST /commands, by HTTP status code.",
            ["code"],
            registry=registry,
        )
        self.notifications = Counter(
            "wechaty_receiver_notifications",
            "Alerts handled, by outcome (delivered, duplicate, no_recipient, rate_limited, "
            "transient_failure, permanent_failure, paused).",
            ["outcome"],
            registry=registry,
        )
        self.messages = Counter(
            "wechaty_receiver_messages",
            "Messages accepted by the messenger, by type (text, image).",
            ["type"],
            registry=registry,
        )
        self.message_failures = Counter(
            "wechaty_receiver_message_failures",
            "Messages not accepted, by kind (transient, permanent, error: the messenger raised).",
            ["kind"],
            registry=registry,
        )
        self.dedupe_hits = Counter(
            "wechaty_receiver_dedupe_hits",
            "Alerts dropped as repeats or HA duplicates of one already delivered.",
            registry=registry,
        )
        self.truncated = Counter(
            "wechaty_receiver_truncated_alerts",
            "Alerts Alertmanager left out of payloads (truncatedAlerts).",
            registry=registry,
        )
        self.exporter_errors = Counter(
            "wechaty_receiver_exporter_errors",
            "Failed requests to the exporter's QR API.",
            registry=registry,
        )
        self.qr_refreshes = Counter(
            "wechaty_receiver_qr_refreshes",
            "Newer login QRs the receiver sent by itself while a logout alert fired, by bot.",
            ["bot"],
            registry=registry,
        )
        self.latency = Histogram(
            "wechaty_receiver_request_duration_seconds",
            "Time to answer POST /alerts (includes waiting for a QR).",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
            registry=registry,
        )
        self.delivery_delay = Histogram(
            "wechaty_receiver_alert_delivery_delay_seconds",
            "From an alert's startsAt to its last message accepted by the messenger.",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
            registry=registry,
        )
