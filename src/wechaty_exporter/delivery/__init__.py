"""`wechaty-exporter receiver`: Alertmanager's webhook → the freshest QR → a message to admins."""
