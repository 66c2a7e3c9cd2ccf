"""The public accountant channel: the ordonnateur's « bordereau de mandats » out, the
accountant's « compte rendu de paiement » back.

A Region does not pay itself: its ordonnateur orders each payment (« mandat ») and its DGFiP
public accountant checks it (décret 2012-1246 art. 19 and 20), then pays it (« mise en
paiement », the end of the legal payment delay) or rejects it (art. 38: the accountant
suspends the payment and tells the ordonnateur why). The official exchange (PES V2 « Dépense »)
is out of reach of this system; this format carries the same mandate data in a plain XML
whose XSDs are in ``schemas/`` and whose elements ``docs/payment-channels.md`` describes.

Outgoing bordereaux are validated against ``bordereau-mandats-1.xsd`` before they leave;
answers are read with the hardened parser and validated against ``compte-rendu-paiement-1.xsd``
before any value is taken from them.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources

from lxml import etree

from services.payments.formats import (
    MAX_REMITTANCE,
    Confirmation,
    ConfirmationFileInvalid,
    InvalidOrderBatch,
    OrderBatch,
    PaymentFileInvalid,
    checked,
    serialized,
    clean_text,
    load_schema,
    schema_errors,
    truncated,
    where,
)
from shared.clock import PARIS

ORDER_NAMESPACE = "urn:invoicing:payments:accountant:bordereau:1"
ANSWER_NAMESPACE = "urn:invoicing:payments:accountant:compte-rendu:1"
ORDER_SCHEMA = "bordereau-mandats-1.xsd"
ANSWER_SCHEMA = "compte-rendu-paiement-1.xsd"
VERSION = "1"
MAX_NAME = 140

NATURES = {"invoice": "facture", "advance": "avance", "interest": "interets-moratoires"}

# Why an accountant rejects a mandate: the controls of décret 2012-1246 (GBCP) art. 19 2° and
# art. 20, plus the mandate already paid. The accountant's answer carries its own wording
# (« Libelle »); these are the codes this format defines and the simulator uses.
REJECTION_REASONS = {
    "QUAL": "qualité de l'ordonnateur non établie (art. 19 2° a)",
    "IMPUT": "imputation budgétaire inexacte (art. 19 2° b)",
    "CREDITS": "crédits indisponibles (art. 19 2° c)",
    "SERVFAIT": "service fait non certifié (art. 20 1°)",
    "LIQUID": "liquidation inexacte (art. 20 2°)",
    "PIECES": "pièces justificatives absentes ou incomplètes (art. 20 4°)",
    "PRESCR": "créance prescrite ou frappée de déchéance (art. 20 5°)",
    "RIB": "coordonnées bancaires du créancier invalides ou compte clos: le paiement ne "
           "serait pas libératoire (art. 19 2° e)",
    "OPPOS": "opposition, saisie ou cession de créance sur le créancier: le paiement au "
             "créancier ne serait pas libératoire (art. 19 2° e)",
    "DOUBLON": "mandat déjà payé",
}


def file_name(batch: OrderBatch) -> str:
    return f"{batch.batch_id}.mandats.xml"


def render(batch: OrderBatch) -> bytes:
    """The bordereau de mandats of an ``accountant`` batch, valid against its XSD."""
    if batch.channel != "accountant":
        raise InvalidOrderBatch(
            "channel", f"a bordereau de mandats carries an 'accountant' batch, not "
            f"{batch.channel!r}.")
    batch = checked(batch)
    content = serialized(_bordereau(batch))
    errors = schema_errors(order_schema(), etree.fromstring(content))
    if errors:
        raise PaymentFileInvalid(file_name(batch), ORDER_SCHEMA, errors)
    return content


@cache
def order_schema() -> etree.XMLSchema:
    return load_schema(resources.files(__package__) / "schemas" / ORDER_SCHEMA)


@cache
def answer_schema() -> etree.XMLSchema:
    return load_schema(resources.files(__package__) / "schemas" / ANSWER_SCHEMA)


def _bordereau(batch: OrderBatch) -> etree._Element:
    # The date of the order as seen in France: décret 2013-269 art. 13 counts the accountant's
    # ten days from its receipt of the order.
    dated = batch.created_at.astimezone(PARIS).date().isoformat()
    root = etree.Element(_q("Bordereau"), {"version": VERSION}, nsmap={None: ORDER_NAMESPACE})
    _sub(root, "IdBordereau", batch.batch_id)
    _sub(root, "DateBordereau", dated)
    _sub(root, "DateEmission", batch.created_at.isoformat(timespec="seconds"))
    _sub(root, "DateExecutionSouhaitee", batch.execution_date.isoformat())
    ordonnateur = _sub(root, "Ordonnateur")
    _sub(ordonnateur, "Nom", _text(batch.debtor.name, MAX_NAME))
    _sub(ordonnateur, "Siret", batch.debtor.siret)
    _sub(root, "NbMandats", str(len(batch.lines)))
    _sub(root, "MontantTotal", str(sum(line.amount for line in batch.lines)))
    for line in batch.lines:
        mandat = _sub(root, "Mandat")
        _sub(mandat, "NumMandat", line.order_id)
        _sub(mandat, "DateMandat", dated)
        _sub(mandat, "Nature", NATURES[line.kind])
        _sub(mandat, "IdDette", line.payable_id)
        _sub(mandat, "Montant", str(line.amount))
        _sub(mandat, "Objet", _text(line.remittance, MAX_REMITTANCE))
        if line.invoice_id is not None:
            _sub(mandat, "RefFacture", _text(line.invoice_id, 140))
        if line.contract_id is not None:
            _sub(mandat, "RefMarche", _text(line.contract_id, 140))
        _sub(mandat, "DateEcheanceLegale", line.legal_due.isoformat())
        creancier = _sub(mandat, "Creancier")
        _sub(creancier, "Nom", _text(line.payee_name, MAX_NAME))
        if line.payee_siret:
            _sub(creancier, "Siret", line.payee_siret)
        _sub(creancier, "IBAN", line.payee_iban)
        if line.payee_bic:
            _sub(creancier, "BIC", line.payee_bic)
    return root


def read_answer(root: etree._Element) -> list[Confirmation]:
    """The confirmations of a compte rendu de paiement, in document order."""
    errors = schema_errors(answer_schema(), root)
    if errors:
        raise ConfirmationFileInvalid(
            "schema",
            f"The accountant's answer does not conform to {ANSWER_SCHEMA} "
            f"({len(errors)} error(s)): " + "; ".join(errors[:20]),
        )
    batch_id = _child_text(root, "IdBordereau")
    confirmations = []
    for outcome in root.iterchildren(_q("MiseEnPaiement", ANSWER_NAMESPACE),
                                     _q("Rejet", ANSWER_NAMESPACE)):
        order_id = _child_text(outcome, "NumMandat")
        reference = _child_text(outcome, "RefComptable")
        if etree.QName(outcome).localname == "MiseEnPaiement":
            confirmations.append(Confirmation(
                order_id=order_id, status="executed",
                executed_on=_date(outcome, "DateMiseEnPaiement"),
                amount=Decimal(_child_text(outcome, "Montant")),
                reason=None, reference=reference, batch_id=batch_id,
            ))
        else:
            motif = outcome.find(_q("Motif", ANSWER_NAMESPACE))
            reason = f"{_child_text(motif, 'Code')} {_child_text(motif, 'Libelle')}"
            confirmations.append(Confirmation(
                order_id=order_id, status="failed", executed_on=None, amount=None,
                reason=reason, reference=reference, batch_id=batch_id,
            ))
    return confirmations


def _child_text(element: etree._Element, name: str) -> str:
    # The schema made every element read here present and non-empty.
    return clean_text(element.find(_q(name, ANSWER_NAMESPACE)).text)


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def _date(element: etree._Element, name: str) -> date:
    found = element.find(_q(name, ANSWER_NAMESPACE))
    match = _DATE.fullmatch(clean_text(found.text))
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except (TypeError, ValueError):
        raise ConfirmationFileInvalid(
            "bad_value", f"{where(found)}: {found.text!r} is not a date (YYYY-MM-DD).") from None


def _text(value: str, length: int) -> str:
    return truncated(clean_text(value), length)


def _q(name: str, namespace: str = ORDER_NAMESPACE) -> str:
    return f"{{{namespace}}}{name}"


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    if text is not None:
        element.text = text
    return element
