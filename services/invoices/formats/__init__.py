"""Supplier e-invoices in, one canonical invoice out.

Accepted (CCP D2192-1, Decision (EU) 2017/1870): UBL 2.1 Invoice and CreditNote, UN/CEFACT
CII D16B (Factur-X / ZUGFeRD 2 profiles, XRechnung CII), and Factur-X: a PDF carrying the CII.
The format is recognised from the bytes only (PDF header, XML root namespace), never from a file
name or a transport header, which a sender controls.

``parse`` refuses only what cannot be read at all, with ``UnreadableDocument``; a readable
document is returned whatever its content, and the validation rules judge it.
"""

from __future__ import annotations

import re
from typing import Literal

from lxml import etree

from shared.events.invoice_document import CanonicalInvoice

# Far above any real invoice (a 1,000-line CII is about 1.5 MB; a Factur-X PDF rarely exceeds
# a few MB) and low enough that one document cannot exhaust a worker's memory.
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024

Format = Literal["ubl", "cii", "facturx"]


class UnreadableDocument(Exception):
    """The bytes are not an invoice this service can read. ``reason`` is a stable code for
    programs, ``message`` a sentence for the supplier.

    Reasons: ``empty``, ``too_large``, ``not_xml``, ``xml_forbidden_construct``,
    ``unknown_namespace``, ``unsupported_document``, ``pdf_unreadable``, ``pdf_without_xml``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def detect(raw: bytes) -> Format:
    """``facturx`` for a PDF, ``cii`` or ``ubl`` for XML by its root element's namespace."""
    raw = _checked(raw)
    if _is_pdf(raw):
        return "facturx"
    return syntax_of(read_xml(raw))


def parse(raw: bytes) -> CanonicalInvoice:
    """The canonical invoice of a UBL, CII or Factur-X document."""
    raw = _checked(raw)
    if _is_pdf(raw):
        xml = embedded_xml(raw)
        try:
            if len(xml) > MAX_DOCUMENT_BYTES:
                raise _too_large(len(xml))
            return _parse_xml(xml, document_format="facturx")
        except UnreadableDocument as exc:
            raise UnreadableDocument(
                exc.reason, f"The invoice XML embedded in the PDF is unusable. {exc.message}"
            ) from None
    return _parse_xml(raw, document_format=None)


def syntax_of(root: etree._Element) -> Literal["cii", "ubl"]:
    """The XML syntax of a document by the namespace and name of its root element."""
    tag = root.tag
    if tag == cii.ROOT_TAG:
        return "cii"
    if tag in ubl.ROOT_TAGS:
        return "ubl"
    namespace, name = etree.QName(tag).namespace, etree.QName(tag).localname
    known = _NOT_INVOICES.get(namespace)
    if known or namespace in (cii.RSM, *ubl.ROOT_NAMESPACES) or (
        namespace or ""
    ).startswith("urn:oasis:names:specification:ubl:schema:xsd:"):
        what = f"The XML is {known}" if known else f"The XML root element is <{name}>"
        raise UnreadableDocument(
            "unsupported_document",
            f"{what}, not an invoice this service accepts. Send a UBL 2.1 Invoice or "
            "CreditNote, a UN/CEFACT CII D16B CrossIndustryInvoice, or a Factur-X PDF.",
        )
    where = f"namespace {namespace}" if namespace else "no namespace"
    raise UnreadableDocument(
        "unknown_namespace",
        f"The root element <{name}> has {where}, which is neither UBL 2.1 "
        f"({ubl.INVOICE}) nor UN/CEFACT CII ({cii.RSM}). Send the invoice in one of these "
        "syntaxes.",
    )


_NOT_INVOICES = {
    "urn:ferd:CrossIndustryDocument:invoice:1p0": "a ZUGFeRD 1.0 invoice (superseded since 2019; "
    "send Factur-X / ZUGFeRD 2)",
    "urn:un:unece:uncefact:data:SCRDMCCBDACIOMessageStructure:100": "an Order-X order",
}


def _parse_xml(raw: bytes, *, document_format: Format | None) -> CanonicalInvoice:
    root = read_xml(raw)
    if syntax_of(root) == "cii":
        return cii.parse_cii(root, document_format=document_format or "cii")
    try:
        return ubl.parse_ubl(root, document_format=document_format or "ubl")
    except BlankTextNeeded:
        return ubl.parse_ubl(read_xml(raw, keep_blank_text=True),
                             document_format=document_format or "ubl", blank_text_kept=True)


_NOT_BLANK = re.compile(rb"\S")


def _checked(raw: bytes) -> bytes:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"a document is bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _too_large(len(raw))
    if not _NOT_BLANK.search(raw):
        raise UnreadableDocument("empty", "The document is empty. Send the invoice file itself.")
    return raw


def _too_large(size: int) -> UnreadableDocument:
    return UnreadableDocument(
        "too_large",
        f"The document is {size / 1_048_576:.1f} MB; the limit is "
        f"{MAX_DOCUMENT_BYTES // 1_048_576} MB. Send the invoice without embedded attachments "
        "or split it.",
    )


def _is_pdf(raw: bytes) -> bool:
    if raw.startswith(b"%PDF-"):
        return True
    # Readers accept the header anywhere in the first 1,024 bytes (ISO 32000-1 annex H); an XML
    # document quoting "%PDF-" in a note is still XML.
    return b"%PDF-" in raw[:1024] and not raw.lstrip().startswith((b"<", b"\xef\xbb\xbf<"))


# Syntax modules import UnreadableDocument from here, hence the late imports.
from services.invoices.formats import cii, ubl  # noqa: E402
from services.invoices.formats._xml import BlankTextNeeded, read_xml  # noqa: E402
from services.invoices.formats.facturx import embedded_xml  # noqa: E402
