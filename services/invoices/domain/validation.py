"""Is a supplier invoice acceptable? The EN 16931-1 business rules (profile ``en16931``) and,
for the Region as a public buyer, the mentions of CCP D2192-2 (profile ``fr-public``).

Every finding names the rule, the business term, where the term sits in the received document
and what the supplier should do. Validation fails closed: a rule that cannot be evaluated
because a value it needs is missing or unreadable is reported as an error of that rule, never
passed over.

The outcome follows Chorus Pro: « À recycler » when every error is about the recipient data
(buyer SIRET, code service, engagement or contract reference), which the supplier corrects and
resends under the same number; « Rejetée » otherwise, which calls for a new invoice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter, itemgetter
from decimal import Decimal, DecimalException
from typing import Literal

from stdnum import iban as stdnum_iban
from stdnum.fr import siret as stdnum_siret
from stdnum.fr import tva as stdnum_tva

from services.invoices.domain.codelists import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    INVOICE_TYPE_CODES,
    VAT_CATEGORY_CODES,
)
from shared.events.invoice_document import (
    AllowanceCharge,
    CanonicalInvoice,
    Line,
    VatBreakdown,
)
from shared.money import CENT, to_cents

PROFILES = ("en16931", "fr-public")

Category = Literal["recipient", "billing"]
Outcome = Literal["A_RECYCLER", "REJETEE"]
RECIPIENT: Category = "recipient"
BILLING: Category = "billing"

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # e.g. BR-CO-10, BR-S-08, FR-SIRET-SELLER
    term: str | None  # e.g. BT-112
    location: str | None  # XPath in the received document
    message: str
    category: Category = BILLING


@dataclass(frozen=True)
class ValidationReport:
    profile: str
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def outcome(self) -> Outcome | None:
        """None when valid; « À recycler » when only recipient data is wrong, else
        « Rejetée »."""
        if not self.errors:
            return None
        if all(error.category == RECIPIENT for error in self.errors):
            return "A_RECYCLER"
        return "REJETEE"


def validate(
    invoice: CanonicalInvoice, profile: str = "en16931", *, buyer_siret: str | None = None
) -> ValidationReport:
    """The findings of ``profile`` on ``invoice``. ``buyer_siret`` is the Region's SIRET, which
    ``fr-public`` compares the buyer with (required there, ignored by ``en16931``)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown validation profile {profile!r}; one of {', '.join(PROFILES)}")
    expected_buyer = None
    if profile == "fr-public":
        if buyer_siret is None:
            raise ValueError(
                "the fr-public profile needs buyer_siret, the SIRET invoices must name"
            )
        if not stdnum_siret.is_valid(buyer_siret):
            raise ValueError(f"buyer_siret {buyer_siret!r} is not a valid SIRET")
        expected_buyer = stdnum_siret.compact(buyer_siret)
    check = _Check(invoice)
    for rules in _EN16931:
        rules(check)
    if expected_buyer is not None:
        _french_public_sector(check, expected_buyer)
    return ValidationReport(profile, check.errors, check.warnings)


# --- findings ----------------------------------------------------------------------------------

TERM_NAMES = {
    "BT-1": "invoice number", "BT-2": "issue date", "BT-3": "invoice type code",
    "BT-5": "invoice currency code", "BT-9": "payment due date", "BT-10": "buyer reference "
    "(« code service »)", "BT-12": "contract reference", "BT-13": "purchase order reference "
    "(« numéro d'engagement »)", "BT-20": "payment terms", "BT-24": "specification identifier",
    "BT-27": "seller name", "BT-29": "seller identifier", "BT-30": "seller legal registration "
    "identifier", "BT-31": "seller VAT identifier", "BT-40": "seller country code",
    "BT-44": "buyer name", "BT-47": "buyer legal registration identifier",
    "BT-48": "buyer VAT identifier", "BT-55": "buyer country code", "BT-63": "seller tax "
    "representative VAT identifier", "BT-72": "actual delivery date", "BT-73": "invoicing "
    "period start date", "BT-74": "invoicing period end date", "BT-80": "deliver to country "
    "code", "BT-84": "payment account identifier (IBAN)", "BT-92": "allowance amount",
    "BT-93": "allowance base amount", "BT-95": "allowance VAT category code",
    "BT-96": "allowance VAT rate", "BT-99": "charge amount", "BT-100": "charge base amount",
    "BT-102": "charge VAT category code", "BT-103": "charge VAT rate",
    "BT-106": "sum of invoice line net amounts", "BT-107": "sum of allowances",
    "BT-108": "sum of charges", "BT-109": "total amount without VAT", "BT-110": "total VAT "
    "amount", "BT-112": "total amount with VAT", "BT-113": "paid amount", "BT-114": "rounding "
    "amount", "BT-115": "amount due for payment", "BT-116": "VAT category taxable amount",
    "BT-117": "VAT category tax amount", "BT-118": "VAT category code", "BT-119": "VAT "
    "category rate", "BT-120": "VAT exemption reason", "BT-121": "VAT exemption reason code",
    "BT-126": "line identifier", "BT-129": "invoiced quantity", "BT-130": "unit of measure "
    "code", "BT-131": "line net amount", "BT-146": "item net price", "BT-148": "item gross "
    "price", "BT-151": "item VAT category code", "BT-152": "item VAT rate",
    "BT-153": "item name", "BG-5": "seller postal address", "BG-8": "buyer postal address",
    "BG-20/BG-21": "allowance/charge indicator", "BG-23": "VAT breakdown",
    "BG-25": "invoice line",
}


def _named(term: str) -> str:
    name = TERM_NAMES.get(term)
    return f"the {name} ({term})" if name else term


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Check:
    """The invoice under validation and the findings gathered so far."""

    def __init__(self, invoice: CanonicalInvoice) -> None:
        self.invoice = invoice
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self._unreadable = [(value.term, value.location) for value in invoice.unreadable_values]
        self.groups = _Groups(invoice)
        # id of a breakdown → its VAT computed from its taxable amount and rate, and the
        # tolerance: BR-CO-17 and the category rule (BR-S-09, …) check the same computation.
        self.vat_computed: dict[int, tuple[Decimal, Decimal]] = {}

    def unreadable(self, term: str, within: str | None = None) -> bool:
        """Whether ``term`` (of the line, breakdown or allowance at ``within``) was present but
        unreadable: reported once as FORMAT-VALUE, not again as missing."""
        return any(t == term and (within is None or location.startswith(within))
                   for t, location in self._unreadable)

    def error(
        self, rule: str, term: str | None, message: str,
        item: Line | VatBreakdown | AllowanceCharge | None = None,
        *, category: Category = BILLING, location: str | None = None,
    ) -> None:
        self.errors.append(Finding(rule, term, location or self._where(term, item), message,
                                   category))

    def warn(
        self, rule: str, term: str | None, message: str,
        item: Line | VatBreakdown | AllowanceCharge | None = None,
    ) -> None:
        self.warnings.append(Finding(rule, term, self._where(term, item), message))

    def _where(self, term: str | None, item) -> str | None:
        if term is None:
            return item.location if item is not None else None
        return self.invoice.location_of(term, item)

    def compare(
        self, rule: str, term: str, stated: Decimal, expected: Decimal, tolerance: Decimal,
        explanation: Callable[[], str], item=None,
    ) -> None:
        """``stated`` must equal ``expected``; a difference within ``tolerance`` is only
        a warning (EXTENDED-CTC-FR: one cent per line summed). ``explanation`` is called only
        when there is something to say."""
        difference = stated - expected
        if not difference:
            return
        if abs(difference) <= tolerance:
            self.warn(rule, term, f"{explanation()} The difference of {difference} is within the "
                      f"tolerance of {tolerance} (one cent per line summed) and is accepted.", item)
        else:
            self.error(rule, term, f"{explanation()} Correct the amounts so that they agree "
                       f"(difference {difference}).", item)

    def cannot_check(self, rule: str, term: str, what: str, missing: Iterable[str],
                     item=None) -> None:
        names = list(dict.fromkeys(missing)) or ["a value it needs"]
        one = len(names) == 1
        self.error(rule, term, f"{what} cannot be checked because {_join(names)} "
                   f"{'is' if one else 'are'} missing or unreadable; provide "
                   f"{'it' if one else 'them'}.", item)


class _Groups:
    """Lines, allowances and charges, and breakdowns per VAT category; lines and allowances and
    charges per VAT category and rate; each in document order. Gathered in one pass, they are
    what the category rules and the VAT tolerances work on, instead of every rule filtering all
    the lines again.

    The same pass sums the line net amounts (in document order, as BR-CO-10 does), None when
    a line has none, and tells whether some line lacks a term, has a negative price, a VAT
    category outside the code list or a net amount with more than two decimals. Only then do
    the rules on lines (BR-21 … BR-28, BR-CO-04, BR-CL-18, BR-DEC-23) go through the lines one
    by one: a valid invoice is read once, not once per rule."""

    __slots__ = ("lines_of", "others_of", "breakdowns_of", "lines_at", "others_at",
                 "line_total", "lines_to_check")

    def __init__(self, invoice: CanonicalInvoice) -> None:
        lines_of: dict[str | None, list[tuple[int, Line]]] = defaultdict(list)
        lines_at: dict[tuple[str | None, Decimal | None], list[tuple[int, Line]]] = (
            defaultdict(list))
        line_total: Decimal | None = ZERO
        to_check = False
        codes = VAT_CATEGORY_CODES
        for index, line in enumerate(invoice.lines, start=1):
            (category, rate, amount, net_price, gross_price, id_, quantity, unit_code,
             name) = _LINE_FIELDS(line.__dict__)
            entry = (index, line)
            lines_of[category].append(entry)
            lines_at[category, rate].append(entry)
            if to_check:
                if line_total is not None:
                    line_total = None if amount is None else line_total + amount
                continue
            if (amount is None or category is None or id_ is None or quantity is None
                    or unit_code is None or name is None or net_price is None
                    or category not in codes or net_price < ZERO
                    or (gross_price is not None and gross_price < ZERO)
                    or (not amount.same_quantum(CENT) and _too_precise(amount))):
                to_check = True
            line_total = None if amount is None else line_total + amount
        others_of: dict[str | None, list[AllowanceCharge]] = defaultdict(list)
        others_at: dict[tuple[str | None, Decimal | None], list[AllowanceCharge]] = (
            defaultdict(list))
        for item in invoice.allowances_charges:
            others_of[item.vat_category].append(item)
            others_at[item.vat_category, item.vat_rate].append(item)
        breakdowns_of: dict[str | None, list[VatBreakdown]] = defaultdict(list)
        for breakdown in invoice.vat_breakdown:
            breakdowns_of[breakdown.category].append(breakdown)
        self.lines_of, self.others_of, self.breakdowns_of = lines_of, others_of, breakdowns_of
        self.lines_at, self.others_at = lines_at, others_at
        self.line_total, self.lines_to_check = line_total, to_check

    def line_rates(self, category: str | None) -> list[Decimal | None]:
        """The rates of the category's lines, each once (the first written of equal rates), in
        the order they first appear."""
        return [rate for line_category, rate in self.lines_at if line_category == category]

    def size(self, category: str | None, rate: Decimal | None) -> int:
        """How many lines, allowances and charges have this category and rate: the size of the
        group sets the rounding tolerance of its VAT amount."""
        key = (category, rate)
        return len(self.lines_at.get(key, ())) + len(self.others_at.get(key, ()))


# The fields of a line _Groups reads, taken from its __dict__ (where a pydantic model keeps
# them) in one call: reading a model's attributes one by one costs twice as much, which shows
# over the lines of every invoice.
_LINE_FIELDS = itemgetter("vat_category", "vat_rate", "net_amount", "net_price", "gross_price",
                          "id", "quantity", "unit_code", "name")


def _join(items: Iterable[str]) -> str:
    names = list(dict.fromkeys(items))
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _missing_and_sum(
    lines: Iterable[tuple[int, Line]]
) -> tuple[list[str], Decimal | None]:
    """The lines without a net amount, named, and the sum of the net amounts (None when one is
    missing), in one pass."""
    missing: list[str] = []
    total = ZERO
    for index, line in lines:
        amount = line.net_amount
        if amount is None:
            missing.append(f"the line net amount (BT-131) of {_line_ref(index, line)}")
        elif not missing:
            total += amount
    return missing, None if missing else total


def _line_ref(index: int, line: Line) -> str:
    return f"line {index}" + (f" (ID {line.id})" if line.id else "")


@lru_cache(maxsize=1024)
def _tolerance(count: int) -> Decimal:
    return CENT * max(count, 1)


def _amount(value: Decimal | None) -> str:
    return "missing" if value is None else str(value)


# --- EN 16931: values the parser could not read ------------------------------------------------

def _unreadable_values(c: _Check) -> None:
    for value in c.invoice.unreadable_values:
        c.error("FORMAT-VALUE", value.term,
                f"The value {value.value!r} of {_named(value.term)} cannot be read: expected "
                f"{value.expected}.", location=value.location)


# --- EN 16931: mandatory terms (BR-01 … BR-16) -------------------------------------------------

# attrgetter reads a term in C, where a lambda would be a Python call per term and invoice.
_MANDATORY: list[tuple[str, str, Callable[[CanonicalInvoice], object], str]] = [
    ("BR-01", "BT-24", attrgetter("specification_id"),
     "State the specification identifier, e.g. urn:cen.eu:en16931:2017."),
    ("BR-02", "BT-1", attrgetter("number"), "Give the invoice its unique number (CCP D2192-2 3°)."),
    ("BR-03", "BT-2", attrgetter("issue_date"), "Give the date of issue (CCP D2192-2 1°)."),
    ("BR-04", "BT-3", attrgetter("type_code"), "Give the type code, e.g. 380 for an invoice."),
    ("BR-05", "BT-5", attrgetter("currency"), "Give the currency code, e.g. EUR."),
    ("BR-06", "BT-27", attrgetter("seller.name"), "Name the seller (CCP D2192-2 2°)."),
    ("BR-07", "BT-44", attrgetter("buyer.name"), "Name the buyer (CCP D2192-2 2°)."),
    ("BR-08", "BG-5", lambda i: i.seller.address or i.seller.country,
     "Give the seller's postal address."),
    ("BR-09", "BT-40", attrgetter("seller.country"),
     "Give the country code of the seller's address, e.g. FR."),
    ("BR-10", "BG-8", lambda i: i.buyer.address or i.buyer.country,
     "Give the buyer's postal address."),
    ("BR-11", "BT-55", attrgetter("buyer.country"),
     "Give the country code of the buyer's address, e.g. FR."),
    ("BR-12", "BT-106", attrgetter("totals.line_total"), "Give the sum of the line net amounts."),
    ("BR-13", "BT-109", attrgetter("totals.tax_exclusive"),
     "Give the total amount without VAT (CCP D2192-2 9°)."),
    ("BR-14", "BT-112", attrgetter("totals.tax_inclusive"),
     "Give the total amount with VAT (CCP D2192-2 9°)."),
    ("BR-15", "BT-115", attrgetter("totals.payable"), "Give the amount due for payment."),
]


def _mandatory_terms(c: _Check) -> None:
    invoice = c.invoice
    for rule, term, value_of, advice in _MANDATORY:
        if value_of(invoice) is None and not c.unreadable(term):
            c.error(rule, term,
                    f"The invoice has no {TERM_NAMES.get(term, term)} ({term}). {advice}")
    if not invoice.lines:
        c.error("BR-16", "BG-25", "The invoice has no invoice line. List each item invoiced with "
                "its quantity, price and VAT (CCP D2192-2 7° and 8°); MINIMUM and BASIC WL "
                "Factur-X profiles carry no lines: send the EN 16931 profile.")


# --- EN 16931: code lists (BR-CL-xx) -----------------------------------------------------------

def _code_lists(c: _Check) -> None:
    invoice = c.invoice
    if invoice.type_code is not None and invoice.type_code not in INVOICE_TYPE_CODES:
        c.error("BR-CL-01", "BT-3", f"The invoice type code {invoice.type_code!r} is not an "
                "invoice or credit note code of UNTDID 1001; use e.g. 380 (invoice), 381 (credit "
                "note), 384 (corrective invoice) or 386 (prepayment invoice).")
    if invoice.currency is not None and invoice.currency not in CURRENCY_CODES:
        c.error("BR-CL-04", "BT-5", f"The currency code {invoice.currency!r} is not an ISO 4217 "
                "code; use e.g. EUR.")
    for term, country in (("BT-40", invoice.seller.country), ("BT-55", invoice.buyer.country),
                          ("BT-80", invoice.deliver_to_country)):
        if country is not None and country not in COUNTRY_CODES:
            c.error("BR-CL-14", term, f"{_capital(_named(term))} {country!r} is not an ISO "
                    "3166-1 alpha-2 country code; use e.g. FR.")
    for index, line in enumerate(invoice.lines if c.groups.lines_to_check else (), start=1):
        if line.vat_category is not None and line.vat_category not in VAT_CATEGORY_CODES:
            c.error("BR-CL-18", "BT-151", f"The VAT category {line.vat_category!r} of "
                    f"{_line_ref(index, line)} is not a UNCL5305 code accepted here "
                    f"({', '.join(sorted(VAT_CATEGORY_CODES))}).", line)
    for item in invoice.allowances_charges:
        term = "BT-102" if item.charge else "BT-95"
        if item.vat_category is not None and item.vat_category not in VAT_CATEGORY_CODES:
            c.error("BR-CL-17", term, f"The VAT category {item.vat_category!r} of the "
                    f"{_kind(item)} is not a UNCL5305 code accepted here.", item)
    for breakdown in invoice.vat_breakdown:
        if breakdown.category is not None and breakdown.category not in VAT_CATEGORY_CODES:
            c.error("BR-CL-17", "BT-118", f"The VAT breakdown category {breakdown.category!r} is "
                    "not a UNCL5305 code accepted here "
                    f"({', '.join(sorted(VAT_CATEGORY_CODES))}).", breakdown)


def _kind(item: AllowanceCharge) -> str:
    return {True: "charge", False: "allowance", None: "allowance or charge"}[item.charge]


# --- EN 16931: at most two decimals (BR-DEC-xx) ------------------------------------------------

_TOTAL_TERMS = {
    "line_total": ("BT-106", "BR-DEC-09"), "allowance_total": ("BT-107", "BR-DEC-10"),
    "charge_total": ("BT-108", "BR-DEC-11"), "tax_exclusive": ("BT-109", "BR-DEC-12"),
    "tax": ("BT-110", "BR-DEC-13"), "tax_inclusive": ("BT-112", "BR-DEC-14"),
    "prepaid": ("BT-113", "BR-DEC-16"), "rounding": ("BT-114", "BR-DEC-17"),
    "payable": ("BT-115", "BR-DEC-18"),
}


def _decimals(c: _Check) -> None:
    invoice = c.invoice

    def report(rule: str, term: str, value: Decimal, where: str = "", item=None) -> None:
        c.error(rule, term, f"{_capital(_named(term))}{where} is {value}: amounts have at most "
                "two decimals. Round it to the cent.", item)

    totals = invoice.totals
    for name, (term, rule) in _TOTAL_TERMS.items():
        value = getattr(totals, name)
        if value is not None and not value.same_quantum(CENT) and _too_precise(value):
            report(rule, term, value)
    for breakdown in invoice.vat_breakdown:
        if _too_precise(breakdown.taxable_amount):
            report("BR-DEC-19", "BT-116", breakdown.taxable_amount, _rate_label(breakdown),
                   breakdown)
        if _too_precise(breakdown.tax_amount):
            report("BR-DEC-20", "BT-117", breakdown.tax_amount, _rate_label(breakdown), breakdown)
    for index, line in enumerate(invoice.lines if c.groups.lines_to_check else (), start=1):
        if _too_precise(line.net_amount):
            report("BR-DEC-23", "BT-131", line.net_amount, f" of {_line_ref(index, line)}", line)
    for item in invoice.allowances_charges:
        amount, base = (("BR-DEC-05", "BT-99"), ("BR-DEC-06", "BT-100")) if item.charge else (
            ("BR-DEC-01", "BT-92"), ("BR-DEC-02", "BT-93"))
        if item.charge is not None and _too_precise(item.amount):
            report(*amount, item.amount, item=item)
        if item.charge is not None and _too_precise(item.base_amount):
            report(*base, item.base_amount, item=item)


def _too_precise(value: Decimal | None) -> bool:
    # The CEN schematron counts the digits written after the point, so "10.500" fails too: that
    # is the exponent of a Decimal read from the text. same_quantum answers for the amounts
    # written to the cent, nearly all of them, without building the tuple of digits.
    return value is not None and not value.same_quantum(CENT) and value.as_tuple().exponent < -2


def _rate_label(breakdown: VatBreakdown) -> str:
    rate = f" at {breakdown.rate} %" if breakdown.rate is not None else ""
    return f" of VAT category {breakdown.category or '?'}{rate}"


# --- EN 16931: lines, allowances and charges, breakdown (BR-21 … BR-48) ------------------------

# The fields are also tested at once at the head of _lines.
_LINE_TERMS = [
    ("BR-21", "BT-126", "id", "Number each line."),
    ("BR-22", "BT-129", "quantity", "State the quantity invoiced (CCP D2192-2 7°)."),
    ("BR-23", "BT-130", "unit_code", "State the unit of measure, e.g. C62 (unit) or HUR (hour)."),
    ("BR-24", "BT-131", "net_amount", "State the line net amount."),
    ("BR-25", "BT-153", "name", "Describe the item precisely (CCP D2192-2 7°)."),
    ("BR-26", "BT-146", "net_price", "State the unit price without VAT (CCP D2192-2 8°)."),
    ("BR-CO-04", "BT-151", "vat_category", "State the VAT category of the item, e.g. S for the "
     "standard rate."),
]


def _lines(c: _Check) -> None:
    if not c.groups.lines_to_check:
        return
    for index, line in enumerate(c.invoice.lines, start=1):
        # The terms of _LINE_TERMS, at once: a line usually has them all.
        if (line.id is None or line.quantity is None or line.unit_code is None
                or line.net_amount is None or line.name is None or line.net_price is None
                or line.vat_category is None):
            for rule, term, field_name, advice in _LINE_TERMS:
                if getattr(line, field_name) is None and not c.unreadable(term, line.location):
                    c.error(rule, term, f"{_capital(_line_ref(index, line))} has no "
                            f"{TERM_NAMES[term]} ({term}). {advice}", line)
        if line.net_price is not None and line.net_price < ZERO:
            c.error("BR-27", "BT-146", f"The net price of {_line_ref(index, line)} is negative "
                    f"({line.net_price}). Invoice a price reduction as an allowance, or credit it "
                    "in a credit note.", line)
        if line.gross_price is not None and line.gross_price < ZERO:
            c.error("BR-28", "BT-148", f"The gross price of {_line_ref(index, line)} is negative "
                    f"({line.gross_price}).", line)


def _allowances_charges(c: _Check) -> None:
    for item in c.invoice.allowances_charges:
        if item.charge is None:
            if not c.unreadable("BG-20/BG-21", item.location):
                c.error("FORMAT-VALUE", "BG-20/BG-21", "A document level allowance or charge has "
                        "no charge indicator: write true for a charge, false for an allowance.",
                        item)
            continue
        amount, category, reason = (
            ("BR-36", "BT-99"), ("BR-37", "BT-102"), ("BR-38", "BT-104")
        ) if item.charge else (("BR-31", "BT-92"), ("BR-32", "BT-95"), ("BR-33", "BT-97"))
        kind = _kind(item)
        if item.amount is None and not c.unreadable(amount[1], item.location):
            c.error(amount[0], amount[1], f"A document level {kind} has no amount. State it.",
                    item)
        if item.vat_category is None:
            c.error(category[0], category[1], f"A document level {kind} has no VAT category "
                    "code. State the category of the VAT it reduces or increases.", item)
        if item.reason is None and item.reason_code is None:
            c.error(reason[0], reason[1], f"A document level {kind} has neither a reason nor a "
                    "reason code. Say what it is for.", item)


def _breakdown_terms(c: _Check) -> None:
    breakdowns = c.invoice.vat_breakdown
    if not breakdowns:
        c.error("BR-CO-18", "BG-23", "The invoice has no VAT breakdown. Give, for each VAT "
                "category and rate, the taxable amount and the VAT (CCP D2192-2 9°).")
    for breakdown in breakdowns:
        for rule, term, value in (("BR-45", "BT-116", breakdown.taxable_amount),
                                  ("BR-46", "BT-117", breakdown.tax_amount),
                                  ("BR-47", "BT-118", breakdown.category)):
            if value is None and not c.unreadable(term, breakdown.location):
                c.error(rule, term, f"A VAT breakdown{_rate_label(breakdown)} has no "
                        f"{TERM_NAMES[term]} ({term}). State it.", breakdown)
        if (breakdown.rate is None and breakdown.category != "O"
                and not c.unreadable("BT-119", breakdown.location)):
            c.error("BR-48", "BT-119", f"The VAT breakdown of category {breakdown.category or '?'}"
                    " has no rate. State the rate (0 for exempt or zero-rated supplies).",
                    breakdown)


# --- EN 16931: totals (BR-CO-10 … BR-CO-17) ----------------------------------------------------

def _totals(c: _Check) -> None:
    invoice = c.invoice
    totals = invoice.totals
    lines = invoice.lines
    line_sum = c.groups.line_total
    missing_lines = [] if line_sum is not None else _missing_and_sum(enumerate(lines, start=1))[0]
    per_line = _tolerance(len(lines))

    # BR-CO-10: BT-106 = Σ BT-131.
    if totals.line_total is None or line_sum is None:
        c.cannot_check("BR-CO-10", "BT-106", "The sum of line net amounts (BT-106)",
                       (["BT-106"] if totals.line_total is None else []) + missing_lines)
    else:
        c.compare("BR-CO-10", "BT-106", totals.line_total, line_sum, per_line,
                  lambda: f"The sum of line net amounts (BT-106) is {totals.line_total} but the "
                  f"{len(lines)} line net amounts (BT-131) add up to {line_sum}.")

    unknown = [item for item in invoice.allowances_charges if item.charge is None]
    sums = {}
    for charge, rule, term, item_term, stated in (
        (False, "BR-CO-11", "BT-107", "BT-92", totals.allowance_total),
        (True, "BR-CO-12", "BT-108", "BT-99", totals.charge_total),
    ):
        items = [item for item in invoice.allowances_charges if item.charge is charge]
        label = "allowances" if not charge else "charges"
        blockers = ["the charge indicator of a document level allowance or charge"] * bool(unknown)
        blockers += [f"the amount ({item_term}) of a document level {label[:-1]}"
                     for item in items if item.amount is None]
        if blockers:
            c.cannot_check(rule, term, f"The sum of {label} ({term})", blockers)
            continue
        total = sum((item.amount for item in items), ZERO)
        sums[charge] = total
        if stated is None:
            if items:
                c.error(rule, term, f"The invoice has {len(items)} document level {label} "
                        f"adding up to {total} but no sum of {label} ({term}). State it.")
            continue
        c.compare(rule, term, stated, total, _tolerance(len(items)),
                  lambda: f"The sum of {label} ({term}) is {stated} but the document level "
                  f"{label} add up to {total}.")

    # BR-CO-13: BT-109 = Σ BT-131 − BT-107 + BT-108.
    allowance_total = totals.allowance_total or ZERO
    charge_total = totals.charge_total or ZERO
    if totals.tax_exclusive is None or line_sum is None:
        c.cannot_check("BR-CO-13", "BT-109", "The total amount without VAT (BT-109)",
                       (["BT-109"] if totals.tax_exclusive is None else []) + missing_lines)
    else:
        expected = line_sum - allowance_total + charge_total
        c.compare("BR-CO-13", "BT-109", totals.tax_exclusive, expected, per_line,
                  lambda: f"The total amount without VAT (BT-109) is {totals.tax_exclusive} but "
                  f"the line net amounts ({line_sum}) minus allowances ({allowance_total}) plus "
                  f"charges ({charge_total}) make {expected}.")

    # BR-CO-14: BT-110 = Σ BT-117.
    breakdowns = invoice.vat_breakdown
    missing_tax = [f"the VAT amount (BT-117){_rate_label(b)}"
                   for b in breakdowns if b.tax_amount is None]
    tax_sum = None if missing_tax else sum((b.tax_amount for b in breakdowns), ZERO)
    tax = totals.tax
    if tax_sum is None:
        c.cannot_check("BR-CO-14", "BT-110", "The total VAT amount (BT-110)", missing_tax)
    elif tax is None:
        if tax_sum:
            c.error("BR-CO-14", "BT-110", f"The invoice has no total VAT amount (BT-110) while "
                    f"its VAT breakdown amounts to {tax_sum}. State the total VAT.")
        elif not c.unreadable("BT-110"):
            tax = ZERO  # no VAT at all: EN 16931 lets BT-110 be left out
    else:
        c.compare("BR-CO-14", "BT-110", tax, tax_sum, _tolerance(len(breakdowns)),
                  lambda: f"The total VAT amount (BT-110) is {tax} but the VAT breakdown amounts "
                  f"(BT-117) add up to {tax_sum}.")

    # BR-CO-15: BT-112 = BT-109 + BT-110.
    if totals.tax_inclusive is None or totals.tax_exclusive is None or tax is None:
        c.cannot_check("BR-CO-15", "BT-112", "The total amount with VAT (BT-112)", [
            term for term, value in (("BT-112", totals.tax_inclusive),
                                     ("BT-109", totals.tax_exclusive), ("BT-110", tax))
            if value is None])
    else:
        expected = totals.tax_exclusive + tax
        c.compare("BR-CO-15", "BT-112", totals.tax_inclusive, expected, ZERO,
                  lambda: f"The total amount with VAT (BT-112) is {totals.tax_inclusive} but the "
                  f"total without VAT ({totals.tax_exclusive}) plus VAT ({tax}) make {expected}.")

    # BR-CO-16: BT-115 = BT-112 − BT-113 + BT-114.
    prepaid = totals.prepaid or ZERO
    rounding = totals.rounding or ZERO
    if totals.payable is None or totals.tax_inclusive is None:
        c.cannot_check("BR-CO-16", "BT-115", "The amount due for payment (BT-115)", [
            term for term, value in (("BT-115", totals.payable),
                                     ("BT-112", totals.tax_inclusive)) if value is None])
    else:
        expected = totals.tax_inclusive - prepaid + rounding
        c.compare("BR-CO-16", "BT-115", totals.payable, expected, ZERO,
                  lambda: f"The amount due (BT-115) is {totals.payable} but the total with VAT "
                  f"({totals.tax_inclusive}) minus the paid amount ({prepaid}) plus rounding "
                  f"({rounding}) make {expected}.")

    # BR-CO-17: BT-117 = BT-116 × BT-119 / 100, rounded to the cent. VAT computed line by line
    # then summed may differ from VAT computed on the total by up to half a cent per line.
    for breakdown in breakdowns:
        if breakdown.category == "O" and breakdown.rate is None:
            continue
        _check_tax_computation(c, "BR-CO-17", breakdown)


def _check_tax_computation(c: _Check, rule: str, breakdown: VatBreakdown) -> None:
    taxable, tax, rate = breakdown.taxable_amount, breakdown.tax_amount, breakdown.rate
    if taxable is None or tax is None or rate is None:
        missing = [term for term, value in (("BT-116", taxable), ("BT-117", tax),
                                            ("BT-119", rate)) if value is None]
        c.cannot_check(rule, "BT-117", f"The VAT amount{_rate_label(breakdown)}", missing,
                       breakdown)
        return
    computed = c.vat_computed.get(id(breakdown))
    if computed is None:
        try:
            vat = to_cents(taxable * rate / 100)
        except DecimalException:  # no cent exists within the 28 digits amounts are computed to
            c.error(rule, "BT-117", f"The VAT amount{_rate_label(breakdown)} cannot be checked "
                    f"because {taxable} × {rate} % has more digits than amounts are computed "
                    "with (28). Check the taxable amount (BT-116) and the rate (BT-119).",
                    breakdown)
            return
        computed = c.vat_computed[id(breakdown)] = (
            vat, _tolerance(c.groups.size(breakdown.category, rate)))
    expected, tolerance = computed
    c.compare(rule, "BT-117", tax, expected, tolerance,
              lambda: f"The VAT amount{_rate_label(breakdown)} is {tax} but {taxable} × {rate} % "
              f"is {expected}.", breakdown)


# --- EN 16931: VAT categories (BR-S, BR-Z, BR-E, BR-AE, BR-IC, BR-G, BR-O, BR-AF, BR-AG) -------

@dataclass(frozen=True)
class _Family:
    """How one VAT category is ruled. The rules of each family are numbered alike:
    -01 breakdown present, -02/-03/-04 identifiers for lines/allowances/charges, -05/-06/-07
    rate of lines/allowances/charges, -08 taxable amount, -09 tax amount, -10 exemption reason."""

    prefix: str
    label: str
    line_rate: str  # "positive" | "zero" | "non-negative" | "absent"
    other_rate: str  # the same for document level allowances and charges
    per_rate: bool  # one breakdown per rate (S, L, M) or exactly one breakdown (the others)
    seller_ids: tuple[str, ...]  # one of these is required
    buyer_ids: tuple[str, ...]  # one of these is required as well
    forbids_vat_ids: bool  # O: outside the scope of VAT, no party gives a VAT identifier
    exemption: bool  # a VAT exemption reason is required (True) or forbidden (False)
    zero_tax: bool


_FAMILIES = {
    "S": _Family("BR-S", "Standard rated", "positive", "positive", True,
                 ("BT-31", "BT-32", "BT-63"), (), False, False, False),
    "Z": _Family("BR-Z", "Zero rated", "zero", "zero", False,
                 ("BT-31", "BT-32", "BT-63"), (), False, False, True),
    "E": _Family("BR-E", "Exempt from VAT", "zero", "zero", False,
                 ("BT-31", "BT-32", "BT-63"), (), False, True, True),
    "AE": _Family("BR-AE", "Reverse charge", "zero", "zero", False,
                  ("BT-31", "BT-32", "BT-63"), ("BT-48", "BT-47"), False, True, True),
    "K": _Family("BR-IC", "Intra-community supply", "zero", "zero", False,
                 ("BT-31", "BT-63"), ("BT-48",), False, True, True),
    "G": _Family("BR-G", "Export outside the EU", "zero", "zero", False,
                 ("BT-31", "BT-63"), (), False, True, True),
    "O": _Family("BR-O", "Not subject to VAT", "absent", "absent", False,
                 (), (), True, True, True),
    "L": _Family("BR-AF", "IGIC, Canary Islands", "positive", "non-negative", True,
                 ("BT-31", "BT-32", "BT-63"), (), False, False, False),
    "M": _Family("BR-AG", "IPSI, Ceuta and Melilla", "non-negative", "non-negative", True,
                 ("BT-31", "BT-32", "BT-63"), (), False, False, False),
}

_RATE_ADVICE = {
    "positive": "must be greater than zero",
    "zero": "must be 0",
    "non-negative": "must be 0 or greater",
    "absent": "must not be given",
}


def _rate_ok(rate: Decimal | None, expected: str) -> bool:
    if expected == "absent":
        return rate is None
    if rate is None:
        return False
    if expected == "positive":
        return rate > 0
    if expected == "zero":
        return rate == 0
    return rate >= 0


def _identifiers_present(invoice: CanonicalInvoice) -> dict[str, bool]:
    return {
        "BT-31": invoice.seller.vat_id is not None,
        "BT-32": invoice.seller.tax_registration_id is not None,
        "BT-63": invoice.tax_representative_vat_id is not None,
        "BT-48": invoice.buyer.vat_id is not None,
        "BT-47": invoice.buyer.legal_registration_id is not None,
    }


def _vat_categories(c: _Check) -> None:
    invoice = c.invoice
    has = _identifiers_present(invoice)
    groups = c.groups
    lines_of, others_of, breakdowns_of = groups.lines_of, groups.others_of, groups.breakdowns_of
    for code, family in _FAMILIES.items():
        lines, others, own = lines_of.get(code), others_of.get(code), breakdowns_of.get(code)
        if not lines and not others and not own:
            continue
        lines, others, own = lines or [], others or [], own or []
        p = family.prefix

        # -01: the category has its breakdown.
        if lines or others:
            if not own:
                c.error(f"{p}-01", "BT-118", f"Lines, allowances or charges use VAT category "
                        f"{code} ({family.label}) but the VAT breakdown has no category {code}. "
                        "Add it.")
            elif not family.per_rate and len(own) > 1:
                c.error(f"{p}-01", "BT-118", f"The VAT breakdown has {len(own)} entries of "
                        f"category {code} ({family.label}); it must have exactly one.", own[1])

        # -02/-03/-04: the identifiers the category requires (or, for O, forbids).
        for number, present, what in ((2, bool(lines), "an invoice line"),
                                      (3, any(o.charge is False for o in others),
                                       "a document level allowance"),
                                      (4, any(o.charge for o in others),
                                       "a document level charge")):
            if not present:
                continue
            rule = f"{p}-{number:02d}"
            if family.forbids_vat_ids:
                given = [t for t in ("BT-31", "BT-63", "BT-48") if has[t]]
                if given:
                    c.error(rule, given[0], f"The invoice has {what} not subject to VAT "
                            f"(category O) but gives {_join(_named(t) for t in given)}; an "
                            "invoice outside the scope of VAT carries no VAT identifier.")
                continue
            if family.seller_ids and not any(has[t] for t in family.seller_ids):
                c.error(rule, "BT-31", f"The invoice has {what} in VAT category {code} "
                        f"({family.label}) but no seller VAT identifier (BT-31"
                        + (", BT-32" if "BT-32" in family.seller_ids else "")
                        + " or BT-63). Give the seller's VAT number.")
            if family.buyer_ids and not any(has[t] for t in family.buyer_ids):
                alternatives = " or legal registration identifier (BT-47)" if (
                    "BT-47" in family.buyer_ids) else ""
                c.error(rule, "BT-48", f"The invoice has {what} in VAT category {code} "
                        f"({family.label}) but no buyer VAT identifier (BT-48){alternatives}. "
                        "Give the buyer's VAT number.")

        # -05/-06/-07: rates. The lines are gone through only when one of their rates is
        # wrong; most invoices use a few rates over many lines.
        if any(not _rate_ok(rate, family.line_rate) for rate in groups.line_rates(code)):
            for index, line in lines:
                if not _rate_ok(line.vat_rate, family.line_rate) and not c.unreadable(
                        "BT-152", line.location):
                    c.error(f"{p}-05", "BT-152", f"The VAT rate of {_line_ref(index, line)} is "
                            f"{_amount(line.vat_rate)}; in category {code} ({family.label}) it "
                            f"{_RATE_ADVICE[family.line_rate]}.", line)
        for item in others:
            if item.charge is None:
                continue
            term = "BT-103" if item.charge else "BT-96"
            if not _rate_ok(item.vat_rate, family.other_rate) and not c.unreadable(
                    term, item.location):
                c.error(f"{p}-{7 if item.charge else 6:02d}", term, f"The VAT rate of a document "
                        f"level {_kind(item)} is {_amount(item.vat_rate)}; in category {code} "
                        f"({family.label}) it {_RATE_ADVICE[family.other_rate]}.", item)

        # -08, -09, -10: each breakdown of the category.
        for breakdown in own:
            _check_taxable(c, family, breakdown, lines, others)
            if family.zero_tax:
                if breakdown.tax_amount is not None and breakdown.tax_amount != 0:
                    c.error(f"{p}-09", "BT-117", f"The VAT amount of category {code} "
                            f"({family.label}) is {breakdown.tax_amount}; it must be 0.",
                            breakdown)
            else:
                _check_tax_computation(c, f"{p}-09", breakdown)
            has_reason = breakdown.exemption_reason or breakdown.exemption_reason_code
            if family.exemption and not has_reason:
                c.error(f"{p}-10", "BT-120", f"The VAT breakdown of category {code} "
                        f"({family.label}) gives no exemption reason. State it (BT-120), or its "
                        "code (BT-121), e.g. the article of the CGI or of Directive 2006/112/EC.",
                        breakdown)
            elif not family.exemption and has_reason:
                c.error(f"{p}-10", "BT-120", f"The VAT breakdown of category {code} "
                        f"({family.label}) gives an exemption reason, which only exempt, "
                        "reverse-charge, intra-community, export or out-of-scope supplies "
                        "carry. Remove it.", breakdown)

        # -08 also when lines, allowances or charges of a rate have no breakdown of that rate.
        if family.per_rate and own:
            covered = {b.rate for b in own}
            used = [*groups.line_rates(code), *(item.vat_rate for item in others)]
            for rate in dict.fromkeys(used):
                if rate is not None and rate not in covered:
                    c.error(f"{p}-08", "BT-116", f"Items of VAT category {code} use the rate "
                            f"{rate} % but the VAT breakdown has no entry for that rate. Add one.")

    _not_subject_exclusive(c)
    _intra_community(c)


def _check_taxable(c: _Check, family: _Family, breakdown: VatBreakdown,
                   lines: list[tuple[int, Line]], others: list[AllowanceCharge]) -> None:
    """-08: the taxable amount is the lines plus charges minus allowances of its category
    (``lines`` and ``others``) and, for S, L and M, of its rate."""
    rule = f"{family.prefix}-08"
    if family.per_rate:
        key = (breakdown.category, breakdown.rate)
        group_lines = c.groups.lines_at.get(key, [])
        group_others = c.groups.others_at.get(key, [])
    else:
        group_lines, group_others = lines, others
    missing, expected = _missing_and_sum(group_lines)
    missing += [f"the amount of a document level {_kind(item)}"
                for item in group_others if item.amount is None or item.charge is None]
    if breakdown.taxable_amount is None:
        missing.insert(0, "BT-116")
    if missing:
        c.cannot_check(rule, "BT-116", f"The taxable amount{_rate_label(breakdown)}", missing,
                       breakdown)
        return
    expected += sum((item.amount if item.charge else -item.amount for item in group_others), ZERO)
    c.compare(rule, "BT-116", breakdown.taxable_amount, expected,
              _tolerance(len(group_lines) + len(group_others)),
              lambda: f"The taxable amount{_rate_label(breakdown)} is {breakdown.taxable_amount} "
              "but the lines plus charges minus allowances of that category"
              f"{' and rate' if family.per_rate else ''} make {expected}.",
              breakdown)


def _not_subject_exclusive(c: _Check) -> None:
    """BR-O-11 … BR-O-14: an invoice outside the scope of VAT has nothing else."""
    invoice = c.invoice
    not_subject = [b for b in invoice.vat_breakdown if b.category == "O"]
    if not not_subject:
        return
    if len(invoice.vat_breakdown) > len(not_subject):
        c.error("BR-O-11", "BT-118", "The VAT breakdown has category O (not subject to VAT) "
                "and other categories; an invoice outside the scope of VAT has only category O.",
                not_subject[0])
    for index, line in enumerate(invoice.lines, start=1):
        if line.vat_category != "O":
            c.error("BR-O-12", "BT-151", f"{_capital(_line_ref(index, line))} is in VAT "
                    f"category {line.vat_category or '?'} while the invoice is not subject to "
                    "VAT (category O).", line)
    for item in invoice.allowances_charges:
        if item.vat_category != "O" and item.charge is not None:
            rule, term = ("BR-O-14", "BT-102") if item.charge else ("BR-O-13", "BT-95")
            c.error(rule, term, f"A document level {_kind(item)} is in VAT category "
                    f"{item.vat_category or '?'} while the invoice is not subject to VAT "
                    "(category O).", item)


def _intra_community(c: _Check) -> None:
    """BR-IC-11, BR-IC-12: an intra-community supply says when and where it was delivered."""
    invoice = c.invoice
    if not any(b.category == "K" for b in invoice.vat_breakdown):
        return
    if invoice.delivery_date is None and invoice.invoicing_period_start is None \
            and invoice.invoicing_period_end is None:
        c.error("BR-IC-11", "BT-72", "An intra-community supply (category K) needs the actual "
                "delivery date (BT-72) or the invoicing period (BG-14). Give one of them.")
    if invoice.deliver_to_country is None:
        c.error("BR-IC-12", "BT-80", "An intra-community supply (category K) needs the country "
                "the goods were delivered to (BT-80). Give it.")


# --- EN 16931: payment, identifiers, dates -----------------------------------------------------

def _payment_and_parties(c: _Check) -> None:
    invoice = c.invoice
    payable = invoice.totals.payable
    if payable is not None and payable > 0 and invoice.due_date is None \
            and invoice.payment_terms is None and not c.unreadable("BT-9"):
        c.error("BR-CO-25", "BT-9", f"The amount due is {payable} but the invoice gives neither "
                "a payment due date (BT-9) nor payment terms (BT-20). Give one of them (CCP "
                "D2192-2 11°).")
    seller = invoice.seller
    if seller.identifier is None and seller.legal_registration_id is None \
            and seller.vat_id is None:
        c.error("BR-CO-26", "BT-30", "The seller cannot be identified: give its SIRET (BT-29 "
                "with scheme 0009 or BT-30 with scheme 0002) or its VAT number (BT-31).")
    for term, vat_id in (("BT-31", seller.vat_id), ("BT-48", invoice.buyer.vat_id),
                         ("BT-63", invoice.tax_representative_vat_id)):
        if vat_id is not None and vat_id[:2] not in COUNTRY_CODES and vat_id[:2] != "EL":
            c.error("BR-CO-09", term, f"{_capital(_named(term))} {vat_id!r} does not start "
                    "with a country code (e.g. FR for France, EL for Greece).")
    start, end = invoice.invoicing_period_start, invoice.invoicing_period_end
    if start is not None and end is not None and end < start:
        c.error("BR-29", "BT-74", f"The invoicing period ends ({end}) before it starts "
                f"({start}).")


_EN16931: list[Callable[[_Check], None]] = [
    _unreadable_values,
    _mandatory_terms,
    _code_lists,
    _decimals,
    _lines,
    _allowances_charges,
    _breakdown_terms,
    _totals,
    _vat_categories,
    _payment_and_parties,
]


# --- France, public buyers: CCP D2192-2 --------------------------------------------------------

def _french_public_sector(c: _Check, expected_buyer: str) -> None:
    invoice = c.invoice
    seller, buyer = invoice.seller, invoice.buyer

    # D2192-2 and R123-221 Code de commerce: the SIRET of the issuer.
    if seller.siret is None:
        c.error("FR-SIRET-SELLER", "BT-30", "The invoice does not give the seller's SIRET. Give "
                "it as seller identifier (BT-29, scheme 0009) or legal registration identifier "
                "(BT-30, scheme 0002).")
    elif not stdnum_siret.is_valid(seller.siret):
        c.error("FR-SIRET-SELLER", "BT-30", f"The seller SIRET {seller.siret!r} is not a valid "
                "SIRET (14 digits with a valid check digit). Correct it.")

    # The recipient: the Region's SIRET, the code service and the engagement (Chorus Pro
    # « À recycler » covers these: the supplier corrects them and resends the same number).
    if buyer.siret is None:
        c.error("FR-SIRET-BUYER", "BT-47", "The invoice does not give the buyer's SIRET. Give "
                f"the Region's SIRET {expected_buyer} as buyer identifier (BT-46, scheme 0009) "
                "or legal registration identifier (BT-47, scheme 0002).", category=RECIPIENT)
    elif not stdnum_siret.is_valid(buyer.siret):
        c.error("FR-SIRET-BUYER", "BT-47", f"The buyer SIRET {buyer.siret!r} is not a valid "
                f"SIRET. The Region's SIRET is {expected_buyer}.", category=RECIPIENT)
    elif buyer.siret != expected_buyer:
        c.error("FR-SIRET-RECIPIENT", "BT-47", f"The invoice is addressed to SIRET "
                f"{buyer.siret}, not to the Region ({expected_buyer}). Address it to the "
                "Region's SIRET, or send it to the right buyer.", category=RECIPIENT)
    if invoice.buyer_reference is None:
        c.error("FR-CODE-SERVICE", "BT-10", "The invoice does not give the « code service » "
                "of the Region's department in charge of payment (buyer reference, BT-10; CCP "
                "D2192-2 5°). Use the code given in the order or the contract.",
                category=RECIPIENT)
    if invoice.purchase_order_reference is None and invoice.contract_reference is None:
        c.error("FR-ENGAGEMENT", "BT-13", "The invoice gives neither the « numéro "
                "d'engagement » (purchase order reference, BT-13) nor the contract reference "
                "(BT-12) (CCP D2192-2 4°). Use the number given in the order or the contract.",
                category=RECIPIENT)

    # Bank details: Chorus Pro checks the IBAN syntax (rules G1.16 to G1.19).
    if invoice.payee_iban is None:
        c.error("FR-IBAN", "BT-84", "The invoice does not give the account to pay (IBAN, "
                "BT-84). Give the IBAN registered with the Region.")
    elif not stdnum_iban.is_valid(invoice.payee_iban):
        c.error("FR-IBAN", "BT-84", f"The IBAN {invoice.payee_iban!r} is not valid (wrong "
                "length, country format or check digits). Correct it.")

    # A French VAT number is FR + 2-character key + SIREN: it must be the seller's.
    vat_id = seller.vat_id
    if vat_id is not None and vat_id.upper().startswith("FR"):
        if not stdnum_tva.is_valid(vat_id):
            c.error("FR-VAT-SELLER", "BT-31", f"The seller VAT number {vat_id!r} is not a valid "
                    "French VAT number (FR, a two-character key, then the 9-digit SIREN).")
        else:
            siren = _siren_of(seller.siret, seller.legal_registration_id)
            vat_siren = stdnum_tva.compact(vat_id)[-9:]
            if siren is not None and siren != vat_siren:
                c.error("FR-SIREN-VAT", "BT-31", f"The seller VAT number {vat_id} belongs to "
                        f"SIREN {vat_siren}, but the seller's SIRET/SIREN is {siren}. Give the "
                        "VAT number of the invoicing company.")


def _siren_of(siret: str | None, legal_id: str | None) -> str | None:
    if siret is not None and stdnum_siret.is_valid(siret):
        return siret[:9]
    if legal_id is not None:
        compact = legal_id.replace(" ", "")
        if len(compact) == 9 and compact.isdigit():
            return compact
    return None
