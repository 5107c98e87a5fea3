"""A problem found in a file: where, which rule, what, how bad."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Level = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    path: Path
    line: int  # 1-based; 0 when the problem concerns the whole file
    col: int  # 1-based; 0 when unknown
    rule: str
    message: str
    level: Level = "error"
    # The same cause reported elsewhere, folded into this one (irx.knock_ons): (line, col, rule) each.
    also: tuple[tuple[int, int, str], ...] = field(default=(), compare=False)

    @property
    def text(self) -> str:
        """The message, with the other places of the same cause when some were folded into it."""
        if not self.also:
            return self.message
        places = ", ".join(f"{line}:{col}" + (f" {rule}" if rule != self.rule else "") for line, col, rule in self.also)
        return f"{self.message} (also: {places})"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line else f"{self.path}:1:1"
        suffix = " (warning)" if self.level == "warning" else ""
        return f"{where}: {self.rule}: {self.text}{suffix}"
