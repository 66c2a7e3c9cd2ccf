"""Reading XML that comes from outside: supplier invoices, bank and accountant files.

Such a document is untrusted input. The parser never loads a DTD, never resolves an entity,
never touches the network and keeps libxml2's size limits; a document that declares a DOCTYPE
at all is refused, because none of the formats the services read uses one and every XML entity
attack (XXE, billion laughs) starts with one. Each service words the refusal for the people who
sent the document (``XmlRefused.kind`` says which refusal it is).
"""

from __future__ import annotations

import re
from typing import Literal

from lxml import etree

HARDENED_OPTIONS = dict(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    collect_ids=False,
)

# The prolog ends where the first element starts; a DOCTYPE can only stand before it.
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:]")


def hardened_parser(**options: bool) -> etree.XMLParser:
    """A parser with the hardened options and ``options`` (e.g. ``remove_blank_text``)."""
    return etree.XMLParser(**HARDENED_OPTIONS, **options)


class XmlRefused(Exception):
    """Why a document was not read: ``doctype`` (it declares one), ``malformed`` (not
    well-formed XML) or ``unreadable`` (e.g. an encoding lxml refuses); ``detail`` is the first
    line of the parser's message, empty for ``doctype``."""

    def __init__(self, kind: Literal["doctype", "malformed", "unreadable"], detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def parse_untrusted(raw: bytes, parser: etree.XMLParser) -> etree._Element:
    """The root element of ``raw`` parsed by ``parser`` (one of ``hardened_parser``), or
    ``XmlRefused``."""
    first_element = _FIRST_ELEMENT.search(raw)
    prolog = raw[: first_element.start()] if first_element else raw
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise XmlRefused("doctype")
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise XmlRefused("malformed", _first_line(str(exc))) from None
    except ValueError as exc:  # e.g. an encoding declaration lxml refuses
        raise XmlRefused("unreadable", _first_line(str(exc))) from None
    # Also catches a DOCTYPE the byte scan could not see (UTF-16 documents).
    if root.getroottree().docinfo.doctype:
        raise XmlRefused("doctype")
    return root


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "unknown error"
