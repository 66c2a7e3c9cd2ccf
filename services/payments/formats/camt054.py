"""The bank's debit notifications: ISO 20022 ``camt.054`` (BankToCustomerDebitCreditNotification),
versions ``.001.02`` to ``.001.08`` and later (the elements read here did not change).

What becomes a confirmation, entry by entry (``Ntry``) and, inside an entry, transaction by
transaction (``NtryDtls/TxDtls``; an entry without details counts as one transaction):

- a booked (``BOOK``) debit of an issued credit transfer, not a reversal, without return
  information → ``executed`` on the booking date (``BookgDt``), for the ``EndToEndId``;
- a transfer that came back: return information (``RtrInf``, reason ``Rsn/Cd``) on a debit or
  on the credit that returns the funds, a credit flagged as the reversal of a debit
  (``RvslInd``), or an entry whose status says it was rejected → ``failed``, with the ISO
  reason code and its meaning;
- pending or informational entries (``PDNG``, ``INFO``, ``FUTR``) are not final and are left
  for the next notification; credits that return nothing (money received) and debits that are
  not credit transfers (``BkTxCd`` other than ``PMNT/ICDT``: fees, card payments) are no
  payment of ours and are skipped.

When one notification both books a transfer and returns it, only the failure is reported:
the money came back before anyone could rely on the debit. A return that arrives in a later
notification follows the earlier ``executed`` confirmation of the same order.
An ``EndToEndId`` absent or ``NOTPROVIDED`` is no reference we issued: ``order_id`` is None.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from lxml import etree

from services.payments.formats import Confirmation, ConfirmationFileInvalid, where

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.054.001."
_CAMT054 = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.054\.001\.(\d{2})")
_OTHER_CAMT = re.compile(r"urn:iso:std:iso:20022:tech:xsd:(camt\.05[23]|pain\.002)\.\d{3}\.\d{2}")

# ISO 20022 ExternalReturnReason1Code, as the EPC SCT rulebook uses them for returns and
# rejects (R-transactions).
RETURN_REASONS = {
    "AC01": "incorrect account number (IBAN)",
    "AC03": "invalid creditor account number",
    "AC04": "closed account number",
    "AC06": "blocked account",
    "AG01": "transaction forbidden on this type of account",
    "AG02": "invalid bank operation code",
    "AM04": "insufficient funds",
    "AM05": "duplicate payment",
    "BE04": "missing creditor address",
    "CNOR": "creditor bank is not registered in the clearing system",
    "CUST": "requested by the customer",
    "DNOR": "debtor bank is not registered in the clearing system",
    "DUPL": "duplicate payment",
    "ERIN": "extended remittance information option not supported",
    "FF01": "invalid file format",
    "FOCR": "returned following a cancellation request",
    "FRAD": "fraudulent origin",
    "MD07": "end customer deceased",
    "MS02": "refused by the payee, reason not specified",
    "MS03": "reason not specified by the bank",
    "RC01": "bank identifier (BIC) incorrect",
    "RR01": "missing debtor account or identification",
    "RR02": "missing debtor name or address",
    "RR03": "missing creditor name or address",
    "RR04": "regulatory reason",
    "TECH": "technical problem at the bank",
    "TM01": "received after the cut-off time",
}

# ISO 20022 entry statuses that are not final yet.
_NOT_FINAL = {"PDNG", "INFO", "FUTR"}
# Not an ISO entry status, but some banks report a rejected order this way (Sts/Prtry).
_REJECTED = {"RJCT"}
_ISSUED_CREDIT_TRANSFER = ("PMNT", "ICDT")
NOT_PROVIDED = "NOTPROVIDED"
_AMOUNT = re.compile(r"\d{1,15}(\.\d{1,5})?", re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def is_camt054(namespace: str) -> bool:
    return _CAMT054.fullmatch(namespace) is not None


def other_bank_message(namespace: str) -> str | None:
    """What a bank message that is not a camt.054 is, to say so."""
    match = _OTHER_CAMT.fullmatch(namespace)
    if not match:
        return None
    return {
        "camt.052": "a camt.052 intraday account report",
        "camt.053": "a camt.053 account statement",
        "pain.002": "a pain.002 payment status report",
    }[match[1]] + f" ({namespace}); ask the bank for the camt.054 debit notification"


def read(root: etree._Element) -> list[Confirmation]:
    """The confirmations of a camt.054 document, in document order."""
    reader = _Reader(etree.QName(root).namespace or "")
    notification = reader.first(root, "BkToCstmrDbtCdtNtfctn")
    if notification is None:
        raise ConfirmationFileInvalid(
            "missing_value",
            f"{where(root)}: no BkToCstmrDbtCdtNtfctn element; the file is not a camt.054 "
            "debit/credit notification.")
    confirmations: list[Confirmation] = []
    for number, account in enumerate(reader.all(notification, "Ntfctn"), start=1):
        notification_id = reader.text(account, "Id") or f"Ntfctn{number}"
        for entry_number, entry in enumerate(reader.all(account, "Ntry"), start=1):
            confirmations += reader.entry(entry, f"{notification_id}/{entry_number}")
    failed = {c.order_id for c in confirmations if c.status == "failed" and c.order_id}
    return [c for c in confirmations if not (c.status == "executed" and c.order_id in failed)]


class _Reader:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    # --- navigation ---

    def _path(self, path: str) -> str:
        return "/".join(f"{{{self.namespace}}}{step}" for step in path.split("/"))

    def first(self, element: etree._Element, path: str) -> etree._Element | None:
        return element.find(self._path(path))

    def all(self, element: etree._Element, path: str) -> list[etree._Element]:
        return element.findall(self._path(path))

    def text(self, element: etree._Element, path: str) -> str | None:
        found = self.first(element, path)
        if found is None or found.text is None:
            return None
        return found.text.strip() or None

    # --- one entry ---

    def entry(self, entry: etree._Element, fallback_reference: str) -> list[Confirmation]:
        indicator = self.text(entry, "CdtDbtInd")
        if indicator not in ("DBIT", "CRDT"):
            element = self.first(entry, "CdtDbtInd")
            raise ConfirmationFileInvalid(
                "bad_value" if element is not None else "missing_value",
                f"{where(element if element is not None else entry)}: the credit/debit "
                f"indicator is {indicator!r}; an entry is DBIT or CRDT.")
        # camt.054.001.02-.07: <Sts>BOOK</Sts>; .08 on: <Sts><Cd>BOOK</Cd></Sts> (or Prtry).
        status = (self.text(entry, "Sts/Cd") or self.text(entry, "Sts/Prtry")
                  or self.text(entry, "Sts"))
        if status is None:
            raise ConfirmationFileInvalid(
                "missing_value", f"{where(entry)}: the entry has no status (Sts); whether it "
                "was booked cannot be known. Ask the bank for a corrected file.")
        if status in _NOT_FINAL:
            return []
        reversal = self.text(entry, "RvslInd") in ("true", "1")
        entry_code = self._bank_code(entry)
        details = self.all(entry, "NtryDtls/TxDtls")
        batch = (self.text(entry, "NtryDtls/Btch/PmtInfId")
                 or self.text(entry, "NtryDtls/Btch/MsgId"))
        entry_reference = (self.text(entry, "AcctSvcrRef") or self.text(entry, "NtryRef")
                           or fallback_reference)
        confirmations = []
        for number, transaction in enumerate(details or [entry], start=1):
            alone = not details
            returned = None if alone else self.first(transaction, "RtrInf")
            rejected = status in _REJECTED
            code = (entry_code if alone else self._bank_code(transaction)) or entry_code
            failed = (returned is not None or rejected
                      or (reversal and indicator == "CRDT"))
            if not failed and (indicator != "DBIT" or reversal or status != "BOOK"):
                continue
            if not failed and code is not None and code != _ISSUED_CREDIT_TRANSFER:
                continue
            reference = (None if alone else self.text(transaction, "Refs/AcctSvcrRef")) or (
                entry_reference if len(details) <= 1 else f"{entry_reference}/{number}")
            end_to_end = None if alone else self.text(transaction, "Refs/EndToEndId")
            batch_id = batch if alone else (
                self.text(transaction, "Refs/PmtInfId") or self.text(transaction, "Refs/MsgId")
                or batch)
            amount = self._amount(transaction, entry, alone or len(details) == 1)
            common = dict(
                order_id=None if end_to_end in (None, NOT_PROVIDED) else end_to_end,
                amount=amount, reference=reference, batch_id=batch_id,
            )
            if failed:
                confirmations.append(Confirmation(
                    status="failed", executed_on=None,
                    reason=self._reason(returned, reversal, rejected), **common))
            else:
                confirmations.append(Confirmation(
                    status="executed", executed_on=self._booking_date(entry), reason=None,
                    **common))
        return confirmations

    def _bank_code(self, element: etree._Element) -> tuple[str, str | None] | None:
        domain = self.text(element, "BkTxCd/Domn/Cd")
        if domain is None:
            return None
        return (domain, self.text(element, "BkTxCd/Domn/Fmly/Cd"))

    def _amount(self, transaction: etree._Element, entry: etree._Element,
                entry_amount_applies: bool) -> Decimal | None:
        """The transaction's amount in EUR: ``TxDtls/Amt`` (.03 on), else the amount details
        (.02), else the entry's when it holds this transaction only. None when in another
        currency: no SEPA transfer of ours is."""
        candidates = [] if transaction is entry else [
            "Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt"]
        if entry_amount_applies:
            candidates.append(None)
        for path in candidates:
            element = self.first(transaction, path) if path else self.first(entry, "Amt")
            if element is None:
                continue
            raw = (element.text or "").strip()
            if not _AMOUNT.fullmatch(raw):
                raise ConfirmationFileInvalid(
                    "bad_value", f"{where(element)}: {raw!r} is not an amount (digits with a "
                    "dot, e.g. 1234.50).")
            if element.get("Ccy") != "EUR":
                return None
            return Decimal(raw)
        return None

    def _booking_date(self, entry: etree._Element) -> date:
        for path in ("BookgDt/Dt", "BookgDt/DtTm", "ValDt/Dt", "ValDt/DtTm"):
            element = self.first(entry, path)
            if element is None:
                continue
            raw = (element.text or "").strip()
            match = _DATE.match(raw)
            try:
                if match:
                    return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                pass
            raise ConfirmationFileInvalid(
                "bad_value", f"{where(element)}: {raw!r} is not a date (YYYY-MM-DD).")
        raise ConfirmationFileInvalid(
            "missing_value", f"{where(entry)}: a booked debit without booking date (BookgDt); "
            "the date the payment was made cannot be known. Ask the bank for a corrected file.")

    def _reason(self, returned: etree._Element | None, reversal: bool, rejected: bool) -> str:
        if returned is not None:
            code = self.text(returned, "Rsn/Cd") or self.text(returned, "Rsn/Prtry")
            details = " ".join(
                text for element in self.all(returned, "AddtlInf")
                if (text := (element.text or "").strip()))
            if code:
                meaning = RETURN_REASONS.get(code, "return reason not in the ISO list known here")
                reason = f"{code} {meaning}"
            else:
                reason = "returned by the bank without reason code"
            return f"{reason} ({details})" if details else reason
        if rejected:
            return "RJCT rejected by the bank, no reason code given"
        return "reversed by the bank (RvslInd), no reason code given"
