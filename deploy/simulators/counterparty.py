"""The payments service's counterparties, simulated: the Region's public accountant and a bank.

``settle(order_file, executed_on=…, fail=…)`` reads a file the service sent and returns the
answer the counterparty would send back:

- a bordereau de mandats (the accountant channel) → the accountant's « compte rendu de
  paiement »: each mandate « mis en paiement » on ``executed_on`` for its amount, or rejected
  (« rejet ») with the code ``fail(order id)`` returns and the accountant's wording of it;
- a SEPA ``pain.001.001.09`` → the bank's ``camt.054.001.08`` debit notification for the
  debited account: the batch booked on ``executed_on`` as one debit (batch booking) detailed
  transfer by transfer with its ``EndToEndId``, and every transfer ``fail`` names returned the
  same day by the payee's bank, as a booked credit carrying the ISO return reason
  (``PMNT/ICDT/RRTN``, ``RtrInf/Rsn/Cd``), which is what a closed or wrong account looks like
  on the payer's statement.

``unmatched_debit(…)`` builds a camt.054 whose only debit carries no reference the service
issued (a payment made outside it, or a bank that lost the ``EndToEndId``), and
``random_failures(rate, seed=…)`` a ``fail`` policy for demos and load tests.

Everything is a pure function of its arguments: no clock, no randomness but the seeded one;
references are derived from the order file's digest, so settling the same file twice gives
the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from lxml import etree

from services.payments.formats.accountant import (
    ANSWER_NAMESPACE,
    ORDER_NAMESPACE,
    REJECTION_REASONS,
)
from services.payments.formats.camt054 import RETURN_REASONS
from services.payments.formats.pain001 import NAMESPACE as PAIN001
from shared.clock import PARIS
from shared.xml import hardened_parser

CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
# Banks and accountants send their day's files in the evening.
SENT_AT = time(20, 0)

_PARSER = hardened_parser(remove_blank_text=True)
_ISO_REASON = re.compile(r"[A-Z0-9]{4}")
_ACCOUNTANT_REASON = re.compile(r"[A-Z0-9]{2,8}")

Fail = Callable[[str], "str | None"]


def settle(order_file: bytes, *, executed_on: date, fail: Fail | None = None,
           reference_prefix: str = "SIM", include: Callable[[str], bool] | None = None) -> bytes:
    """The counterparty's answer to ``order_file`` (a bordereau de mandats or a pain.001):
    every order executed on ``executed_on`` except those for which ``fail(order id)`` returns
    a reason code (an ISO return reason such as ``AC04`` for the bank, a code of
    ``REJECTION_REASONS`` such as ``RIB`` for the accountant). With ``include``, only the
    orders it accepts are answered (a counterparty that pays a file's orders on several days)."""
    root = etree.fromstring(order_file, _PARSER)
    namespace = etree.QName(root).namespace
    digest = hashlib.sha256(order_file).hexdigest()[:10].upper()
    fail = fail or (lambda order_id: None)
    include = include or (lambda order_id: True)
    if namespace == ORDER_NAMESPACE:
        return _compte_rendu(root, executed_on, fail, f"{reference_prefix}-{digest}", include)
    if namespace == PAIN001:
        return _debit_notification(root, executed_on, fail, f"{reference_prefix}-{digest}", include)
    raise ValueError(f"not an order file the simulator knows: root namespace {namespace!r}")


def unmatched_debit(*, account_iban: str, amount: Decimal, booked_on: date, reference: str,
                    payee_name: str = "Paiement hors service",
                    remittance: str = "Virement manuel") -> bytes:
    """A camt.054.001.08 notification of one booked SEPA debit whose EndToEndId is
    ``NOTPROVIDED``: a transfer the service never ordered, as a bank reports it."""
    transfer = _Transfer(end_to_end_id="NOTPROVIDED", amount=amount, payee_name=payee_name,
                         payee_iban=None, remittance=remittance)
    document, notification = _camt_document(f"{reference}-N", account_iban, booked_on)
    _debit_entry(notification, [transfer], booked_on, reference, batch=None)
    return _bytes(document)


def random_failures(rate: float, *, seed: int,
                    codes: Sequence[str] = ("AC04", "AC01", "MD07")) -> Fail:
    """A ``fail`` policy rejecting about ``rate`` of the orders, the same ones for the same
    seed whatever the order in which they are settled."""
    def fail(order_id: str) -> str | None:
        draw = int.from_bytes(hashlib.sha256(f"{seed}:{order_id}".encode()).digest()[:8], "big")
        if draw / 2**64 >= rate:
            return None
        return codes[draw % len(codes)]
    return fail


# --- the accountant ----------------------------------------------------------------------------

def _compte_rendu(bordereau: etree._Element, executed_on: date, fail: Fail,
                  reference: str, include: Callable[[str], bool]) -> bytes:
    def read(element: etree._Element, name: str) -> str:
        return element.findtext(f"{{{ORDER_NAMESPACE}}}{name}")

    answer = etree.Element(f"{{{ANSWER_NAMESPACE}}}CompteRendu", {"version": "1"},
                           nsmap={None: ANSWER_NAMESPACE})
    add = _adder(ANSWER_NAMESPACE)
    add(answer, "IdCompteRendu", f"{reference}-CR")
    add(answer, "DateCompteRendu", executed_on.isoformat())
    add(answer, "IdBordereau", read(bordereau, "IdBordereau"))
    add(answer, "PosteComptable", "Paierie régionale (simulée)")
    for number, mandat in enumerate(bordereau.iter(f"{{{ORDER_NAMESPACE}}}Mandat"), start=1):
        order_id = read(mandat, "NumMandat")
        if not include(order_id):
            continue
        code = fail(order_id)
        if code is None:
            outcome = add(answer, "MiseEnPaiement")
            add(outcome, "NumMandat", order_id)
            add(outcome, "RefComptable", f"{reference}-{number:04d}")
            add(outcome, "DateMiseEnPaiement", executed_on.isoformat())
            add(outcome, "Montant", read(mandat, "Montant"))
            continue
        if not _ACCOUNTANT_REASON.fullmatch(code):
            raise ValueError(f"fail({order_id!r}) returned {code!r}, not a rejection code "
                             f"such as {sorted(REJECTION_REASONS)}")
        outcome = add(answer, "Rejet")
        add(outcome, "NumMandat", order_id)
        add(outcome, "RefComptable", f"{reference}-{number:04d}")
        add(outcome, "DateRejet", executed_on.isoformat())
        motif = add(outcome, "Motif")
        add(motif, "Code", code)
        add(motif, "Libelle", REJECTION_REASONS.get(code, "motif non précisé"))
    return _bytes(answer)


# --- the bank ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Transfer:
    end_to_end_id: str
    amount: Decimal
    payee_name: str | None
    payee_iban: str | None
    remittance: str | None
    message_id: str | None = None
    payment_information_id: str | None = None


def _debit_notification(initiation: etree._Element, executed_on: date, fail: Fail,
                        reference: str, include: Callable[[str], bool]) -> bytes:
    def read(element: etree._Element, path: str) -> str | None:
        return element.findtext("/".join(f"{{{PAIN001}}}{step}" for step in path.split("/")))

    header = initiation.find(f"{{{PAIN001}}}CstmrCdtTrfInitn/{{{PAIN001}}}GrpHdr")
    message_id = read(header, "MsgId")
    payments = initiation.findall(f"{{{PAIN001}}}CstmrCdtTrfInitn/{{{PAIN001}}}PmtInf")
    account = read(payments[0], "DbtrAcct/Id/IBAN")
    document, notification = _camt_document(reference, account, executed_on)
    returns: list[tuple[_Transfer, str]] = []
    for number, payment in enumerate(payments, start=1):
        batch = read(payment, "PmtInfId")
        transfers = []
        for element in payment.findall(f"{{{PAIN001}}}CdtTrfTxInf"):
            if not include(read(element, "PmtId/EndToEndId")):
                continue
            transfer = _Transfer(
                end_to_end_id=read(element, "PmtId/EndToEndId"),
                amount=Decimal(read(element, "Amt/InstdAmt")),
                payee_name=read(element, "Cdtr/Nm"),
                payee_iban=read(element, "CdtrAcct/Id/IBAN"),
                remittance=read(element, "RmtInf/Ustrd"),
                message_id=message_id, payment_information_id=batch,
            )
            transfers.append(transfer)
            code = fail(transfer.end_to_end_id)
            if code is not None:
                if not _ISO_REASON.fullmatch(code):
                    raise ValueError(f"fail({transfer.end_to_end_id!r}) returned {code!r}, not an "
                                     f"ISO return reason such as {sorted(RETURN_REASONS)[:5]}")
                returns.append((transfer, code))
        if transfers:
            _debit_entry(notification, transfers, executed_on, f"{reference}-D{number:03d}",
                         batch=(message_id, batch))
    for number, (transfer, code) in enumerate(returns, start=1):
        _return_entry(notification, transfer, code, executed_on, f"{reference}-R{number:03d}")
    return _bytes(document)


def _camt_document(reference: str, account_iban: str,
                   day: date) -> tuple[etree._Element, etree._Element]:
    add = _adder(CAMT054)
    created = datetime.combine(day, SENT_AT, PARIS).isoformat()
    document = etree.Element(f"{{{CAMT054}}}Document", nsmap={None: CAMT054})
    body = add(document, "BkToCstmrDbtCdtNtfctn")
    header = add(body, "GrpHdr")
    add(header, "MsgId", reference[:35])
    add(header, "CreDtTm", created)
    notification = add(body, "Ntfctn")
    add(notification, "Id", reference[:35])
    add(notification, "CreDtTm", created)
    account = add(notification, "Acct")
    add(add(account, "Id"), "IBAN", account_iban)
    add(account, "Ccy", "EUR")
    return document, notification


def _debit_entry(notification: etree._Element, transfers: list[_Transfer], day: date,
                 reference: str, batch: tuple[str | None, str | None] | None) -> None:
    add = _adder(CAMT054)
    total = str(sum(transfer.amount for transfer in transfers))
    entry = _entry(notification, total, "DBIT", day, reference, "ESCT")
    details = add(entry, "NtryDtls")
    if batch is not None:
        summary = add(details, "Btch")
        add(summary, "MsgId", batch[0])
        add(summary, "PmtInfId", batch[1])
        add(summary, "NbOfTxs", str(len(transfers)))
        add(summary, "TtlAmt", total, Ccy="EUR")
        add(summary, "CdtDbtInd", "DBIT")
    for number, transfer in enumerate(transfers, start=1):
        transaction = add(details, "TxDtls")
        references = add(transaction, "Refs")
        if transfer.message_id:
            add(references, "MsgId", transfer.message_id)
        add(references, "AcctSvcrRef", f"{reference}-{number:04d}")
        if transfer.payment_information_id:
            add(references, "PmtInfId", transfer.payment_information_id)
        add(references, "EndToEndId", transfer.end_to_end_id)
        add(transaction, "Amt", str(transfer.amount), Ccy="EUR")
        add(transaction, "CdtDbtInd", "DBIT")
        parties = add(transaction, "RltdPties")
        if transfer.payee_name:
            add(add(add(parties, "Cdtr"), "Pty"), "Nm", transfer.payee_name)
        if transfer.payee_iban:
            add(add(add(parties, "CdtrAcct"), "Id"), "IBAN", transfer.payee_iban)
        if transfer.remittance:
            add(add(transaction, "RmtInf"), "Ustrd", transfer.remittance)


def _return_entry(notification: etree._Element, transfer: _Transfer, code: str, day: date,
                  reference: str) -> None:
    add = _adder(CAMT054)
    entry = _entry(notification, str(transfer.amount), "CRDT", day, reference, "RRTN")
    transaction = add(add(entry, "NtryDtls"), "TxDtls")
    references = add(transaction, "Refs")
    add(references, "MsgId", transfer.message_id)
    add(references, "AcctSvcrRef", reference)
    add(references, "PmtInfId", transfer.payment_information_id)
    add(references, "EndToEndId", transfer.end_to_end_id)
    add(transaction, "Amt", str(transfer.amount), Ccy="EUR")
    add(transaction, "CdtDbtInd", "CRDT")
    returned = add(transaction, "RtrInf")
    add(add(returned, "Rsn"), "Cd", code)


def _entry(notification: etree._Element, amount: str, indicator: str, day: date,
           reference: str, sub_family: str) -> etree._Element:
    add = _adder(CAMT054)
    entry = add(notification, "Ntry")
    add(entry, "NtryRef", reference)
    add(entry, "Amt", amount, Ccy="EUR")
    add(entry, "CdtDbtInd", indicator)
    add(add(entry, "Sts"), "Cd", "BOOK")
    add(add(entry, "BookgDt"), "Dt", day.isoformat())
    add(add(entry, "ValDt"), "Dt", day.isoformat())
    add(entry, "AcctSvcrRef", reference)
    domain = add(add(entry, "BkTxCd"), "Domn")
    add(domain, "Cd", "PMNT")
    family = add(domain, "Fmly")
    add(family, "Cd", "ICDT")
    add(family, "SubFmlyCd", sub_family)
    return entry


def _adder(namespace: str) -> Callable[..., etree._Element]:
    def add(parent: etree._Element, name: str, text: str | None = None,
            **attributes: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{namespace}}}{name}", attributes)
        if text is not None:
            element.text = text
        return element
    return add


def _bytes(root: etree._Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(
        root, encoding="UTF-8", pretty_print=True)
