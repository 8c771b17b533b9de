"""Errors the domain raises; each carries words fit to show the user as they are."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True)
class Person:
    """Someone a refusal names, as a user id: the surface showing it writes the name its way.

    The domain knows nothing of Slack, so it never writes a mention; the handlers do.
    """

    user_id: str


# A refusal's words: plain text, or text and the people it names, in reading order.
Words: TypeAlias = str | Sequence[str | Person]


def _worded(words: Words, name: Callable[[Person], str]) -> str:
    """Return `words` as text, each person named by `name`."""
    if isinstance(words, str):
        return words
    return "".join(part if isinstance(part, str) else name(part) for part in words)


def _by_id(person: Person) -> str:
    return person.user_id


class DomainError(Exception):
    """A request the domain refuses; `problem` says why, `hint` what to do instead.

    Either may name people (`Person`): `worded(name)` writes them as a surface names people;
    `problem` and `hint` name them by bare user id (logs, the import report).
    """

    def __init__(self, problem: Words, hint: Words | None = None) -> None:
        self.problem_words = problem
        self.hint_words = hint
        super().__init__(self.problem)

    def worded(self, name: Callable[[Person], str]) -> tuple[str, str | None]:
        """Return (problem, hint), each person in them named by `name`."""
        hint = None if self.hint_words is None else _worded(self.hint_words, name)
        return _worded(self.problem_words, name), hint

    @property
    def problem(self) -> str:
        """Return why, naming people by user id: for readers that are not a Slack message."""
        return self.worded(_by_id)[0]

    @property
    def hint(self) -> str | None:
        """Return what to do instead, naming people by user id."""
        return self.worded(_by_id)[1]


class DealNotFound(DomainError):
    pass


class TeamNotFound(DomainError):
    pass


class NotAllowed(DomainError):
    pass


class InvalidChange(DomainError):
    pass


class AdminUnknown(DomainError):
    """Whether the user is an admin could not be learnt just now; nothing was done."""


@dataclass(frozen=True)
class Candidate:
    deal_id: int
    label: str


class AmbiguousDeal(DomainError):
    """More than one deal matches; the user picks, we never guess."""

    def __init__(self, reference: str, candidates: tuple[Candidate, ...]) -> None:
        super().__init__(f"More than one deal matches “{reference}”.", "Pick one:")
        self.reference = reference
        self.candidates = candidates
