"""Errors the domain raises; each carries words fit to show the user as they are."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """A request the domain refuses; `problem` says why, `hint` what to do instead."""

    def __init__(self, problem: str, hint: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


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
