"""Email templates: Jinja2 files under templates/email/, each a subject line and a body.

Rendering is sandboxed (an admin edits these files, not a developer) and strict: a name the
template does not know is an error naming it, and a value the deal does not have (no pain
written down, say) is an error too unless the template guards it with `{% if %}`. A draft is
made from a template that rendered completely, or not at all.

Deal data only ever reaches a template as a variable's value: it is rendered once, never
parsed as template text, so `{{` or `{%` typed into a deal is printed as typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "email"
TEMPLATE_SUFFIX = ".j2"
_SUBJECT = re.compile(r"^Subject:[ \t]*(?P<subject>.*)$", re.IGNORECASE)


class TemplateProblem(Exception):
    """A template is missing, malformed, or needs a value this deal does not have."""

    def __init__(self, template: str, problem: str) -> None:
        super().__init__(f"{template}: {problem}")
        self.template = template
        self.problem = problem


class Blank:
    """A value the deal does not have: false in `{% if %}`, an error when printed."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        raise BlankValueError(self.name)

    def __repr__(self) -> str:
        return f"Blank({self.name!r})"


class BlankValueError(TemplateError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} has no value for this deal; guard it with {{% if {name} %}}…{{% endif %}}"
        )


def _refuse_blank(value: Any) -> Any:
    """Jinja `finalize`: every printed expression must print something."""
    if isinstance(value, Blank):
        raise BlankValueError(value.name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise TemplateError("an expression printed nothing (None or empty text)")
    return value


def with_blanks(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Return `values` with None replaced by a Blank named after its path (`deal.pain`)."""
    result: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if value is None:
            result[key] = Blank(name)
        elif isinstance(value, Mapping):
            result[key] = with_blanks(value, name)
        else:
            result[key] = value
    return result


@dataclass(frozen=True)
class RenderedEmail:
    template: str
    subject: str
    body: str


class EmailTemplates:
    """Loads and renders the templates in one folder."""

    def __init__(self, *, directory: Path = DEFAULT_TEMPLATES_DIR) -> None:
        self.directory = directory
        self._environment = SandboxedEnvironment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            finalize=_refuse_blank,
            autoescape=False,  # plain-text email, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=True,  # admins edit the files while the bot runs
        )

    def names(self) -> tuple[str, ...]:
        """Return the template names (file names without .j2), sorted."""
        return tuple(sorted(path.name.removesuffix(TEMPLATE_SUFFIX) for path in self._files()))

    def _files(self) -> list[Path]:
        return [p for p in self.directory.glob(f"*{TEMPLATE_SUFFIX}") if p.is_file()]

    def exists(self, name: str) -> bool:
        return name in self.names()

    def render(self, name: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Return the subject and body of template `name`, or raise TemplateProblem."""
        try:
            template = self._environment.get_template(name + TEMPLATE_SUFFIX)
            text = template.render(dict(context))
        except TemplateNotFound:
            raise TemplateProblem(name, "no such template") from None
        except TemplateError as error:
            line = f" (line {error.lineno})" if getattr(error, "lineno", None) else ""
            raise TemplateProblem(name, f"{error.message or error}{line}") from None
        return _split(name, text)


def _split(name: str, text: str) -> RenderedEmail:
    lines = text.lstrip("\n").splitlines()
    match = _SUBJECT.match(lines[0]) if lines else None
    if match is None:
        raise TemplateProblem(name, "the first line must be `Subject: …`")
    subject = " ".join(match.group("subject").split())
    if not subject:
        raise TemplateProblem(name, "the subject is empty")
    body = "\n".join(lines[1:]).strip("\n")
    body = re.sub(r"\n{3,}", "\n\n", body)
    if not body.strip():
        raise TemplateProblem(name, "the body is empty")
    # No look for leftover `{{`/`{%` here: Jinja has parsed the whole file, so any such
    # text came from deal data (a next step reading "{{ config }}"), which is data and
    # goes into the draft as written, never a sign that the template is broken.
    return RenderedEmail(template=name, subject=subject, body=body + "\n")
