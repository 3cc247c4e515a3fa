"""Every text an admin reads comes from a Jinja2 template: loaded once, rendered purely, checked.

Templates ship with the package as `templates/<language>/<name>` (`LANGUAGES`: zh and en); an
operator's `receiver.templates_dir` holds replacements under the same relative names, and every
template it does not replace is the shipped one. `load_templates` reads the files once (at
start-up and in `check-config`, through the receiver settings parser); rendering is pure.

Values come from alert labels and annotations, contact names and command output, so (`sandbox`):
- the environment is Jinja2's (immutable) sandbox: no Python internals, no unsafe calls;
- StrictUndefined: an unknown variable is an error, never an empty string;
- no autoescaping (chat text is plain). Instead every value a template prints passes `finalize`
  (`clean_value`): control characters and Unicode bidi controls are removed, line breaks become
  spaces (a value cannot start a line of its own), and its length is bounded.

`check_templates` renders every template of both languages against `sample_values` (every case
a template distinguishes; `template_samples`) and checks statically that it names only the
variables its samples declare, so a broken override is a config error with its file and line,
not a failure during an outage. Should an override still fail on real values, the shipped
template renders instead.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, Template, nodes
from jinja2 import meta as jinja_meta

from wechaty_exporter.delivery.chattext import clip, format_duration
from wechaty_exporter.delivery.sandbox import (
    Source,
    describe_error,
    finalize,
    sandboxed_environment,
)
from wechaty_exporter.delivery.template_samples import sample_values

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"  # nearly every admin of a WeChat bot reads Chinese
SUFFIX = ".txt.j2"

_BLANKS = re.compile(r"\n{3,}")


# --- loading --------------------------------------------------------------------------------------


class TemplateSet:
    """Compiled templates, keyed `<language>/<name>`; `fallback` (the shipped set) renders any
    template of an override set that fails on real values."""

    def __init__(self, sources: Mapping[str, Source], fallback: TemplateSet | None = None) -> None:
        self.sources = dict(sources)
        self.fallback = fallback
        self.env = sandboxed_environment(self.sources)
        self._compiled: dict[str, Template] = {}

    def filename(self, key: str) -> str:
        return self.sources[key].filename

    def template(self, key: str) -> Template:
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self.env.get_template(key)
        return compiled

    def render(self, language: str, name: str, values: Mapping[str, Any]) -> str:
        key = f"{language}/{name}"
        try:
            return _tidy(self.template(key).render({**values, "language": language}))
        except Exception as exc:
            if self.fallback is None:
                raise
            log.error("template %s failed, the shipped one is used: %s", self.filename(key),
                      describe_error(exc, self.filename(key)))  # fmt: skip
            return self.fallback.render(language, name, values)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")


def template_names() -> tuple[str, ...]:
    """Every template name (relative to a language directory)."""
    return tuple(_SAMPLES)


def _shipped_root() -> Path:
    return Path(str(resources.files("wechaty_exporter.delivery") / "templates"))


def _read(path: Path, problems: list[str]) -> Source | None:
    try:
        return Source(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        return None


@functools.cache
def shipped_templates() -> TemplateSet:
    """The templates that ship with the package (read once per process)."""
    problems: list[str] = []
    root = _shipped_root()
    sources = {}
    for language in LANGUAGES:
        for name in template_names():
            source = _read(root / language / name, problems)
            if source is not None:
                sources[f"{language}/{name}"] = source
    if problems:
        raise RuntimeError("the package's templates are incomplete: " + "; ".join(problems))
    return TemplateSet(sources)


@functools.cache
def _shipped_problems() -> tuple[str, ...]:
    return tuple(check_templates(shipped_templates()))


def load_templates(directory: Path | None) -> tuple[TemplateSet, list[str]]:
    """The shipped templates with `directory`'s replacements, and every problem found in them
    (files that are no template, unreadable files, and what `check_templates` finds)."""
    shipped = shipped_templates()
    if directory is None:
        return shipped, list(_shipped_problems())
    problems: list[str] = []
    if not directory.is_dir():
        return shipped, [f"{directory}: not a directory"]
    known = {f"{language}/{name}" for language in LANGUAGES for name in template_names()}
    overrides: dict[str, Source] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = path.relative_to(directory).as_posix()
        if key in known:
            source = _read(path, problems)
            if source is not None:
                overrides[key] = source
        elif path.name.endswith(".j2"):
            problems.append(
                f"{path}: not a template name (expected <language>/<name>, languages "
                f"{', '.join(LANGUAGES)}, names: {', '.join(template_names())})"
            )
    merged = TemplateSet({**shipped.sources, **overrides}, fallback=shipped)
    problems += check_templates(merged, only=set(overrides))
    return merged, problems


def parse_messages(raw: Mapping[str, Any], where: str, errors: list[str]) -> dict[str, Any]:
    """`language` and `templates_dir` of a `receiver:` section → ReceiverSettings changes; every
    template (shipped and overridden) is loaded and checked here, so check-config and start-up
    report a broken one (problems go to `errors`)."""
    changes: dict[str, Any] = {}
    if "language" in raw:
        if raw["language"] in LANGUAGES:
            changes["language"] = raw["language"]
        else:
            known = ", ".join(LANGUAGES)
            errors.append(f"{where}.language: must be one of {known}, got {raw['language']!r}")
    directory = None
    if "templates_dir" in raw:
        value = raw["templates_dir"]
        if isinstance(value, str) and value.strip():
            directory = changes["templates_dir"] = Path(value)
        else:
            errors.append(f"{where}.templates_dir: expected a directory path, got {value!r}")
    templates, problems = load_templates(directory)
    label = f"{where}.templates_dir" if directory is not None else f"{where} (shipped templates)"
    errors.extend(f"{label}: {problem}" for problem in problems)
    if directory is not None:
        changes["templates"] = templates
    return changes


# --- checking -------------------------------------------------------------------------------------


def _unknown_names(env: Environment, source: Source, known: set[str]) -> Iterator[str]:
    tree = env.parse(source.text, filename=source.filename)
    unknown = jinja_meta.find_undeclared_variables(tree) - known - set(env.globals)
    for name in sorted(unknown):
        lines = [n.lineno for n in tree.find_all(nodes.Name) if n.name == name]
        at = f", line {min(lines)}" if lines else ""
        yield (
            f"{source.filename}{at}: unknown variable {name!r} (this template gets: "
            f"{', '.join(sorted(known))})"
        )


def check_templates(templates: TemplateSet, only: set[str] | None = None) -> list[str]:
    """Every problem of `templates` (or of the keys in `only`): syntax errors, unknown
    variables, and errors rendering each sample (sandbox violations included)."""
    problems: list[str] = []
    for language in LANGUAGES:
        samples = sample_values(language)
        for name, cases in samples.items():
            key = f"{language}/{name}"
            if only is not None and key not in only:
                continue
            source = templates.sources[key]
            known = {"language", *(k for case in cases for k in case)}
            try:
                template = templates.template(key)
                unknown = list(_unknown_names(templates.env, source, known))
                problems += unknown
                for case in [] if unknown else cases:
                    template.render({**case, "language": language})
            except Exception as exc:  # whatever a template does wrong is reported, not raised
                problems.append(describe_error(exc, source.filename))
    return problems


# --- rendering ------------------------------------------------------------------------------------


class Messages:
    """The templates in one language: what every part that sends text holds."""

    def __init__(self, templates: TemplateSet, language: str = DEFAULT_LANGUAGE) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r} (known: {', '.join(LANGUAGES)})")
        self.templates = templates
        self.language = language

    def render(self, name: str, /, **values: Any) -> str:
        """Template `name` with `values` (and `language`); never raises: should even the
        shipped template fail, the values are listed plainly."""
        try:
            return self.templates.render(self.language, name, values)
        except Exception:
            log.exception("template %s/%s failed", self.language, name)
            shown = ", ".join(f"{k}={finalize(v)}" for k, v in sorted(values.items()))
            return clip(f"[{name.removesuffix(SUFFIX)}] {shown}")

    def duration(self, seconds: float) -> str:
        return format_duration(seconds, self.language)


@functools.cache
def default_messages(language: str = DEFAULT_LANGUAGE) -> Messages:
    """The shipped templates in `language` (the default for whatever has no settings)."""
    return Messages(shipped_templates(), language)


_SAMPLES = sample_values(DEFAULT_LANGUAGE)
