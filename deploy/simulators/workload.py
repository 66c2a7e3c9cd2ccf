"""The demo's workload, planned ahead and reproducible from a seed: the Region's contracts and
their suppliers, the budget commitments, and each supplier invoice with the day it is sent, its
channel and format, what is wrong with it (about 5 %), and what the people and the counterparty
will do with it (certify and approve after some days, interrupt it, pay it late, reject a
transfer). The demo plays this plan day by day; the end-to-end test plays a smaller one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from stdnum import iban as stdnum_iban

from deploy.simulators import suppliers
from deploy.simulators.suppliers import Line, make_siret
from shared.money import to_cents

KINDS = ("works", "supplies", "services")
CHANNELS = (("http", 50), ("inbox", 30), ("kafka", 20))
FORMATS = (("cii", 45), ("ubl", 40), ("facturx", 15))
DEFECTS = ("wrong_recipient", "wrong_totals", "unreadable", "no_reference", "duplicate_number")


@dataclass(frozen=True)
class Supplier:
    siret: str
    name: str
    sme: bool
    iban: str
    vat_id: str
    corrected_iban: str  # the account it gives when a transfer to the first one is returned


@dataclass(frozen=True)
class Contract:
    contract_id: str
    supplier: Supplier
    kind: str
    amount_ht: Decimal
    amount_ttc: Decimal
    duration_months: int
    engagement: str
    service_done_automatic: bool
    advance_refused: bool = False
    advance_rate_pct: Decimal | None = None
    # The share of the contract invoiced during the demo: 1 for a finished contract.
    invoiced_share: Decimal = Decimal("0.5")

    def notification(self, notified_on: date) -> dict:
        body = {
            "contract_id": self.contract_id, "supplier_siret": self.supplier.siret,
            "supplier_name": self.supplier.name, "sme": self.supplier.sme, "contract_type": self.kind,
            "amount_ht": str(self.amount_ht), "amount_ttc": str(self.amount_ttc),
            "duration_months": self.duration_months, "notified_on": notified_on.isoformat(),
            "engagement_numbers": [self.engagement], "advance_refused": self.advance_refused,
        }
        if self.advance_rate_pct is not None:
            # Above 30 % the Region asks for a first-demand guarantee (R2191-8), received here.
            body.update(advance_rate_pct=str(self.advance_rate_pct), guarantee_required=True,
                        guarantee_received_on=notified_on.isoformat())
        return body


@dataclass(frozen=True)
class PlannedInvoice:
    number: str
    contract: Contract
    day: int
    channel: str
    format: str
    amount_ht: Decimal
    defect: str | None = None
    # Days after receipt when a person certifies the service and another approves (None: the
    # engagement certifies it and the invoice is approved automatically).
    approval_after: int | None = None
    interrupted: bool = False
    # Days the counterparty takes to pay once ordered, and whether it returns the transfer.
    payment_days: int = 3
    payment_returned: bool = False

    @property
    def amount_ttc(self) -> Decimal:
        return to_cents(self.amount_ht * Decimal("1.2"))

    def document(self, received_on: date, iban: str | None = None) -> bytes:
        """The document as the supplier sends it, paid on ``iban`` (its current account)."""
        supplier = self.contract.supplier
        overrides = dict(
            number=self.number, issue_date=received_on, due_date=received_on + timedelta(days=30),
            delivery_date=received_on - timedelta(days=2), seller_name=supplier.name,
            seller_siret=supplier.siret, seller_vat_id=supplier.vat_id, iban=iban or supplier.iban,
            engagement=self.contract.engagement, contract=self.contract.contract_id,
            lines=[Line(name=f"Marché {self.contract.contract_id} : situation de travaux et prestations",
                        quantity=Decimal("1"), unit_price=self.amount_ht)],
        )
        if self.defect == "wrong_recipient":
            overrides["buyer_siret"] = make_siret(73_282_932)
        elif self.defect == "wrong_totals":
            overrides["totals"] = {"payable": str(self.amount_ttc + Decimal("100.00"))}
        elif self.defect == "no_reference":
            overrides.update(engagement=None, contract=None)
        if self.defect == "unreadable":
            return suppliers.plain_pdf(f"Facture scannée {self.number}")
        if self.format == "ubl":
            return suppliers.ubl(**overrides)
        if self.format == "facturx":
            return suppliers.facturx_pdf(**overrides)
        return suppliers.cii(**overrides)


@dataclass
class Workload:
    start: date
    days: int
    contracts: list[Contract]
    invoices: list[PlannedInvoice]
    fraud_attempt_supplier: Supplier
    by_day: dict[int, list[PlannedInvoice]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for invoice in self.invoices:
            self.by_day.setdefault(invoice.day, []).append(invoice)

    @property
    def suppliers(self) -> list[Supplier]:
        return [c.supplier for c in self.contracts]


def french_iban(bank: int, branch: int, account: int) -> str:
    """A valid French IBAN (RIB key and IBAN check digits computed)."""
    bank_code, branch_code, account_code = f"{bank:05d}", f"{branch:05d}", f"{account:011d}"
    rib_key = 97 - ((89 * int(bank_code) + 15 * int(branch_code) + 3 * int(account_code)) % 97)
    bban = f"{bank_code}{branch_code}{account_code}{rib_key:02d}"
    return f"FR{stdnum_iban.calc_check_digits('FR00' + bban)}{bban}"


def vat_id(siret: str) -> str:
    """The French VAT number of the SIREN (key = (12 + 3 × (SIREN mod 97)) mod 97)."""
    siren = int(siret[:9])
    return f"FR{(12 + 3 * (siren % 97)) % 97:02d}{siret[:9]}"


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in weighted], weights=[w for _, w in weighted])[0]


def plan(*, contracts: int = 50, invoices: int = 2000, sending_days: int = 45, days: int = 60,
         start: date = date(2026, 3, 2), seed: int = 2026) -> Workload:
    rng = random.Random(seed)
    planned_contracts = []
    for i in range(1, contracts + 1):
        siret = make_siret(41_000_000 + i)
        supplier = Supplier(siret=siret, name=f"Entreprise régionale {i:02d}", sme=i % 3 != 0,
                            iban=french_iban(30004, 1000 + i, 10_000_000 + i), vat_id=vat_id(siret),
                            corrected_iban=french_iban(10107, 2000 + i, 20_000_000 + i))
        amount_ht = Decimal(60_000 + rng.randrange(0, 540_000, 1_000))
        planned_contracts.append(Contract(
            contract_id=f"MAR-2026-{i:03d}", supplier=supplier, kind=KINDS[i % 3], amount_ht=amount_ht,
            amount_ttc=to_cents(amount_ht * Decimal("1.2")),
            # Some last longer than 12 months: their advance is computed on 12 months' worth.
            duration_months=(4, 8, 11, 18, 24, 36)[i % 6], engagement=f"EJ-2026-{i:04d}",
            service_done_automatic=i % 4 != 0,
            advance_refused=i == 7, advance_rate_pct=Decimal("40") if i == 11 else None,
            # A third of the contracts are invoiced to the end during the demo.
            invoiced_share=Decimal("1") if i % 3 == 1 else Decimal(rng.choice(("0.35", "0.5", "0.7"))),
        ))
    per_contract = max(1, invoices // contracts)
    planned: list[PlannedInvoice] = []
    for contract in planned_contracts:
        shares = [Decimal(rng.randint(60, 140)) for _ in range(per_contract)]
        total = sum(shares)
        invoiced_ht = to_cents(contract.amount_ht * contract.invoiced_share)
        amounts = [to_cents(invoiced_ht * share / total) for share in shares]
        amounts[-1] += invoiced_ht - sum(amounts)  # the last one settles the rounding
        for j, amount in enumerate(amounts):
            # Invoices of a contract follow each other over the sending period.
            day = min(sending_days - 1, j * sending_days // per_contract + rng.randint(0, 1))
            manual = not contract.service_done_automatic or amount * Decimal("1.2") > Decimal("25000")
            # Most approvers act within a week; some let an invoice wait three weeks, and when the
            # accountant is slow too the legal 30 days are missed.
            slow_approval = manual and rng.random() < 0.15
            planned.append(PlannedInvoice(
                number=f"F{contract.contract_id[-3:]}-{j + 1:03d}", contract=contract, day=day,
                channel=_pick(rng, CHANNELS), format=_pick(rng, FORMATS), amount_ht=amount,
                approval_after=(rng.randint(18, 22) if slow_approval else rng.randint(1, 6)) if manual else None,
                interrupted=manual and not slow_approval and rng.random() < 0.05,
                payment_days=rng.randint(7, 14) if slow_approval else (
                    rng.randint(1, 8) if rng.random() > 0.05 else rng.randint(10, 14)),
                payment_returned=rng.random() < 0.015,
            ))
    # About 5 % of the documents are wrong, each in one way a supplier gets wrong in practice.
    defective = rng.sample(range(len(planned)), k=max(len(DEFECTS), len(planned) * 5 // 100))
    for n, index in enumerate(defective):
        original = planned[index]
        defect = DEFECTS[n % len(DEFECTS)]
        # A duplicate re-sends a number the supplier already used, the next day, with other content.
        duplicate = defect == "duplicate_number"
        planned.append(PlannedInvoice(
            number=original.number if duplicate else f"{original.number}-X",
            contract=original.contract, day=original.day + 1 if duplicate else original.day,
            channel=original.channel,
            format="facturx" if defect == "unreadable" else original.format,
            amount_ht=original.amount_ht + Decimal("1.00"), defect=defect))
    planned.sort(key=lambda invoice: (invoice.day, invoice.defect is not None, invoice.number))
    return Workload(start=start, days=days, contracts=planned_contracts, invoices=planned,
                    fraud_attempt_supplier=planned_contracts[0].supplier)
