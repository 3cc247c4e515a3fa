"""`wechaty-exporter bot`: the python-wechaty peer bot: delivers, answers commands, self-logs."""
