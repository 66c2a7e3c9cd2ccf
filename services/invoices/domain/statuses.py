"""How the service's states read in the public vocabularies a connector reports in:
the Chorus Pro invoice status (statutFacture) and the 2026 life-cycle code (200…213)."""

from __future__ import annotations

from typing import NamedTuple


class PublicStatus(NamedTuple):
    chorus: str
    lifecycle_code: int
    label: str


PUBLIC_STATUS: dict[str, PublicStatus] = {
    "received": PublicStatus("DEPOSEE", 200, "Déposée"),
    "validated": PublicStatus("MISE_A_DISPOSITION", 203, "Mise à disposition"),
    # Both intake refusals are conformity failures seen by the platform (code 213); Chorus Pro
    # tells them apart: « À recycler » may be resent under the same number, « Rejetée » may not.
    "to_recycle": PublicStatus("A_RECYCLER", 213, "À recycler"),
    "rejected": PublicStatus("REJETEE", 213, "Rejetée"),
}

STATUS_OF_OUTCOME = {"A_RECYCLER": "to_recycle", "REJETEE": "rejected"}
