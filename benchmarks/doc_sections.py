"""Write one benchmark's marked section of a Markdown page, leaving the rest of the page as it is.

Several benchmarks share a page (``benchmarks/molecules.py`` and ``benchmarks/music.py`` write
``docs/molecules_music.md``): each owns the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` and
rewrites only that; a page without the section gets it appended.
"""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, name: str, markdown: str) -> None:
    """Replace section ``name`` of the page at ``path`` by ``markdown`` (append it when absent)."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    page = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in page and end in page:
        head, rest = page.split(begin, 1)
        page = head + block + rest.split(end, 1)[1]
    else:
        page = page.rstrip("\n") + ("\n\n" if page else "") + block + "\n"
    path.write_text(page, encoding="utf-8")
