"""wechaty-exporter: keeps WeChat chatbots logged in with Prometheus and Alertmanager."""

__version__ = "0.1.0"
