"""Renders Block Kit messages and views as terminal text, for the offline demo.

Every button and every input drawn gets a number (`[2 Mark done]`, `[4] Reason: ____`), so
the demo's `:click 2` and `:fill` can press and fill them as a user would in Slack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

_USER = re.compile(r"<@([A-Z0-9_]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([A-Z0-9_]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<(?:mailto:)?([^|>]+)\|([^>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_EMOJI = {
    ":warning:": "⚠",
    ":white_check_mark:": "✔",
    ":ballot_box_with_check:": "☑",
    ":trophy:": "🏆",
    ":black_flag:": "⚑",
    ":mag:": "?",
    ":email:": "✉",
    ":link:": "↗",
    ":hourglass_flowing_sand:": "⏳",
    ":bulb:": "💡",
}


@dataclass(frozen=True)
class Surface:
    """Where numbered controls were drawn: a message (in a channel or DM), a modal, App Home.

    A click's payload says where the button was, as Slack's does.
    """

    kind: Literal["message", "modal", "home"]
    channel_id: str | None = None
    ephemeral: bool = False
    view: Mapping[str, Any] = field(default_factory=dict)
    blocks: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Control:
    """One numbered button or input, with the block it sits in and where it was drawn."""

    number: int
    kind: Literal["button", "input"]
    block: Mapping[str, Any]
    element: Mapping[str, Any]
    surface: Surface

    @property
    def label(self) -> str:
        text = self.element.get("text") or self.block.get("label") or {}
        return str(text.get("text", ""))


class ConsoleRenderer:
    """Turns mrkdwn and blocks into readable lines; `names` maps Slack ids to names.

    `controls` holds the buttons and inputs of the latest turn that drew any, by number;
    `modal` is the form open now (the last view opened, pushed or updated), or None.
    """

    def __init__(
        self, *, names: Mapping[str, str], channels: Mapping[str, str], bold: bool
    ) -> None:
        self.names = names
        self.channels = channels
        self.bold = bold
        self.controls: dict[int, Control] = {}
        self.modal: Mapping[str, Any] | None = None
        self._fresh_turn = True

    def new_turn(self) -> None:
        """Start numbering afresh at the next control drawn; until then the old numbers hold."""
        self._fresh_turn = True

    def _number(
        self,
        kind: Literal["button", "input"],
        block: Mapping[str, Any],
        element: Mapping[str, Any],
        surface: Surface,
    ) -> int:
        if self._fresh_turn:
            self.controls, self._fresh_turn = {}, False
        number = len(self.controls) + 1
        self.controls[number] = Control(number, kind, block, element, surface)
        return number

    def mrkdwn(self, text: str) -> str:
        text = _USER.sub(lambda m: "@" + self.names.get(m.group(1), m.group(1)), text)
        text = _CHANNEL.sub(
            lambda m: "#" + (self.channels.get(m.group(1)) or m.group(2) or m.group(1)), text
        )
        text = _LINK.sub(lambda m: m.group(2), text)
        for code, symbol in _EMOJI.items():
            text = text.replace(code, symbol)
        wrap: Callable[[re.Match[str]], str] = (
            (lambda m: f"\033[1m{m.group(1)}\033[0m") if self.bold else (lambda m: m.group(1))
        )
        text = _BOLD.sub(wrap, text)
        text = text.replace("`", "")
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def blocks(self, blocks: list[dict[str, Any]], *, surface: Surface | None = None) -> str:
        """Return the blocks as lines, numbering their buttons and inputs for `surface`."""
        surface = surface or Surface("message", blocks=tuple(blocks))
        lines: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                title = block["text"]["text"]
                lines += [self.mrkdwn(f"*{title}*"), "─" * min(len(title), 60)]
            elif kind == "section":
                if "text" in block:
                    lines.append(self.mrkdwn(block["text"]["text"]))
                for field in block.get("fields", []):
                    lines.append(self.mrkdwn(field["text"]))
            elif kind == "context":
                lines.append(
                    "  " + "  ".join(self.mrkdwn(e.get("text", "")) for e in block["elements"])
                )
            elif kind == "divider":
                lines.append("·" * 40)
            elif kind == "actions":
                buttons = []
                for element in block["elements"]:
                    if element.get("type") == "button":
                        number = self._number("button", block, element, surface)
                        buttons.append(f"[{number} {element.get('text', {}).get('text', '')}]")
                lines.append("  " + "  ".join(buttons))
            elif kind == "input":
                number = self._number("input", block, block.get("element", {}), surface)
                optional = " (optional)" if block.get("optional") else ""
                default = input_default(block.get("element", {}))
                shown = f" {default}" if default else " ____"
                lines.append(f"  [{number}] {block['label']['text']}{optional}:{shown}")
        return "\n".join(lines)

    def view(self, view: Mapping[str, Any]) -> str:
        """Return a modal or App Home as lines; a modal becomes the one `:fill` walks."""
        if view.get("type") == "home":
            surface = Surface("home", view=view)
            return "┌ App Home\n" + self.blocks(view.get("blocks", []), surface=surface)
        self.modal = view
        title = view.get("title", {}).get("text", "")
        submit = view.get("submit", {}).get("text")
        footer = f"\n  [{submit}] — type :fill to fill in and submit this form" if submit else ""
        body = self.blocks(view.get("blocks", []), surface=Surface("modal", view=view))
        return f"┌ Modal: {title}\n" + body + footer


def input_default(element: Mapping[str, Any]) -> str | None:
    """Return what an input holds before anyone types: its initial value, option or date."""
    if element.get("initial_value"):
        return str(element["initial_value"])
    option = element.get("initial_option")
    if isinstance(option, Mapping):
        return str(option.get("text", {}).get("text") or option.get("value"))
    if element.get("initial_date"):
        return str(element["initial_date"])
    return None
