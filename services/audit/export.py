"""Export of the log for a period, as CSV or JSON lines, streamed from a server-side cursor: a
few thousand rows in memory at a time, whatever the period holds.

Each line carries every hashed field and the record's hash (hex): with the rows of a chain in
``seq`` order, anyone can recompute the chain from the export alone
(``services/audit/domain/chain.py`` says how).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import datetime
from typing import AsyncIterator

import asyncpg

from services.audit import store

FORMATS = ("csv", "jsonl")
HEADER = ("id",) + store.COLUMNS
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _cell(name: str, value) -> str | int | None:
    if value is None:
        return None
    if name == "hash":
        return value.hex()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    if name == "subjects":
        return list(value)
    if name in ("event_id", "causation_id"):
        return str(value)
    return value


def jsonl_line(row: asyncpg.Record) -> str:
    # The payload is jsonb text from PostgreSQL: valid JSON, inserted as it is, not re-parsed.
    fields = {name: _cell(name, row[name]) for name in HEADER if name != "payload"}
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return f'{body[:-1]},"payload":{row["payload"] if row["payload"] is not None else "null"}}}\n'


def _csv_row(row: asyncpg.Record) -> list:
    cells = []
    for name in HEADER:
        value = _cell(name, row[name])
        if name == "subjects":
            value = json.dumps(value, ensure_ascii=False)
        cells.append("" if value is None else value)
    return cells


async def stream(conn: asyncpg.Connection, start: datetime | None, end: datetime | None,
                 fmt: str) -> AsyncIterator[str]:
    """The export as text chunks (one per fetched batch of rows)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(HEADER)
            yield buffer.getvalue()
        async for rows in store.export_rows(conn, start, end):
            if fmt == "jsonl":
                yield "".join(jsonl_line(row) for row in rows)
            else:
                buffer.seek(0)
                buffer.truncate()
                writer.writerows(_csv_row(row) for row in rows)
                yield buffer.getvalue()
