"""``genlab datasets``: list the built-in datasets."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from genlab.data.registry import describe, names


def datasets() -> None:
    """List the built-in datasets; any .npy/.npz/.csv file or image folder works too."""
    table = Table("name", "description")
    for name in names():
        table.add_row(name, describe(name))
    console = Console()
    console.print(table)
    console.print("Also: a .npy/.npz/.csv file of points, or a folder of PNG/JPEG images (sub-folders = labels).")
