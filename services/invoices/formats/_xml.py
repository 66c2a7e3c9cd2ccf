"""Reading supplier XML safely and quickly: the hardened parser, the term reader shared by the
CII and UBL mappings, and the conversion of texts to amounts and dates.

A supplier document is untrusted input. The parser never loads a DTD, never resolves an entity,
never touches the network and keeps libxml2's size limits; a document that declares a DOCTYPE
at all is refused, because no e-invoice syntax needs one and every XML entity attack (XXE,
billion laughs) starts with one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from lxml import etree

from services.invoices.formats import UnreadableDocument
from shared.events.invoice_document import UnreadableValue

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    collect_ids=False,
)

# The prolog ends where the first element starts; a DOCTYPE can only stand before it.
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:]")
# A path the trie walk can follow: prefixed element names separated by slashes.
_PLAIN_PATH = re.compile(r"[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*)*")
_UTF8_BOM = b"\xef\xbb\xbf"


def read_xml(raw: bytes) -> etree._Element:
    """The root element of ``raw``, or ``UnreadableDocument`` saying why not."""
    start = raw[3:] if raw.startswith(_UTF8_BOM) else raw
    start = start.lstrip()
    if not start.startswith(b"<") and not _looks_like_utf16(raw):
        raise UnreadableDocument(
            "not_xml",
            "The document is neither a PDF nor an XML file (it does not start with '<'). Send "
            "the invoice as UBL or CII XML, or as a Factur-X PDF.",
        )
    first_element = _FIRST_ELEMENT.search(raw)
    prolog = raw[: first_element.start()] if first_element else raw
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise _forbidden()
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnreadableDocument(
            "not_xml",
            f"The XML is not well-formed ({_first_line(str(exc))}). Check that the file is "
            "complete and was not altered after it was produced.",
        ) from None
    except ValueError as exc:  # e.g. an encoding declaration lxml refuses
        raise UnreadableDocument(
            "not_xml", f"The XML cannot be read ({_first_line(str(exc))})."
        ) from None
    # Also catches a DOCTYPE the byte scan could not see (UTF-16 documents).
    if root.getroottree().docinfo.doctype:
        raise _forbidden()
    return root


def _looks_like_utf16(raw: bytes) -> bool:
    return raw[:2] in (b"\xff\xfe", b"\xfe\xff") or raw[:2] in (b"<\x00", b"\x00<")


def _forbidden() -> UnreadableDocument:
    return UnreadableDocument(
        "xml_forbidden_construct",
        "The XML declares a DOCTYPE (DTD or entities), which e-invoices never use and which "
        "is refused for security. Send the invoice without a DOCTYPE declaration.",
    )


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "unknown error"


# --- reading terms -----------------------------------------------------------------------------

_TERMS = "terms"  # key of a trie node listing the terms whose path ends there (tags are "{ns}name")


class Terms:
    """Reads several business terms below one element in a single walk of the tree.

    Each term is a path of child elements relative to the element read (``ram:X/ram:Y``). The
    paths are compiled at import into a trie of qualified tag names; reading walks only the
    branches of the document that some path follows, in document order, so the first element
    met for a term is its first in the document. (XPath evaluations cost tens of microseconds
    each in lxml; this walk costs a few, which is what makes parsing keep up with the intake.)
    A path with a predicate gets a compiled XPath of its own.

    The value of a term is the stripped text of its first element; an empty element counts as
    absent.
    """

    def __init__(self, paths: Mapping[str, str], namespaces: Mapping[str, str]) -> None:
        self.paths = dict(paths)
        self.namespaces = dict(namespaces)
        self._trie: dict = {}
        self._separate: dict[str, etree.XPath] = {}
        for term, path in self.paths.items():
            if not _PLAIN_PATH.fullmatch(path):
                self._separate[term] = _compile(path, self.namespaces)
                continue
            node = self._trie
            for step in path.split("/"):
                node = node.setdefault(_clark(step, namespaces), {})
            node.setdefault(_TERMS, []).append(term)

    def read(self, element: etree._Element, location: str) -> Found:
        """The terms found below ``element``, which sits at ``location`` in the document."""
        found = Found(location, self.paths)
        _walk(element, self._trie, found.elements, found.texts)
        for term, xpath in self._separate.items():
            matches = xpath(element)
            if matches:
                found.elements[term] = matches
                value = (matches[0].text or "").strip()
                if value:
                    found.texts[term] = value
        return found


def _walk(element: etree._Element, node: dict, elements: dict, texts: dict) -> None:
    for child in element:
        branch = node.get(child.tag)  # comments and processing instructions never match
        if branch is None:
            continue
        terms = branch.get(_TERMS)
        if terms is not None:
            for term in terms:
                if term in elements:
                    elements[term].append(child)
                    continue
                elements[term] = [child]
                value = child.text
                if value is not None and (value := value.strip()):
                    texts[term] = value
            if len(branch) == 1:
                continue
        _walk(child, branch, elements, texts)


class Found:
    """What ``Terms.read`` found below one element: the elements of each term, and the value
    of each term (``texts``)."""

    __slots__ = ("location", "paths", "elements", "texts")

    def __init__(self, location: str, paths: dict[str, str]) -> None:
        self.location = location
        self.paths = paths
        self.elements: dict[str, list[etree._Element]] = {}
        self.texts: dict[str, str] = {}

    def first(self, term: str) -> etree._Element | None:
        elements = self.elements.get(term)
        return elements[0] if elements else None

    def where(self, term: str) -> str:
        return f"{self.location}/{self.paths[term]}"


def _compile(path: str, namespaces: dict[str, str]) -> etree.XPath:
    # Without the EXSLT regular expression functions, which no path uses and which lxml would
    # otherwise register at every evaluation: a quarter of the evaluation time.
    return etree.XPath(path, namespaces=namespaces, regexp=False)


def _clark(step: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, name = step.partition(":")
    return f"{{{namespaces[prefix]}}}{name}"


# --- values ------------------------------------------------------------------------------------

# The lexical forms of xs:decimal and xs:date, ASCII digits only: Decimal() alone would also
# take "1e3", "NaN", "1_000" or Arabic-Indic digits.
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
_DATE_102 = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


class Values:
    """Converts texts to Decimal, dates and booleans, keeping what cannot be converted as an
    ``UnreadableValue`` (term, location, text) instead of failing the whole document."""

    def __init__(self) -> None:
        self.unreadable: list[UnreadableValue] = []

    def decimal(self, found: Found, term: str, label: str | None = None) -> Decimal | None:
        raw = found.texts.get(term)
        if raw is None:
            return None
        if _DECIMAL.fullmatch(raw):
            return Decimal(raw)
        self._unreadable(found, term, raw, "a decimal number with a dot, such as 1234.50", label)
        return None

    def date_102(self, found: Found, term: str) -> date | None:
        """A CII ``udt:DateTimeString``: EN 16931 allows only format 102 (YYYYMMDD)."""
        raw = found.texts.get(term)
        if raw is None:
            return None
        match = _DATE_102.fullmatch(raw)
        if match and found.first(term).get("format", "102") == "102":
            parsed = _date(match)
            if parsed is not None:
                return parsed
        self._unreadable(
            found, term, raw, 'a date in format 102 (YYYYMMDD, e.g. 20260302) with format="102"'
        )
        return None

    def iso_date(self, found: Found, term: str) -> date | None:
        """A UBL date: YYYY-MM-DD."""
        raw = found.texts.get(term)
        if raw is None:
            return None
        match = _ISO_DATE.fullmatch(raw)
        parsed = _date(match) if match else None
        if parsed is None:
            self._unreadable(found, term, raw, "a date written YYYY-MM-DD, such as 2026-03-02")
        return parsed

    def indicator(self, found: Found, term: str, label: str) -> bool | None:
        """An xs:boolean (``true``/``false``/``1``/``0``)."""
        raw = found.texts.get(term)
        if raw is None:
            return None
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        self._unreadable(found, term, raw, "true or false", label)
        return None

    def _unreadable(
        self, found: Found, term: str, raw: str, expected: str, label: str | None = None
    ) -> None:
        self.unreadable.append(UnreadableValue(
            term=label or term, location=found.where(term), value=raw[:100], expected=expected,
        ))


def _date(match: re.Match[str]) -> date | None:
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
