"""The Jinja2 sandbox every template renders in, and the cleaning of every value it prints."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from wechaty_exporter.delivery.chattext import clip

MAX_VALUE_CHARS = 400  # one value printed into a template

# Line breaks (a value stays on its line) and then what may not reach a chat at all: C0 and C1
# control characters, DEL, and the bidi controls that reorder what an admin reads.
_BREAKS = re.compile("[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_value(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """`value` fit for one line of a chat text: no control or bidi characters, at most `limit`."""
    text = _UNSAFE.sub("", _BREAKS.sub(" ", value))
    return clip(text, limit)


def finalize(value: Any) -> str:
    """What every `{{ ... }}` prints: a clean, bounded string (None prints nothing)."""
    if value is None:
        return ""
    return clean_value(value if isinstance(value, str) else str(value))


@dataclass(frozen=True, slots=True)
class Source:
    """One template's text and the file it came from (shown in every problem about it)."""

    text: str
    filename: str


class _Loader(BaseLoader):
    def __init__(self, sources: Mapping[str, Source]) -> None:
        self.sources = sources

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source = self.sources.get(template)
        if source is None:
            raise TemplateNotFound(template)
        return source.text, source.filename, lambda: True


def sandboxed_environment(sources: Mapping[str, Source]) -> ImmutableSandboxedEnvironment:
    """An environment over `sources`: sandboxed, StrictUndefined, no autoescaping, `finalize`."""
    return ImmutableSandboxedEnvironment(
        loader=_Loader(sources),
        undefined=StrictUndefined,
        autoescape=False,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )


# --- where a template went wrong ------------------------------------------------------------------


def _template_line(tb: TracebackType | None, filename: str) -> int | None:
    """The template line a render error happened on (Jinja rewrites tracebacks to them)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe_error(exc: BaseException, filename: str) -> str:
    """`filename, line N: what` for a template's syntax or render error."""
    if isinstance(exc, TemplateSyntaxError):
        line: int | None = exc.lineno
        what = f"syntax error: {exc.message}"
    else:
        line = _template_line(exc.__traceback__, filename)
        kind = "sandbox" if isinstance(exc, SecurityError) else exc.__class__.__name__
        what = f"{kind}: {exc}"
    where = f"{filename}, line {line}" if line else filename
    return f"{where}: {what}"
