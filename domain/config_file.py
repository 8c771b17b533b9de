"""YAML config files read into pydantic models, every refusal naming `file:line: reason`.

Teams edit dealbot's config files (the checks, the follow-up triggers) by hand, so a mistake
must point at its line. PyYAML's node tree knows each key's and value's line; pydantic's
errors know the path (`loc`) of what is wrong. `read_config` keeps a map from one to the
other. A model says what it honours with `extra="forbid"`: a key nobody reads is refused,
never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

Model = TypeVar("Model", bound=BaseModel)
KeyPath = tuple[str | int, ...]

# The error type our own validators raise, so their wording reaches the user as written.
REFUSED = "dealbot_refused"


class ConfigFileError(ValueError):
    """The config file is unusable; `str()` names the file, the line and the reason."""


def dotted(path: KeyPath) -> str:
    """Return how a refusal names `path`: its keys joined by dots (list positions left out)."""
    return ".".join(str(p) for p in path if not isinstance(p, int))


def refuse(reason: str) -> PydanticCustomError:
    """Return an error a validator raises to refuse a value with `reason` (after its name)."""
    # Braces would be read as template fields by pydantic; a reason quoting a value may hold some.
    return PydanticCustomError(REFUSED, reason.replace("{", "{{").replace("}", "}}"))


def _whole_number(value: object) -> int:
    # bool is an int to Python, not to a person writing `max_days: true`.
    if type(value) is not int:
        raise refuse(f"must be a whole number, not {value!r}")
    if value < 0:
        raise refuse("must not be negative")
    return value


def listed_stage(value: object, stages: tuple[str, ...]) -> str:
    """Return `value` when it is one of `stages`; refuse it, naming it and the choices, if not.

    For a stage in a list or mapping of the file, where the key alone would not say which.
    """
    if value not in stages:
        raise refuse(f"lists {value!r}: a stage must be one of {', '.join(stages)}")
    return str(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise refuse("must be true or false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]


class FileModel(BaseModel):
    """A part of a config file: frozen, and refusing keys nobody reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Located:
    """A YAML document as plain data, with the line of every key and value by path."""

    def __init__(self, source: str, error: type[ConfigFileError]) -> None:
        self.source = source
        self.error = error
        self.key_lines: dict[KeyPath, int] = {}
        self.value_lines: dict[KeyPath, int] = {}

    def fail(self, line: int | None, reason: str) -> ConfigFileError:
        where = f":{line}" if line is not None else ""
        return self.error(f"{self.source}{where}: {reason}")

    def data(self, loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath = ()) -> Any:
        self.value_lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node)
                if not isinstance(key, str | int):
                    raise self.fail(key_node.start_mark.line + 1, f"{key!r} cannot be a key")
                key = str(key)
                if key in mapping:
                    what = ".".join(map(str, path)) or "the file"
                    raise self.fail(
                        key_node.start_mark.line + 1, f"{key!r} appears twice in {what}"
                    )
                self.key_lines[(*path, key)] = key_node.start_mark.line + 1
                mapping[key] = self.data(loader, value_node, (*path, key))
            return mapping
        if isinstance(node, yaml.SequenceNode):
            return [self.data(loader, item, (*path, i)) for i, item in enumerate(node.value)]
        if ":" in str(node.value) and node.tag.endswith((":int", ":float")):
            # YAML 1.1 reads 19:00 as the number 1140; a time of day is meant, as written.
            return str(node.value)
        return loader.construct_object(node)

    def place(self, loc: tuple[str | int, ...]) -> tuple[KeyPath, int | None, bool]:
        """Return the file's path for `loc`, its line, and whether it names a mapping's key."""
        # pydantic's loc may hold segments that are not in the file (a model's own reshaping,
        # "[key]" for a bad key): follow only those that are.
        path: KeyPath = ()
        on_key = False
        for segment in loc:
            if segment == "[key]":
                on_key = True
            candidate = (*path, str(segment) if not isinstance(segment, int) else segment)
            if candidate in self.value_lines:
                path = candidate
        line = self.key_lines.get(path) if on_key else self.value_lines.get(path)
        return path, line, on_key


def read_config(
    text: str,
    model: type[Model],
    *,
    source: str,
    error: type[ConfigFileError] = ConfigFileError,
    describe: Callable[[ErrorDetails, KeyPath], str] | None = None,
    name: Callable[[KeyPath], str] | None = None,
    context: dict[str, Any] | None = None,
    empty_means_defaults: bool = False,
) -> Model:
    """Return `text` validated as `model`, or raise `error` naming `source`, the line and why.

    `describe` words a pydantic error the model's own validators did not word (a missing or
    unknown key); it gets the error and the path of what is wrong in the file. `name` says
    what a path is called in a refusal (by default its keys joined by dots). An empty file is
    refused unless `empty_means_defaults`.
    """
    name = name or dotted
    located = _Located(source, error)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None and not empty_means_defaults:
                raise located.fail(None, "the file is empty")
            data = located.data(loader, node) if node is not None else {}
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark
        raise located.fail(
            mark.line + 1 if mark is not None else None, f"not valid YAML ({problem.problem})"
        ) from None
    if not isinstance(data, dict):
        raise located.fail(located.value_lines.get(()), "the file must be a mapping of sections")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as invalid:
        # The first error is the one a reader meets first; fixing it may clear the others.
        first = min(invalid.errors(), key=lambda e: located.place(e["loc"])[1] or 0)
        path, line, on_key = located.place(first["loc"])
        if first["type"] == REFUSED:
            # A refused key is named by its parent's path; a refused value by its own.
            what = name(path[:-1] if on_key else path)
            reason = f"{what} {first['msg']}" if what else first["msg"]
        elif describe is not None:
            reason = describe(first, path)
        else:
            reason = first["msg"]
        if first["type"] in ("missing", "extra_forbidden"):
            # Point at the key: the one lacking something, or the one nobody reads.
            line = located.key_lines.get(path) or located.value_lines.get(path)
        raise located.fail(line, reason) from None
