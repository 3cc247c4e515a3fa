"""Chat commands to a peer bot (`qr`, `status`, `restart`, ...): parse, authorize, run, reply."""
