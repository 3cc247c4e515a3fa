"""The pure core: log lines → events → per-bot login state; no I/O, no import from other wings."""
