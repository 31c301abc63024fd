"""The guide's settings table, generated from LRConfig's declarations (lrlib/config.py `knob`).

    python tools/knobs.py           # print the table
    python tools/knobs.py --write   # put it between the markers in lrlib/README.md
"""
from __future__ import annotations

import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "lrlib" / "README.md"
BEGIN, END = "<!-- knobs:begin -->", "<!-- knobs:end -->"


def table() -> str:
    from lrlib.config import knobs_table
    return knobs_table(markdown=True)


def with_table(text: str) -> str:
    """`text` with the generated table between the markers (which must both be there)."""
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:a] + "\n" + table() + "\n" + text[b:]


if __name__ == "__main__":
    if "--write" in sys.argv:
        GUIDE.write_text(with_table(GUIDE.read_text()))
        print(f"wrote the settings table into {GUIDE}")
    else:
        print(table())
