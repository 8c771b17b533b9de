"""Qualification evidence: which answer a Slack or Gmail message backs up.

Kinds are the short names reps type (`/deal Initech evidence eb: <link>`); each has a bit so
the facts query can carry a deal's cited kinds as one integer.
"""

from __future__ import annotations

from typing import Final

# kind -> what it is called on a card
EVIDENCE_KINDS: Final[dict[str, str]] = {
    "eb": "Economic buyer",
    "criteria": "Decision criteria",
    "process": "Decision process",
    "paper": "Paper process",
    "champion": "Champion",
    "metrics": "Metrics",
}
EVIDENCE_BITS: Final[dict[str, int]] = {kind: 1 << i for i, kind in enumerate(EVIDENCE_KINDS)}
# What a deal must have cited before it may be forecast as Commit.
COMMIT_EVIDENCE: Final[tuple[str, ...]] = ("eb", "process", "paper")


def cited_kinds(bits: int | None) -> frozenset[str]:
    """Return the kinds whose bits are set in `bits` (the facts query's `cited` column)."""
    if not bits:
        return frozenset()
    return frozenset(kind for kind, bit in EVIDENCE_BITS.items() if bits & bit)


# Where a citation points: a Slack message (its permalink) or a Gmail message (id or link).
EVIDENCE_SOURCES: Final[tuple[str, ...]] = ("slack", "gmail")
# The message shortcut's name, as the manifest declares it (Slack caps a name at 24
# characters, so "Cite as evidence for a deal" cannot be it).
CITE_SHORTCUT_NAME: Final = "Cite as deal evidence"
# How much of a cited message is kept beside the link (the card quotes none of it).
EXCERPT_LIMIT: Final = 200


def kind_label(kind: str) -> str:
    """Return how a kind reads inside a sentence ("economic buyer")."""
    return EVIDENCE_KINDS[kind].lower()


def missing_for_commit(cited: frozenset[str] | set[str]) -> tuple[str, ...]:
    """Return the COMMIT_EVIDENCE kinds not in `cited`, in COMMIT_EVIDENCE order."""
    return tuple(kind for kind in COMMIT_EVIDENCE if kind not in cited)
