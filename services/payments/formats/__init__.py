"""Payment files: a batch of payment orders out, the counterparty's confirmations in.

A Region does not pay itself: its ordonnateur sends payment orders (« mandats ») to its public
accountant (DGFiP), who pays and reports the « mise en paiement » (the « accountant » channel,
``accountant.py``). A buyer paying from its own bank account sends a SEPA credit transfer
initiation instead (``pain.001.001.09``, ``pain001.py``) and reads its bank's debit
notifications (``camt.054``, ``camt054.py``). ``docs/payment-channels.md`` describes the files.

Pure code: bytes in, bytes out. Rendering is deterministic (every id and timestamp comes from
the batch), checks the batch before writing (``InvalidOrderBatch`` names the field) and
validates the file against its XSD before anyone can send it (``PaymentFileInvalid``).
Incoming files are untrusted: they are read with a parser that loads no DTD, resolves no
entity and touches no network, and a file that declares a DOCTYPE is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from lxml import etree
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError
from stdnum.fr import siret as stdnum_siret
from text_unidecode import unidecode

from shared.money import CENT
from shared.xml import XmlRefused, hardened_parser, parse_untrusted

Channel = Literal["accountant", "sepa"]
Kind = Literal["invoice", "advance", "interest"]

CHANNELS: tuple[Channel, ...] = ("accountant", "sepa")
KINDS: tuple[Kind, ...] = ("invoice", "advance", "interest")


@dataclass(frozen=True)
class Debtor:
    """The Region, as payer."""

    name: str
    iban: str
    bic: str | None
    siret: str


@dataclass(frozen=True)
class OrderLine:
    """One payment order: a mandate for the accountant, a credit transfer for the bank."""

    order_id: str  # unique per order attempt; <= 35 of [A-Za-z0-9-]; EndToEndId / mandate number
    payable_id: str  # "invoice:<uuid>", "advance:<contract id>", "interest:invoice:<uuid>"
    kind: Kind
    amount: Decimal  # EUR, > 0, exact to the cent
    payee_name: str
    payee_iban: str
    payee_bic: str | None
    payee_siret: str | None
    remittance: str  # what it pays (invoice number, contract); <= 140 characters once cleaned
    invoice_id: str | None
    contract_id: str | None
    legal_due: date


@dataclass(frozen=True)
class OrderBatch:
    """The orders of one payment run on one channel: one file."""

    batch_id: str  # <= 35 of [A-Za-z0-9-], e.g. "PR-20260302-SEPA-1"
    channel: Channel
    created_at: datetime  # aware
    execution_date: date  # requested execution date
    debtor: Debtor
    lines: tuple[OrderLine, ...]


@dataclass(frozen=True)
class Confirmation:
    """One executed or failed order, as the accountant or the bank reports it."""

    order_id: str | None  # None when the entry carries no reference we issued
    status: Literal["executed", "failed"]
    executed_on: date | None  # the « mise en paiement » / booking date (None for a failure)
    amount: Decimal | None
    reason: str | None  # failure reason (code + text), None when executed
    reference: str  # the counterparty's own reference for the entry
    batch_id: str | None


class InvalidOrderBatch(ValueError):
    """A batch cannot be written: ``field`` names the value (``lines[2].amount``) and the
    message says which rule it breaks and what to do. Raised before any file is produced."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PaymentFileInvalid(Exception):
    """A generated file fails its schema: it must never be sent. ``errors`` are the schema
    validator's messages, each with its line in the generated file."""

    def __init__(self, file_name: str, schema: str, errors: list[str]) -> None:
        listed = "\n".join(f"  {error}" for error in errors)
        super().__init__(
            f"{file_name} does not conform to {schema} and was not sent; fix the batch data "
            f"or the writer ({len(errors)} error(s)):\n{listed}"
        )
        self.file_name = file_name
        self.errors = tuple(errors)


class ConfirmationFileInvalid(Exception):
    """An incoming file is unreadable or not a confirmation format this service knows.
    ``reason`` is a stable code for programs, ``message`` says why and where.

    Reasons: ``empty``, ``too_large``, ``not_xml``, ``xml_forbidden_construct``,
    ``unknown_format``, ``not_a_confirmation``, ``schema``, ``bad_value``, ``missing_value``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def render(batch: OrderBatch) -> bytes:
    """The file of ``batch`` on its channel; the same batch always gives the same bytes."""
    if batch.channel == "sepa":
        return pain001.render(batch)
    if batch.channel == "accountant":
        return accountant.render(batch)
    raise InvalidOrderBatch("channel", f"{batch.channel!r} is not one of {list(CHANNELS)}.")


def file_name(batch: OrderBatch) -> str:
    """The name the file of ``batch`` is sent under, e.g. ``PR-20260302-SEPA-1.pain.001.xml``."""
    if batch.channel == "sepa":
        return pain001.file_name(batch)
    if batch.channel == "accountant":
        return accountant.file_name(batch)
    raise InvalidOrderBatch("channel", f"{batch.channel!r} is not one of {list(CHANNELS)}.")


def read_confirmations(content: bytes) -> list[Confirmation]:
    """The confirmations in a camt.054 debit notification or an accountant's answer (« compte
    rendu de mise en paiement »), in document order. The format is recognised from the root
    element's namespace, never from a file name."""
    root = read_incoming(content)
    namespace = etree.QName(root).namespace or ""
    if camt054.is_camt054(namespace):
        return camt054.read(root)
    if namespace == accountant.ANSWER_NAMESPACE:
        return accountant.read_answer(root)
    if namespace in (pain001.NAMESPACE, accountant.ORDER_NAMESPACE):
        raise ConfirmationFileInvalid(
            "not_a_confirmation",
            f"The file is a payment order file ({namespace}), not a confirmation. Import the "
            "bank's camt.054 debit notification or the accountant's answer to the orders.",
        )
    other = camt054.other_bank_message(namespace)
    what = other or f"root element <{etree.QName(root).localname}> in " + (
        f"namespace {namespace}" if namespace else "no namespace")
    raise ConfirmationFileInvalid(
        "unknown_format",
        f"The file is {what}, not a known confirmation format. Import a camt.054 "
        f"(BankToCustomerDebitCreditNotification) or an accountant's answer "
        f"({accountant.ANSWER_NAMESPACE}).",
    )


# --- checking a batch before writing it --------------------------------------------------------

# An identifier the SEPA scheme and the accountant both carry unchanged: EPC SCT implementation
# guidelines restrict references to the Latin character set and forbid a leading "/" or "//";
# letters, digits and hyphens keep clear of both.
_IDENTIFIER = re.compile(r"[A-Za-z0-9-]{1,35}", re.ASCII)
# EPC SCT rulebook: one credit transfer is at most 999 999 999.99 EUR.
MAX_AMOUNT = Decimal("999999999.99")
MAX_REMITTANCE = 140


def checked(batch: OrderBatch) -> OrderBatch:
    """``batch`` with its bank identifiers in their compact form (IBAN and BIC upper case,
    no spaces), or ``InvalidOrderBatch`` naming the first value a file cannot carry."""
    if batch.channel not in CHANNELS:
        raise InvalidOrderBatch("channel", f"{batch.channel!r} is not one of {list(CHANNELS)}.")
    _identifier("batch_id", batch.batch_id, "a batch id")
    if not isinstance(batch.created_at, datetime) or batch.created_at.utcoffset() is None:
        raise InvalidOrderBatch(
            "created_at", "must be an aware datetime (read it from the clock, which is UTC).")
    if not isinstance(batch.execution_date, date) or isinstance(batch.execution_date, datetime):
        raise InvalidOrderBatch("execution_date", "must be a date.")
    debtor = batch.debtor
    _named("debtor.name", debtor.name)
    debtor = replace(
        debtor,
        iban=_iban("debtor.iban", debtor.iban),
        bic=_bic("debtor.bic", debtor.bic),
        siret=_siret("debtor.siret", debtor.siret),
    )
    if not batch.lines:
        raise InvalidOrderBatch("lines", "a batch holds at least one order; send no file instead.")
    seen: dict[str, int] = {}
    lines = []
    for index, line in enumerate(batch.lines):
        at = f"lines[{index}]"
        _identifier(f"{at}.order_id", line.order_id, "an order id")
        if line.order_id in seen:
            raise InvalidOrderBatch(
                f"{at}.order_id",
                f"{line.order_id!r} is already the order id of lines[{seen[line.order_id]}]; "
                "each order attempt needs its own id, or its confirmation cannot be matched.",
            )
        seen[line.order_id] = index
        if (not isinstance(line.payable_id, str) or not 1 <= len(line.payable_id) <= 120
                or clean_text(line.payable_id) != line.payable_id):
            raise InvalidOrderBatch(
                f"{at}.payable_id",
                f"{line.payable_id!r} is not a payable id: 1 to 120 characters without control "
                "characters or surrounding spaces, e.g. 'invoice:<uuid>'.")
        if line.kind not in KINDS:
            raise InvalidOrderBatch(f"{at}.kind", f"{line.kind!r} is not one of {list(KINDS)}.")
        _amount(f"{at}.amount", line.amount)
        _named(f"{at}.payee_name", line.payee_name)
        if not clean_text(line.remittance if isinstance(line.remittance, str) else ""):
            raise InvalidOrderBatch(
                f"{at}.remittance",
                "is empty; say what the order pays (invoice number, contract), the payee reads it.",
            )
        if not isinstance(line.legal_due, date) or isinstance(line.legal_due, datetime):
            raise InvalidOrderBatch(f"{at}.legal_due", "must be a date.")
        for name in ("invoice_id", "contract_id"):
            value = getattr(line, name)
            if value is not None and not (isinstance(value, str) and clean_text(value)):
                raise InvalidOrderBatch(f"{at}.{name}", "must be None or a non-empty text.")
        lines.append(replace(
            line,
            # Decimal("1E+2") equals 100.00 but would be written "1E+2".
            amount=line.amount.quantize(CENT),
            payee_iban=_iban(f"{at}.payee_iban", line.payee_iban),
            payee_bic=_bic(f"{at}.payee_bic", line.payee_bic),
            payee_siret=(None if line.payee_siret is None
                         else _siret(f"{at}.payee_siret", line.payee_siret)),
        ))
    return replace(batch, debtor=debtor, lines=tuple(lines))


def _identifier(field: str, value: object, what: str) -> None:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        shown = f"{value!r} ({len(value)} characters)" if isinstance(value, str) else repr(value)
        raise InvalidOrderBatch(
            field,
            f"{shown} is not {what}: 1 to 35 characters among A-Z, a-z, 0-9 and '-' (it is "
            "carried as the SEPA EndToEndId / MsgId and the mandate or bordereau number).",
        )


def _amount(field: str, value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidOrderBatch(field, f"{value!r} is not a Decimal amount in EUR.")
    if value <= 0:
        raise InvalidOrderBatch(
            field, f"{value} EUR: an order pays a positive amount; leave a nil payable out.")
    if value != value.quantize(CENT):
        raise InvalidOrderBatch(field, f"{value} has fractions of a cent; round it to the cent.")
    if value > MAX_AMOUNT:
        raise InvalidOrderBatch(
            field, f"{value} EUR is above {MAX_AMOUNT}, the largest single credit transfer; "
            "split the payment.")


def _named(field: str, value: object) -> None:
    if not isinstance(value, str) or not sepa_text(value, 70):
        raise InvalidOrderBatch(
            field, f"{value!r} leaves no letter or digit once written in the Latin characters "
            "banks accept; give the name as registered (e.g. in the SIRENE register).")


def _iban(field: str, value: object) -> str:
    try:
        return stdnum_iban.validate(value)
    except (ValidationError, TypeError, AttributeError) as exc:
        raise InvalidOrderBatch(
            field, f"{value!r} is not a valid IBAN ({exc}); check it against the bank's RIB.",
        ) from None


def _bic(field: str, value: object) -> str | None:
    if value is None:
        return None
    try:
        return stdnum_bic.validate(value)
    except (ValidationError, TypeError, AttributeError) as exc:
        raise InvalidOrderBatch(
            field, f"{value!r} is not a valid BIC ({exc}); give the 8 or 11 character BIC "
            "or None when unknown.",
        ) from None


def _siret(field: str, value: object) -> str:
    try:
        return stdnum_siret.validate(value)
    except (ValidationError, TypeError, AttributeError) as exc:
        raise InvalidOrderBatch(
            field, f"{value!r} is not a valid SIRET ({exc}): 14 digits with a Luhn key.",
        ) from None


# --- texts -------------------------------------------------------------------------------------

# XML 1.0 allows neither C0 controls (but tab, newline, return) nor surrogates nor U+FFFE/FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")
# EPC "SEPA Requirements for an Extended Character Set", basic Latin set: what every SEPA bank
# must carry. A few common signs get their nearest allowed neighbour, any other becomes a space.
_SEPA_ALLOWED = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]", re.ASCII)
_SEPA_NEAREST = str.maketrans({"&": "+", "_": "-", '"': "'", ";": ",", "!": ".", "`": "'"})


def clean_text(value: str) -> str:
    """``value`` in Unicode NFC, without characters XML cannot hold, its runs of white space
    made one space, stripped."""
    value = unicodedata.normalize("NFC", value)
    return _SPACES.sub(" ", _NOT_XML.sub(" ", value)).strip()


def truncated(value: str, length: int) -> str:
    return value[:length].rstrip()


def sepa_text(value: str, length: int) -> str:
    """``value`` transliterated to the SEPA basic Latin character set, at most ``length``
    characters: "Société Générale & Fils" → "Societe Generale + Fils"."""
    # NFKC first: compatibility forms (ᵉ, ﬁ, full-width letters) have plain letters that
    # unidecode alone does not know; what it cannot write at all it marks "[?]".
    latin = unidecode(unicodedata.normalize("NFKC", clean_text(value)))
    latin = latin.replace("[?]", " ").translate(_SEPA_NEAREST)
    latin = _SPACES.sub(" ", _SEPA_ALLOWED.sub(" ", latin)).strip()
    return truncated(latin, length)


# --- reading incoming files --------------------------------------------------------------------

# A day of camt.054 for a Region (a few hundred transfers) is well under a megabyte.
MAX_INCOMING_BYTES = 20 * 1024 * 1024

# Comments and processing instructions carry nothing a confirmation needs.
_PARSER = hardened_parser(remove_blank_text=True, remove_comments=True, remove_pis=True)
_NOT_BLANK = re.compile(rb"\S")


def read_incoming(content: bytes) -> etree._Element:
    """The root element of an incoming file, or ``ConfirmationFileInvalid`` saying why not.
    A DOCTYPE is refused outright (``shared.xml``): neither ISO 20022 nor the accountant's
    format uses one."""
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise TypeError(f"a confirmation file is bytes, not {type(content).__name__}")
    content = bytes(content)
    if len(content) > MAX_INCOMING_BYTES:
        raise ConfirmationFileInvalid(
            "too_large",
            f"The file is {len(content) / 1_048_576:.1f} MB; the limit is "
            f"{MAX_INCOMING_BYTES // 1_048_576} MB. Ask the counterparty for daily files.",
        )
    if not _NOT_BLANK.search(content):
        raise ConfirmationFileInvalid("empty", "The file is empty.")
    try:
        return parse_untrusted(content, _PARSER)
    except XmlRefused as refused:
        if refused.kind == "doctype":
            raise ConfirmationFileInvalid(
                "xml_forbidden_construct",
                "The file declares a DOCTYPE (DTD or entities), which confirmation files never "
                "use and which is refused for security. Ask the counterparty for the file "
                "without it.",
            ) from None
        if refused.kind == "malformed":
            raise ConfirmationFileInvalid(
                "not_xml",
                f"The file is not well-formed XML ({refused.detail}). Check that it is "
                "complete and was not altered in transit.",
            ) from None
        raise ConfirmationFileInvalid(
            "not_xml", f"The file cannot be read as XML ({refused.detail}).") from None


def where(element: etree._Element) -> str:
    """``line N, Parent/Child`` for an element of an incoming file, to say where a value is."""
    names = []
    node: etree._Element | None = element
    while node is not None:
        parent = node.getparent()
        name = etree.QName(node).localname
        if parent is not None:
            same = [sibling for sibling in parent if sibling.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        names.append(name)
        node = parent
    return f"line {element.sourceline}, {'/'.join(reversed(names))}"


def schema_errors(schema: etree.XMLSchema, document: etree._Element | etree._ElementTree) -> list[str]:
    """The messages of ``schema`` for ``document``, each with its line; [] when it conforms."""
    # assertValid hands back its own error log: the schema's is shared by every caller.
    try:
        schema.assertValid(document)
    except etree.DocumentInvalid as invalid:
        return [f"line {error.line}: {error.message}" for error in invalid.error_log]
    return []


def serialized(root: etree._Element) -> bytes:
    """The bytes of an outgoing file: UTF-8, indented, with the usual XML declaration."""
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(
        root, encoding="UTF-8", xml_declaration=False, pretty_print=True)


def load_schema(source) -> etree.XMLSchema:
    """An XSD from a bundled file, parsed without network nor entity resolution."""
    with source.open("rb") as stream:
        return etree.XMLSchema(etree.parse(stream, etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False)))


# Channel modules import the model and helpers above, hence the late imports.
from services.payments.formats import accountant, camt054, pain001  # noqa: E402
