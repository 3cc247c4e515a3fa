"""`python -m wechaty_exporter` is the same as the `wechaty-exporter` console script."""

from wechaty_exporter.cli import main

raise SystemExit(main())
