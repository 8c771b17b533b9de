"""A small bar chart as PNG, in pure Python: no plotting library to install for one image.

Text is drawn with a 3×5 pixel font scaled up, enough for stage names and amounts.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Final

# Each glyph is 5 rows of 3 bits (left to right), most significant bit first.
_FONT: Final[dict[str, tuple[int, ...]]] = {
    "A": (2, 5, 7, 5, 5), "B": (6, 5, 6, 5, 6), "C": (3, 4, 4, 4, 3), "D": (6, 5, 5, 5, 6),
    "E": (7, 4, 6, 4, 7), "F": (7, 4, 6, 4, 4), "G": (3, 4, 5, 5, 3), "H": (5, 5, 7, 5, 5),
    "I": (7, 2, 2, 2, 7), "J": (1, 1, 1, 5, 2), "K": (5, 5, 6, 5, 5), "L": (4, 4, 4, 4, 7),
    "M": (5, 7, 7, 5, 5), "N": (6, 5, 5, 5, 5), "O": (2, 5, 5, 5, 2), "P": (6, 5, 6, 4, 4),
    "Q": (2, 5, 5, 6, 3), "R": (6, 5, 6, 5, 5), "S": (3, 4, 2, 1, 6), "T": (7, 2, 2, 2, 2),
    "U": (5, 5, 5, 5, 7), "V": (5, 5, 5, 5, 2), "W": (5, 5, 7, 7, 5), "X": (5, 5, 2, 5, 5),
    "Y": (5, 5, 2, 2, 2), "Z": (7, 1, 2, 4, 7), "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7),
    "2": (6, 1, 2, 4, 7), "3": (6, 1, 2, 1, 6), "4": (5, 5, 7, 1, 1), "5": (7, 4, 6, 1, 6),
    "6": (3, 4, 7, 5, 7), "7": (7, 1, 1, 2, 2), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 6),
    " ": (0, 0, 0, 0, 0), ".": (0, 0, 0, 0, 2), ",": (0, 0, 0, 2, 4), "-": (0, 0, 7, 0, 0),
    "$": (3, 6, 2, 3, 6), "%": (5, 1, 2, 4, 5), "/": (1, 1, 2, 4, 4), ":": (0, 2, 0, 2, 0),
    "€": (3, 4, 7, 4, 3), "£": (3, 4, 6, 4, 7), "(": (1, 2, 2, 2, 1), ")": (4, 2, 2, 2, 4),
}  # fmt: skip

Color = tuple[int, int, int]
BACKGROUND: Final[Color] = (255, 255, 255)
INK: Final[Color] = (40, 40, 40)
BAR: Final[Color] = (54, 123, 245)
SECOND_BAR: Final[Color] = (190, 190, 190)


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = [bytearray(BACKGROUND * width) for _ in range(height)]

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        for row in range(max(0, y), min(self.height, y + h)):
            start, end = max(0, x), min(self.width, x + w)
            if end > start:
                self.pixels[row][start * 3 : end * 3] = bytes(color) * (end - start)

    def text(self, x: int, y: int, text: str, *, scale: int = 2, color: Color = INK) -> None:
        for char in text.upper():
            glyph = _FONT.get(char, _FONT[" "])
            for row, bits in enumerate(glyph):
                for column in range(3):
                    if bits & (4 >> column):
                        self.rect(x + column * scale, y + row * scale, scale, scale, color)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.pixels)

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float, str]],
    *,
    target: tuple[str, float, str] | None = None,
) -> bytes:
    """Return a PNG of horizontal bars: (label, value, value label) each, and an optional target."""
    rows = list(bars) + ([target] if target else [])
    width, label_width, row_height = 640, 150, 34
    height = 50 + row_height * max(1, len(rows))
    canvas = Canvas(width, height)
    canvas.text(12, 12, title[:70], scale=2)
    largest = max((value for _, value, _ in rows), default=0) or 1
    room = width - label_width - 110
    for index, (label, value, shown) in enumerate(rows):
        y = 46 + index * row_height
        is_target = target is not None and index == len(rows) - 1
        canvas.text(12, y + 6, label[:16], scale=2)
        length = max(1, int(room * value / largest)) if value > 0 else 0
        canvas.rect(label_width, y, length, row_height - 10, SECOND_BAR if is_target else BAR)
        canvas.text(label_width + length + 8, y + 6, shown[:14], scale=2)
    return canvas.png()
