"""Reading supplier XML safely and quickly: the hardened parser, the term reader shared by the
CII and UBL mappings, and the conversion of texts to amounts and dates.

A supplier document is untrusted input. The parser never loads a DTD, never resolves an entity,
never touches the network and keeps libxml2's size limits; a document that declares a DOCTYPE
at all is refused, because no e-invoice syntax needs one and every XML entity attack (XXE,
billion laughs) starts with one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree

from services.invoices.formats import UnreadableDocument
from shared.events.invoice_document import UnreadableValue

_HARDENED = dict(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    collect_ids=False,
)
# Whitespace-only text between elements (the indentation of a pretty-printed document) is not
# kept: making and freeing those nodes is a fifth of the parsing time. libxml2 drops such text
# only where it stands before or between child nodes, never when it is an element's whole
# content or touches other text, so the stripped text of an element, which is what a term's
# value is, stays the same. Only the XPath string value of an element holding comments or
# child elements can lose whitespace; the one place that compares such a value asks for
# ``read_xml(raw, keep_blank_text=True)`` (see ``BlankTextNeeded``).
_PARSER = etree.XMLParser(remove_blank_text=True, **_HARDENED)
_PARSER_KEEPING_BLANK_TEXT = etree.XMLParser(**_HARDENED)

# The prolog ends where the first element starts; a DOCTYPE can only stand before it.
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:]")
# A path the term reader can follow: prefixed element names separated by slashes.
_PLAIN_PATH = re.compile(r"[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*)*")
_UTF8_BOM = b"\xef\xbb\xbf"


def read_xml(raw: bytes, *, keep_blank_text: bool = False) -> etree._Element:
    """The root element of ``raw``, or ``UnreadableDocument`` saying why not. Whitespace-only
    text between elements is left out unless ``keep_blank_text``."""
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
        root = etree.fromstring(
            raw, _PARSER_KEEPING_BLANK_TEXT if keep_blank_text else _PARSER
        )
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


class BlankTextNeeded(Exception):
    """Raised by a mapping that met a value whose meaning may depend on whitespace the default
    parser leaves out; the document is then read again with ``keep_blank_text=True``."""


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

class Terms:
    """Reads several business terms below one element in a single walk of the tree.

    Each term is a path of child elements relative to the element read (``ram:X/ram:Y``). The
    paths are compiled at import into a trie of qualified tag names, and the trie into a Python
    function (``source``) made of one loop over the children of each element the paths go
    through, comparing each child's tag with the names the paths expect there. Reading thus
    walks only the branches of the document that some path follows, in document order, so the
    first element met for a term is its first in the document.

    Why generated code: an XPath evaluation costs several microseconds in lxml, and a generic
    walk that looks each child up in the trie spends more time in Python calls, dict lookups
    and unpacking than in lxml; unrolled, a visit is little more than making the child's proxy
    and its tag, which is what makes parsing keep up with the intake. The tag is about half
    of a visit: lxml builds a new ``{namespace}name`` string each time it is asked for one
    (some 1,200 machine instructions with the long UN/CEFACT namespaces), and no cheaper
    way to tell an element's name exists in its API, nor a faster walk in XPath or XSLT.

    ``read(element)`` answers, for each term found below ``element``, its first element; for
    the terms listed in ``every``, the list of all its elements in document order. Given
    ``order`` (every term, once), ``read_in_order(element)`` answers the same as a tuple in that
    order, None for a term not found: the readers of lines, breakdowns and allowances use it,
    since local variables unpacked from a tuple cost less than filling and querying a dict,
    which shows over twenty lines. The value of a term is the stripped text of its first
    element (``text``); an empty element counts as absent.
    """

    def __init__(
        self, paths: Mapping[str, str], namespaces: Mapping[str, str],
        *, every: Collection[str] = (), order: Sequence[str] | None = None,
    ) -> None:
        self.paths = dict(paths)
        self.namespaces = dict(namespaces)
        unknown = set(every) - set(self.paths)
        if unknown:
            raise ValueError(f"every names unknown terms: {sorted(unknown)}")
        if order is not None and (len(order) != len(self.paths) or set(order) != set(paths)):
            raise ValueError(f"order {list(order)} does not list each of {list(self.paths)} once")
        # tag → [term ending here or None, whether every element is kept, subtrie or None]
        trie: dict[str, list] = {}
        for term, path in self.paths.items():
            if not _PLAIN_PATH.fullmatch(path):
                raise ValueError(f"{term}: {path!r} is not a plain path of prefixed names")
            node = trie
            steps = path.split("/")
            for position, step in enumerate(steps, start=1):
                entry = node.setdefault(_clark(step, namespaces), [None, False, None])
                if position == len(steps):
                    if entry[0] is not None:
                        raise ValueError(f"{term} and {entry[0]} have the same path {path!r}")
                    entry[0], entry[1] = term, term in every
                else:
                    if entry[2] is None:
                        entry[2] = {}
                    node = entry[2]
        self.source = _reader_source(trie, "read", None)
        if order is not None:
            self.source += _reader_source(trie, "read_in_order", list(order))
        namespace: dict[str, Any] = {}
        exec(compile(self.source, "<Terms.read>", "exec"), namespace)
        # The generated functions themselves, not methods calling them: one Python call less
        # for each line read.
        self.read: Callable[[etree._Element], dict[str, Any]] = namespace["read"]
        if order is not None:
            self.read_in_order: Callable[[etree._Element], tuple[Any, ...]] = (
                namespace["read_in_order"])


def _reader_source(trie: dict[str, list], name: str, order: list[str] | None) -> str:
    """The source of the function ``name`` reading ``trie``: into a dict, or into one local
    variable per term of ``order`` returned as a tuple. Tags and terms are written with
    repr(), the only text taken from the paths. element[:] lists the children in one call:
    iterating the element would create an iterator object per element visited, which costs
    more than the visit. Comments and processing instructions are listed too; their tag is a
    function, equal to no name."""
    if order is None:
        lines = [f"def {name}(element):", "    found = {}"]
    else:
        lines = [f"def {name}(element):"]
        lines += [f"    term{index} = None" for index in range(len(order))]

    def store(pad: str, term: str, every: bool, child: str) -> None:
        if order is None and every:
            lines.append(f"{pad}if {term!r} in found:")
            lines.append(f"{pad}    found[{term!r}].append({child})")
            lines.append(f"{pad}else:")
            lines.append(f"{pad}    found[{term!r}] = [{child}]")
        elif order is None:
            lines.append(f"{pad}if {term!r} not in found:")
            lines.append(f"{pad}    found[{term!r}] = {child}")
        elif every:
            variable = f"term{order.index(term)}"
            lines.append(f"{pad}if {variable} is None:")
            lines.append(f"{pad}    {variable} = [{child}]")
            lines.append(f"{pad}else:")
            lines.append(f"{pad}    {variable}.append({child})")
        else:
            variable = f"term{order.index(term)}"
            lines.append(f"{pad}if {variable} is None:")
            lines.append(f"{pad}    {variable} = {child}")

    def loop(node: dict[str, list], parent: str, depth: int) -> None:
        pad = "    " * (2 * depth - 1)
        child = f"child{depth}"
        lines.append(f"{pad}for {child} in {parent}[:]:")
        # The names of repeated elements (lines, breakdowns, identifiers) are compared first:
        # in a UBL invoice the lines are children of the root, after some twenty other names.
        branches = sorted(node.items(), key=lambda branch: not branch[1][1])
        if len(branches) == 1:  # most elements on a path have one child of interest
            tag = branches[0][0]
            lines.append(f"{pad}    if {child}.tag == {tag!r}:")
        else:
            lines.append(f"{pad}    tag = {child}.tag")
        for position, (tag, (term, every, below)) in enumerate(branches):
            if position:
                lines.append(f"{pad}    elif tag == {tag!r}:")
            elif len(branches) > 1:
                lines.append(f"{pad}    if tag == {tag!r}:")
            if term is not None:
                store(f"{pad}        ", term, every, child)
            if below is not None:
                loop(below, child, depth + 1)

    if trie:
        loop(trie, "element", 1)
    if order is None:
        lines.append("    return found")
    else:
        variables = [f"term{index}" for index in range(len(order))]
        lines.append(f"    return ({', '.join(variables)}{',' if len(variables) == 1 else ''})")
    return "\n".join(lines) + "\n\n"


def text(element: etree._Element | None) -> str | None:
    """The stripped text of ``element``; None when it is absent or empty."""
    if element is None:
        return None
    value = element.text
    if value is None:
        return None
    return value.strip() or None


def _clark(step: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, name = step.partition(":")
    return f"{{{namespaces[prefix]}}}{name}"


# --- values ------------------------------------------------------------------------------------

# The lexical forms of xs:decimal and xs:date, ASCII digits only: Decimal() alone would also
# take "1e3", "NaN", "1_000" or Arabic-Indic digits.
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII).fullmatch
_DATE_102 = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII).fullmatch
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII).fullmatch


class Values:
    """Converts the texts of elements to Decimal, dates and booleans, keeping what cannot be
    converted as an ``UnreadableValue`` (term, location, text) instead of failing the whole
    document. Each conversion takes the element (or None), the term, the location of the
    element read and the ``Terms`` that read it, whose path for the term, after the location,
    is the location of an unreadable value.
    """

    __slots__ = ("unreadable", "decimals")

    def __init__(self) -> None:
        self.unreadable: list[UnreadableValue] = []
        # Text → its Decimal, for this document: rates and quantities repeat from line to line,
        # and one Decimal per text saves converting it again and, to the validation that
        # groups lines by rate, hashing it again (a Decimal hashes slower than it parses).
        # Decimals are immutable, so sharing one is invisible. Both the text as written and
        # the text stripped are keys, so that a reader may look ``element.text`` up before
        # calling ``decimal``: a hit is the Decimal ``decimal`` would answer.
        self.decimals: dict[str, Decimal] = {}

    def decimal(
        self, element: etree._Element | None, term: str, location: str, terms: Terms,
        label: str | None = None,
    ) -> Decimal | None:
        if element is None:
            return None
        return self.decimal_text(element.text, term, location, terms, label)

    def decimal_text(
        self, written: str | None, term: str, location: str, terms: Terms,
        label: str | None = None,
    ) -> Decimal | None:
        """``decimal`` of an element whose text is ``written``."""
        if written is None:
            return None
        value = self.decimals.get(written)
        if value is not None:
            return value
        raw = written.strip()
        if not raw:
            return None
        value = self.decimals.get(raw)
        if value is None:
            # ASCII digits with at most one dot, the usual form, are a decimal without running
            # the regular expression: a third of the cost of a conversion.
            if not ((raw.isascii() and raw.replace(".", "", 1).isdigit()) or _DECIMAL(raw)):
                self._unreadable(label or term, location, terms.paths[term], raw,
                                 "a decimal number with a dot, such as 1234.50")
                return None
            value = self.decimals[raw] = Decimal(raw)
        self.decimals[written] = value
        return value

    def date_102(
        self, element: etree._Element | None, term: str, location: str, terms: Terms
    ) -> date | None:
        """A CII ``udt:DateTimeString``: EN 16931 allows only format 102 (YYYYMMDD)."""
        raw = text(element)
        if raw is None:
            return None
        match = _DATE_102(raw)
        if match and element.get("format", "102") == "102":
            parsed = _date(match)
            if parsed is not None:
                return parsed
        self._unreadable(term, location, terms.paths[term], raw,
                         'a date in format 102 (YYYYMMDD, e.g. 20260302) with format="102"')
        return None

    def iso_date(
        self, element: etree._Element | None, term: str, location: str, terms: Terms
    ) -> date | None:
        """A UBL date: YYYY-MM-DD."""
        raw = text(element)
        if raw is None:
            return None
        match = _ISO_DATE(raw)
        parsed = _date(match) if match else None
        if parsed is None:
            self._unreadable(term, location, terms.paths[term], raw,
                             "a date written YYYY-MM-DD, such as 2026-03-02")
        return parsed

    def indicator(
        self, element: etree._Element | None, term: str, location: str, terms: Terms, label: str
    ) -> bool | None:
        """An xs:boolean (``true``/``false``/``1``/``0``)."""
        raw = text(element)
        if raw is None:
            return None
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        self._unreadable(label, location, terms.paths[term], raw, "true or false")
        return None

    def _unreadable(self, term: str, location: str, path: str, raw: str, expected: str) -> None:
        self.unreadable.append(UnreadableValue(
            term=term, location=f"{location}/{path}", value=raw[:100], expected=expected,
        ))


def _date(match: re.Match[str]) -> date | None:
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
