"""Factur-X / ZUGFeRD 2: the invoice is the XML embedded in the PDF (the PDF is only its
human-readable view, Factur-X 1.0 §5), so reading a Factur-X means extracting that XML.

The ``factur-x`` library answers a miss with ``(False, False)`` and, by default, silently skips
an embedded XML that fails its XSD. Here the XSD check is off (the canonical parser and the
EN 16931 rules judge the content and say what is wrong) and a miss is an explicit
``UnreadableDocument``. When the library finds nothing it recognises but the PDF does carry an
XML file, that file is handed to the hardened parser anyway, so that the supplier learns what is
wrong with it (a DOCTYPE, a wrong namespace, broken XML) rather than that it is missing.
"""

from __future__ import annotations

from io import BytesIO

from facturx import get_facturx_xml_from_pdf, get_xml_from_pdf
from pypdf import PdfReader

from services.invoices.formats import UnreadableDocument

# The names the standards give the embedded invoice, preferred to any other XML attachment.
_STANDARD_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")


def embedded_xml(pdf: bytes) -> bytes:
    """The invoice XML embedded in ``pdf``, or ``UnreadableDocument``."""
    try:
        _, xml = get_facturx_xml_from_pdf(pdf, check_xsd=False)
        if not xml:
            _, xml = get_xml_from_pdf(pdf, check_xsd=False, filenames=list(_STANDARD_NAMES))
        if not xml:
            # A UBL invoice, or a CII under another name.
            _, xml = get_xml_from_pdf(pdf, check_xsd=False, filenames=["*.xml"])
        if not xml:
            xml = _any_xml_attachment(pdf)
    except RecursionError:
        raise _unreadable("its object structure is nested too deeply") from None
    except Exception as exc:  # pypdf raises many types on damaged input; all mean the same here
        raise _unreadable(type(exc).__name__) from None
    if not xml:
        raise UnreadableDocument(
            "pdf_without_xml",
            "The PDF carries no embedded XML invoice (factur-x.xml): it is a plain PDF, not a "
            "Factur-X. Send a Factur-X PDF, or the invoice as UBL or CII XML.",
        )
    return bytes(xml)


def _any_xml_attachment(pdf: bytes) -> bytes | None:
    attachments = [
        (attachment.name or "", attachment.content)
        for attachment in PdfReader(BytesIO(pdf)).attachment_list
        if (attachment.name or "").lower().endswith(".xml") and attachment.content
    ]
    attachments.sort(key=lambda item: item[0].lower() not in _STANDARD_NAMES)
    return attachments[0][1] if attachments else None


def _unreadable(detail: str) -> UnreadableDocument:
    return UnreadableDocument(
        "pdf_unreadable",
        f"The PDF cannot be read ({detail}); it may be truncated or damaged. Export the "
        "Factur-X PDF again and resend it.",
    )
