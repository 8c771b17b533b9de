"""Renders Block Kit messages and views as terminal text, for the offline demo."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

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


class ConsoleRenderer:
    """Turns mrkdwn and blocks into readable lines; `names` maps Slack ids to names."""

    def __init__(
        self, *, names: Mapping[str, str], channels: Mapping[str, str], bold: bool
    ) -> None:
        self.names = names
        self.channels = channels
        self.bold = bold

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

    def blocks(self, blocks: list[dict[str, Any]]) -> str:
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
                buttons = [e.get("text", {}).get("text", "") for e in block["elements"]]
                lines.append("  " + "  ".join(f"[{b}]" for b in buttons))
            elif kind == "input":
                optional = " (optional)" if block.get("optional") else ""
                lines.append(f"  {block['label']['text']}{optional}: ____")
        return "\n".join(lines)

    def view(self, view: Mapping[str, Any]) -> str:
        if view.get("type") == "home":
            return "┌ App Home\n" + self.blocks(view.get("blocks", []))
        title = view.get("title", {}).get("text", "")
        submit = view.get("submit", {}).get("text")
        footer = f"\n  [{submit}]" if submit else ""
        return f"┌ Modal: {title}\n" + self.blocks(view.get("blocks", [])) + footer
