"""SEPA credit transfer initiation: ISO 20022 ``pain.001.001.09`` as the EPC SCT customer-to-bank
implementation guidelines use it.

One file per batch, one payment information block (``PmtInf``) debiting the buyer's account
with batch booking, one ``CdtTrfTxInf`` per order whose ``EndToEndId`` is the order id: the
bank returns it unchanged in its camt.054 notifications and in any return, which is how a
confirmation finds its order. Names and remittance texts are transliterated to the SEPA basic
Latin character set and cut to the lengths the EPC guidelines allow. Every file is validated
against the official XSD before it is returned.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from lxml import etree

from services.payments.formats import (
    MAX_REMITTANCE,
    OrderBatch,
    InvalidOrderBatch,
    PaymentFileInvalid,
    checked,
    serialized,
    load_schema,
    schema_errors,
    sepa_text,
)

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
SCHEMA = "pain.001.001.09.xsd"
# EPC SCT implementation guidelines: a party's name is at most 70 characters (the XSD allows
# 140, which banks refuse for SEPA).
MAX_NAME = 70
# EPC SCT implementation guidelines: the debtor agent may be left unidentified, in this form.
NOT_PROVIDED = "NOTPROVIDED"


def file_name(batch: OrderBatch) -> str:
    return f"{batch.batch_id}.pain.001.xml"


def render(batch: OrderBatch) -> bytes:
    """The pain.001.001.09 file of a ``sepa`` batch, valid against the official XSD."""
    if batch.channel != "sepa":
        raise InvalidOrderBatch(
            "channel", f"a pain.001 file carries a 'sepa' batch, not {batch.channel!r}.")
    batch = checked(batch)
    content = serialized(_document(batch))
    # Validated as the bank will read it: the serialised bytes, so errors carry their line.
    errors = schema_errors(schema(), etree.fromstring(content))
    if errors:
        raise PaymentFileInvalid(file_name(batch), SCHEMA, errors)
    return content


@cache
def schema() -> etree.XMLSchema:
    """The official XSD, as shipped by the ``sepaxml`` package; compiled once."""
    return load_schema(resources.files("sepaxml") / "schemas" / SCHEMA)


def _document(batch: OrderBatch) -> etree._Element:
    count = str(len(batch.lines))
    total = str(sum((line.amount for line in batch.lines)))
    debtor = batch.debtor

    document = etree.Element(_q("Document"), nsmap={None: NAMESPACE})
    initiation = _sub(document, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", batch.batch_id)
    _sub(header, "CreDtTm", batch.created_at.isoformat(timespec="seconds"))
    _sub(header, "NbOfTxs", count)
    _sub(header, "CtrlSum", total)
    _party(_sub(header, "InitgPty"), debtor.name, debtor.siret)

    payment = _sub(initiation, "PmtInf")
    _sub(payment, "PmtInfId", batch.batch_id)
    _sub(payment, "PmtMtd", "TRF")
    # One debit for the whole run on the Region's statement, detailed in the camt.054.
    _sub(payment, "BtchBookg", "true")
    _sub(payment, "NbOfTxs", count)
    _sub(payment, "CtrlSum", total)
    _sub(_sub(_sub(payment, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    _sub(_sub(payment, "ReqdExctnDt"), "Dt", batch.execution_date.isoformat())
    _party(_sub(payment, "Dbtr"), debtor.name, debtor.siret)
    _account(_sub(payment, "DbtrAcct"), debtor.iban)
    _agent(_sub(payment, "DbtrAgt"), debtor.bic)
    # SEPA: each side pays its own bank's charges.
    _sub(payment, "ChrgBr", "SLEV")

    for line in batch.lines:
        transfer = _sub(payment, "CdtTrfTxInf")
        _sub(_sub(transfer, "PmtId"), "EndToEndId", line.order_id)
        _sub(_sub(transfer, "Amt"), "InstdAmt", str(line.amount), Ccy="EUR")
        # Since 2016 an IBAN alone identifies the payee's bank in SEPA (Regulation (EU)
        # 260/2012 art. 5(7)): the agent is written only when the BIC is known.
        if line.payee_bic:
            _agent(_sub(transfer, "CdtrAgt"), line.payee_bic)
        _party(_sub(transfer, "Cdtr"), line.payee_name, line.payee_siret)
        _account(_sub(transfer, "CdtrAcct"), line.payee_iban)
        _sub(_sub(transfer, "RmtInf"), "Ustrd", sepa_text(line.remittance, MAX_REMITTANCE))
    return document


def _party(element: etree._Element, name: str, siret: str | None) -> None:
    _sub(element, "Nm", sepa_text(name, MAX_NAME))
    if siret:
        other = _sub(_sub(_sub(element, "Id"), "OrgId"), "Othr")
        _sub(other, "Id", siret)
        _sub(_sub(other, "SchmeNm"), "Prtry", "SIRET")


def _account(element: etree._Element, iban: str) -> None:
    _sub(_sub(element, "Id"), "IBAN", iban)


def _agent(element: etree._Element, bic: str | None) -> None:
    institution = _sub(element, "FinInstnId")
    if bic:
        _sub(institution, "BICFI", bic)
    else:
        _sub(_sub(institution, "Othr"), "Id", NOT_PROVIDED)


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _sub(parent: etree._Element, name: str, text: str | None = None,
         **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, _q(name), attributes)
    if text is not None:
        element.text = text
    return element
