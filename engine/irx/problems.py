"""A problem found in a file: where, which rule, what, how bad."""

from __future__ import annotations

from dataclasses import dataclass
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

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line else f"{self.path}:1:1"
        suffix = " (warning)" if self.level == "warning" else ""
        return f"{where}: {self.rule}: {self.message}{suffix}"
