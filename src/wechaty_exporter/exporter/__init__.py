"""`wechaty-exporter serve`: follows bot logs, keeps their state, serves /metrics and the QR API."""
