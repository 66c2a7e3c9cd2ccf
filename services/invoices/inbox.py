"""The watched inbox folder, where an SFTP/EDI flow drops supplier documents.

Layout under the inbox: ``incoming/`` (writers drop files there, ideally by rename; names
starting with ``.`` or ending in ``.part``/``.tmp`` are still being written and are left alone),
``work/`` (claimed), ``processed/`` (validated) and ``rejected/`` (with ``<name>.reasons.json``
beside each file). A file is claimed by an atomic rename into ``work/``, so among several
replicas watching the same folder exactly one takes it; after a crash the files left in
``work/`` are taken again, and their content hash makes the second receipt a no-op.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

from services.invoices import store
from services.invoices.formats import MAX_DOCUMENT_BYTES
from services.invoices.intake import Intake
from shared.consumer import INFRASTRUCTURE_ERRORS
from shared.logging import get_logger

log = get_logger("inbox")
IN_PROGRESS_SUFFIXES = (".part", ".tmp")


class InboxWatcher:
    def __init__(self, root: Path, intake: Intake, poll_seconds: float) -> None:
        self.root = root
        self.intake = intake
        self.poll_seconds = poll_seconds
        self.incoming, self.work = root / "incoming", root / "work"
        self.processed, self.rejected = root / "processed", root / "rejected"

    def prepare(self) -> None:
        for folder in (self.incoming, self.work, self.processed, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)

    async def run(self) -> None:
        self.prepare()
        for claimed in sorted(self.work.iterdir()):
            await self._take(claimed)
        while True:
            for claimed in self._claim_new():
                await self._take(claimed)
            await asyncio.sleep(self.poll_seconds)

    def _claim_new(self) -> list[Path]:
        claimed = []
        for path in sorted(self.incoming.iterdir(), key=lambda p: p.stat().st_mtime if p.exists() else 0):
            if path.name.startswith(".") or path.name.endswith(IN_PROGRESS_SUFFIXES) or not path.is_file():
                continue
            target = self.work / f"{uuid.uuid4().hex[:12]}--{path.name}"
            try:
                os.rename(path, target)
            except FileNotFoundError:
                continue  # another replica took it first
            claimed.append(target)
        return claimed

    async def _take(self, claimed: Path) -> None:
        original = claimed.name.split("--", 1)[-1]
        size = claimed.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            self._settle(claimed, original, self.rejected, {
                "status": "REJETEE", "stored": False,
                "reasons": [{"rule": "DOC-too_large", "message":
                             f"the file is {size} bytes; documents above {MAX_DOCUMENT_BYTES} bytes are refused"}]})
            return
        while True:
            try:
                receipt = await self.intake.receive(claimed.read_bytes(), "inbox", original)
                break
            except INFRASTRUCTURE_ERRORS as exc:
                log.warning("inbox file kept for a retry", file=original, error=repr(exc))
                await asyncio.sleep(self.poll_seconds * 5)
        if receipt.status == "validated":
            self._settle(claimed, original, self.processed, None)
            return
        async with self.intake.pool.acquire() as conn:
            row = await store.find_invoice(conn, receipt.invoice_id)
        self._settle(claimed, original, self.rejected, {
            "invoice_id": str(receipt.invoice_id), "status": row["status"], "stored": True,
            "reasons": json.loads(row["reasons"]),
        })

    def _settle(self, claimed: Path, original: str, folder: Path, reasons: dict | None) -> None:
        target = folder / original
        if target.exists():
            target = folder / f"{original}.{uuid.uuid4().hex[:8]}"
        if reasons is not None:
            Path(f"{target}.reasons.json").write_text(json.dumps(reasons, indent=2, ensure_ascii=False))
        os.rename(claimed, target)
        log.info("inbox file settled", file=original, folder=folder.name)
