"""Rows printed as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any


def print_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    """Print ``rows`` as a table (rich), JSON or CSV: ``--format`` of ``runs`` and ``study``."""
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["run"]
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    # Piped, the table keeps its natural width rather than being cut to 80 columns.
    Console(width=None if sys.stdout.isatty() else 10_000).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
