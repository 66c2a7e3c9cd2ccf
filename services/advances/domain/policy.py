"""The advance rate policies: which rate the Region applies, versioned and dated.

A policy is a small immutable record; changing a rate means adding a version, never editing
one, so every ``AdvanceGranted`` can name the version it was computed with.

The SME rates rest on one assumption about the buyer: R2191-7 3° raises the SME minimum to
10 % for « collectivités territoriales … dont les dépenses réelles de fonctionnement … au
titre de l'avant-dernier exercice clos sont supérieures à 60 millions d'euros ». The
Hauts-de-France Region is far above that threshold (operating budget 2.067 bn€ in 2017,
2.727 bn€ in 2024; domain-rules.md §3.2), so its legal SME minimum is 10 %, not 5 %. A buyer
below 60 M€ would need its own policy table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# R2191-7 3°: the buyer is a local authority whose real operating expenses exceed 60 M€.
REGION_IS_LARGE_LOCAL_AUTHORITY = True
LARGE_LOCAL_AUTHORITY_SOURCE = (
    "R2191-7 3° (décret 2019-1344, then 2024-1251): SME minimum 10 % for a local authority "
    "with real operating expenses above 60 M€; Hauts-de-France: 2.067 bn€ (2017), "
    "2.727 bn€ (2024)"
)


@dataclass(frozen=True)
class Policy:
    """One version of an advance rate policy; rates are percentages of the R2191-7 base."""

    name: str
    version: str
    effective_from: date
    standard_rate_pct: Decimal
    sme_rate_pct: Decimal
    source: str

    def rate_pct(self, sme: bool) -> Decimal:
        return self.sme_rate_pct if sme else self.standard_rate_pct


class UnknownPolicy(ValueError):
    """No policy of that name (or none in force on the date asked)."""


POLICIES: tuple[Policy, ...] = (
    Policy(
        name="legal-minimum",
        version="legal-minimum-2019",
        # Décret 2019-1344 raised the SME minimum of large local authorities to 10 % from
        # 1 January 2020; before that the minimum was 5 % for every holder.
        effective_from=date(2020, 1, 1),
        standard_rate_pct=Decimal("5"),
        sme_rate_pct=Decimal("10"),
        source="R2191-7 as modified by décret 2019-1344; " + LARGE_LOCAL_AUTHORITY_SOURCE,
    ),
    Policy(
        name="legal-minimum",
        version="legal-minimum-2024",
        # Same minimums, restated by décret 2024-1251 for consultations from 1 January 2025.
        effective_from=date(2025, 1, 1),
        standard_rate_pct=Decimal("5"),
        sme_rate_pct=Decimal("10"),
        source="R2191-7 as modified by décret 2024-1251; " + LARGE_LOCAL_AUTHORITY_SOURCE,
    ),
    Policy(
        name="doubled",
        version="doubled-2017",
        # The plenary vote of 30 March 2017 doubled the 5 % legal minimum to 10 %. The SME
        # rate doubles today's 10 % SME minimum (R2191-7 3°) to 20 %: no regional SME rate was
        # published, so this is the system's default reading of « doubled » (domain-rules.md
        # §3.6 and §6).
        effective_from=date(2017, 3, 30),
        standard_rate_pct=Decimal("10"),
        sme_rate_pct=Decimal("20"),
        source="Hauts-de-France purchasing policy voted 30 March 2017 (advances doubled to "
        "10 %); SME 20 % = the R2191-7 3° minimum doubled",
    ),
)

POLICY_NAMES: tuple[str, ...] = tuple(dict.fromkeys(policy.name for policy in POLICIES))


def policy_named(name: str, on: date | None = None) -> Policy:
    """The version of policy ``name`` in force on ``on`` (the latest version when ``on`` is
    None). ``name`` may also be an exact version string such as ``doubled-2017``."""
    for policy in POLICIES:
        if policy.version == name:
            return policy
    versions = sorted(
        (policy for policy in POLICIES if policy.name == name), key=lambda p: p.effective_from
    )
    if not versions:
        raise UnknownPolicy(
            f"unknown advance policy {name!r}: use one of {', '.join(POLICY_NAMES)}"
        )
    if on is not None:
        versions = [policy for policy in versions if policy.effective_from <= on]
        if not versions:
            raise UnknownPolicy(
                f"no version of the advance policy {name!r} is in force on {on.isoformat()}"
            )
    return versions[-1]
