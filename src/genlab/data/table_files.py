"""Reading CSV tables: encoding and delimiter sniffed, malformed files refused with one clear error."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from genlab.errors import DataError

#: Encodings tried in order when none is given.
_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


def read_table(path: str | Path, *, delimiter: str | None = None, encoding: str | None = None,
               strict: bool = False) -> pd.DataFrame:
    """Read a CSV file with a header row into a DataFrame; empty fields become missing values.

    Without ``encoding`` the first of UTF-8 (with or without BOM), cp1252 and Latin-1 that decodes the
    whole file is used; without ``delimiter`` it is sniffed among ``, ; tab |`` (``csv.Sniffer``),
    falling back to a comma. With ``strict``, a header without data rows, a row whose number of
    fields differs from the header's, or a repeated column name is a DataError (pandas would
    otherwise take extra fields as an index or rename the column).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"table file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if encoding is None:
        for encoding in _ENCODINGS:
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    else:
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as error:
            raise DataError(f"table file {str(path)!r} cannot be read as {encoding!r} ({error})") from None
    if not text.strip():
        raise DataError(f"table file {str(path)!r} is empty")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    if strict:
        _check_rectangular(path, text, delimiter)
    try:
        return pd.read_csv(path, sep=delimiter, encoding=encoding, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"table file {str(path)!r} is not a valid CSV file ({error})") from None


def _check_rectangular(path: Path, text: str, delimiter: str) -> None:
    """DataError for a header-only table, a ragged row or a repeated column name (1-based line numbers)."""
    rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter,
                                                                    skipinitialspace=True), start=1) if row]
    header = rows[0][1]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"table file {str(path)!r} repeats the column name(s) {', '.join(map(repr, repeated))}")
    if len(rows) == 1:
        raise DataError(f"table file {str(path)!r} has a header row but no data rows")
    for number, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"table file {str(path)!r}: line {number} has {len(row)} fields but the header has "
                            f"{len(header)} (delimiter {delimiter!r})")


def is_table_file(path: str | Path) -> bool:
    """Whether a CSV file is a mixed table rather than numbers: its sniffed delimiter is not a comma, or
    some column holds values and not one number. A file that cannot be read as a table is not one."""
    try:
        table = read_table(path)
    except DataError:
        return False
    if len(table) == 0:
        return False
    for name in table.columns:
        present = table[name].dropna()
        if len(present) and pd.to_numeric(present.astype(str).str.strip(), errors="coerce").isna().all():
            return True
    try:
        by_comma = read_table(path, delimiter=",")
    except DataError:
        return True
    return by_comma.shape[1] != table.shape[1]
