"""The commands that read logs and configs once: `replay`, `explain`, `dialects`, `check-config`.

Imports are made where they are needed: `replay` without a config imports neither the config
machinery nor the HTTP stack (its text output is `collector.render_text`, not prometheus_client),
so it starts in a fraction of a second (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from wechaty_exporter.settings import ConfigError

if TYPE_CHECKING:
    from wechaty_exporter.exporter.settings import ExporterSettings


def _exporter_settings(config: str | None) -> ExporterSettings:
    """The config's exporter section (defaults without a config)."""
    if config:
        from wechaty_exporter.config import load_config

        return load_config(config).exporter
    from wechaty_exporter.exporter.settings import ExporterSettings

    return ExporterSettings()


def _replay_targets(args: argparse.Namespace) -> list[tuple[str, str]]:
    targets = []
    for item in args.paths:
        name, sep, path = item.partition("=")
        if sep and name and not os.path.exists(item):
            targets.append((name, path))
        elif args.bot:
            targets.append((args.bot, item))
        else:
            targets.append((_bot_named_by(item), item))
    return targets


def _bot_named_by(path: str) -> str:
    """The bot a log file names: alice-out.log and alice-error.log are both bot alice."""
    stem = Path(path).name.split(".")[0]
    for suffix in ("-out", "-error", "-err"):
        stem = stem.removesuffix(suffix)
    return stem or "bot"


def cmd_replay(args: argparse.Namespace) -> int:
    from wechaty_exporter.logs.replay import replay_files

    targets = _replay_targets(args)
    if args.config:
        exporter = _exporter_settings(args.config)
        states = replay_files(
            targets,
            qr_hosts=exporter.qr_hosts,
            self_log_qr_bots=exporter.self_log_qr_bots,
            dialects=exporter.dialect,
            qr_shapes=exporter.qr_shapes,
        )
        dialect_name = exporter.dialect_name
    else:  # the defaults (the built-in detection, `auto`, for every file): no config to load
        states = replay_files(targets)
        dialect_name = lambda bot, path: "auto"  # noqa: E731
    from wechaty_exporter.exporter.collector import BotView, FileView

    views = [
        BotView(
            bot,
            state,
            tuple(
                FileView(p, True, 0, 0, 0, 0, dialect=dialect_name(bot, p))
                for b, p in targets
                if b == bot
            ),
        )
        for bot, state in states.items()
    ]
    if args.format == "json":
        from wechaty_exporter.exporter.app import bot_document

        doc = {"bots": [bot_document(v, with_qr=True) for v in views]}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        from wechaty_exporter import __version__
        from wechaty_exporter.exporter.collector import render_text

        sys.stdout.write(render_text(views, __version__))
    return 0


def _owner(exporter: ExporterSettings, path: str) -> str | None:
    """The configured bot whose log `path` is (as written, or the same file)."""
    logs = exporter.logs()
    if path in logs:
        return logs[path]
    real = os.path.realpath(path)
    return next((bot for p, bot in logs.items() if os.path.realpath(p) == real), None)


def cmd_explain(args: argparse.Namespace) -> int:
    """Exit 0 when a decisive event was found, 1 when none was."""
    from wechaty_exporter.logs.dialects.parser import LineParser
    from wechaty_exporter.logs.explain import Explainer, render_text, report
    from wechaty_exporter.logs.state import BotState

    exporter = _exporter_settings(args.config)
    configured = [bot for bot, _ in exporter.bots]
    if args.bot and args.config and args.bot not in configured:
        known = ", ".join(configured) or "none"
        raise ConfigError(
            [f"--bot {args.bot}: not a bot of this config (bots: {known})"], "explain"
        )
    owners = [args.bot or _owner(exporter, path) for path in args.paths]
    bot = next((o for o in owners if o), None) or _bot_named_by(args.paths[0])
    state = BotState()
    files = []
    for path, owner in zip(args.paths, owners, strict=True):
        who = owner or bot
        parser = LineParser(
            exporter.qr_hosts,
            self_log_qr_only=who in exporter.self_log_qr_bots,
            dialect=exporter.dialect(who, path),
            qr_shapes=exporter.qr_shapes,
        )
        with open(path, "rb") as f:
            now = os.fstat(f.fileno()).st_mtime
            explainer = Explainer(path, parser, state, now, max_line=exporter.max_line_bytes)
            while chunk := f.read(1 << 20):
                explainer.feed(chunk)
        files.append(explainer.finish())
    if args.format == "json":
        print(json.dumps(report(bot, files, state), indent=2, ensure_ascii=False))
    else:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        sys.stdout.write(render_text(bot, files, state, colour=colour))
    return 0 if any(f.decisive for f in files) else 1


def cmd_dialects(args: argparse.Namespace) -> int:
    import yaml

    from wechaty_exporter.logs.dialects.profiles import PROFILE_SOURCES, render_text

    if args.format == "yaml":
        print(
            "# The built-in dialects in rule form (wechaty-exporter dialects --format yaml).\n"
            "# `auto`, the default, is the hand-written detection they describe; copy one\n"
            "# under a new name in your config's dialects: section (docs/dialects.md)."
        )
        sys.stdout.write(
            yaml.safe_dump(
                {"dialects": PROFILE_SOURCES}, sort_keys=False, allow_unicode=True, width=4096
            )
        )
    else:
        sys.stdout.write(render_text())
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Exit 0 when the file is usable, 1 with every problem listed when it is not (as promtool
    and amtool do); 2 stays for usage errors."""
    from wechaty_exporter.config import load_config

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f"wechaty-exporter check-config: {exc}", file=sys.stderr)
        return 1
    bots = config.exporter.bots
    files = sum(len(paths) for _, paths in bots)
    sections = ", ".join(sorted(k for k in config.raw if k != "bots")) or "none"
    dialects = config.exporter.dialects
    custom = f", {len(dialects)} dialect(s)" if dialects else ""
    print(
        f"{args.file}: OK ({len(bots)} bot(s), {files} log file(s){custom}; sections: {sections})"
    )
    return 0
