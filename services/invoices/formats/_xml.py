"""Reading supplier XML safely and quickly: the hardened parser (``shared.xml``), the term
reader shared by the CII and UBL mappings, and the conversion of texts to amounts and dates.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from services.invoices.formats import UnreadableDocument
from shared.events.invoice_document import UnreadableValue
from shared.xml import XmlRefused, hardened_parser, parse_untrusted

# Whitespace-only text between elements (the indentation of a pretty-printed document) is not
# kept: making and freeing those nodes is a fifth of the parsing time. libxml2 drops such text
# only where it stands before or between child nodes, never when it is an element's whole
# content or touches other text, so the stripped text of an element, which is what a term's
# value is, stays the same. Only the XPath string value of an element holding comments or
# child elements can lose whitespace; the one place that compares such a value asks for
# ``read_xml(raw, keep_blank_text=True)`` (see ``BlankTextNeeded``).
_PARSER = hardened_parser(remove_blank_text=True)
_PARSER_KEEPING_BLANK_TEXT = hardened_parser()

# A path the term reader can follow: prefixed element names separated by slashes, possibly
# ending with the name of an attribute without namespace.
_PLAIN_PATH = re.compile(
    r"[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*)*(/@[A-Za-z_][\w.-]*)?")
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
    try:
        return parse_untrusted(raw, _PARSER_KEEPING_BLANK_TEXT if keep_blank_text else _PARSER)
    except XmlRefused as refused:
        if refused.kind == "doctype":
            raise UnreadableDocument(
                "xml_forbidden_construct",
                "The XML declares a DOCTYPE (DTD or entities), which e-invoices never use and "
                "which is refused for security. Send the invoice without a DOCTYPE declaration.",
            ) from None
        if refused.kind == "malformed":
            raise UnreadableDocument(
                "not_xml",
                f"The XML is not well-formed ({refused.detail}). Check that the file is "
                "complete and was not altered after it was produced.",
            ) from None
        raise UnreadableDocument("not_xml", f"The XML cannot be read ({refused.detail}).") from None


class BlankTextNeeded(Exception):
    """Raised by a mapping that met a value whose meaning may depend on whitespace the default
    parser leaves out; the document is then read again with ``keep_blank_text=True``."""


def _looks_like_utf16(raw: bytes) -> bool:
    return raw[:2] in (b"\xff\xfe", b"\xfe\xff") or raw[:2] in (b"<\x00", b"\x00<")


# --- reading terms -----------------------------------------------------------------------------

try:
    from services.invoices.formats import _walk
except ModuleNotFoundError as exc:  # not built (pip install -e . builds it): Python readers only
    if exc.name != "services.invoices.formats._walk":
        raise
    _walk = None


def _check_built_from_source() -> None:
    """An editable install keeps the compiled module while its source changes: one compiled
    from another version of ``_walk.pyx`` than the one beside it is refused."""
    source = Path(__file__).with_name("_walk.pyx")
    if _walk is None or not source.exists():  # an installed package carries no source
        return
    if _walk.SOURCE_SHA256 != hashlib.sha256(source.read_bytes()).hexdigest():
        raise ImportError(f"{_walk.__file__} was compiled from another version of {source}: "
                          "rebuild it with pip install -e .")


_check_built_from_source()

# What a term keeps of the elements at its path.
ELEMENT, EVERY, TEXT, ATTRIBUTE, STRIPPED, DECIMAL = (
    "element", "every", "text", "attribute", "stripped", "decimal")
# Their numbers in the programs of _walk.Reader (its enum Kind).
_KIND_CODES = {ELEMENT: 0, EVERY: 1, TEXT: 2, ATTRIBUTE: 3, STRIPPED: 4, DECIMAL: 5}


class Terms:
    """Reads several business terms below one element in a single walk of the tree.

    Each term is a path of child elements relative to the element read (``ram:X/ram:Y``),
    possibly ending with an attribute of the last one (``ram:X/ram:Y/@unitCode``). The paths
    are compiled at import into a trie of qualified tag names. Reading walks only the branches
    of the document that some path follows, in document order, so the first element met for a
    term is its first in the document.

    The trie is read two ways, which answer the same objects:

    - compiled (``compiled``, the ``_walk`` extension built with the package): libxml2's tree
      is walked in C, comparing each child's namespace and name with those the trie expects
      there, and a Python object is made only for what a term keeps. This is the reader in use
      whenever the extension is built.
    - in Python (``source``): a function generated from the trie, one loop over the children
      of each element the paths go through comparing each child's tag with the names expected
      there. An XPath evaluation costs several microseconds in lxml, and a generic walk that
      looks each child up in the trie spends more in Python calls and dict lookups than the
      unrolled loops; but each child visited still costs a proxy object and its tag, a new
      ``{namespace}name`` string each time (some 1,200 machine instructions with the long
      UN/CEFACT namespaces), which is most of the cost of reading an invoice in Python and
      why the compiled reader exists.

    ``read(element)`` answers, for each term found below ``element``, its value: by default the
    first element of the term; for the terms listed in ``every``, the list of all its elements
    in document order; for a path ending in ``@name``, that attribute of the first element at
    the path before it, as ``.get(name)`` answers it; for the terms ``read_as`` names, the text
    of the first element as lxml's ``.text`` answers it, read as:

    - ``"text"``: the text itself (None when the element has none);
    - ``"stripped"``: the text stripped, None when empty (``stripped``);
    - ``"decimal"``: its Decimal when the text was read before or is plainly a decimal, else
      the text itself, for ``Values.decimal_text`` to judge (``plain_decimal``). The reader
      then takes the ``Values.decimals`` of the document: ``read(element, decimals)``.

    Given ``order`` (every term, once), ``read_in_order(element)`` answers the values as a
    tuple in that order, None for a term not found: the readers of lines, breakdowns and
    allowances use it, since local variables unpacked from a tuple cost less than filling and
    querying a dict, which shows over twenty lines.
    """

    def __init__(
        self, paths: Mapping[str, str], namespaces: Mapping[str, str],
        *, every: Collection[str] = (), order: Sequence[str] | None = None,
        read_as: Mapping[str, str] | None = None,
    ) -> None:
        self.paths = dict(paths)
        self.namespaces = dict(namespaces)
        read_as = dict(read_as or {})
        for option, terms in (("every", every), ("read_as", read_as)):
            unknown = set(terms) - set(self.paths)
            if unknown:
                raise ValueError(f"{option} names unknown terms: {sorted(unknown)}")
        if set(every) & set(read_as):
            raise ValueError(f"terms both in every and in read_as: "
                             f"{sorted(set(every) & set(read_as))}")
        wrong = {term: kind for term, kind in read_as.items()
                 if kind not in (TEXT, STRIPPED, DECIMAL)}
        if wrong:
            raise ValueError(f"read_as: {wrong} is not text, stripped or decimal")
        if order is not None and (len(order) != len(self.paths) or set(order) != set(paths)):
            raise ValueError(f"order {list(order)} does not list each of {list(self.paths)} once")
        self.order = list(order) if order is not None else list(self.paths)
        # tag → [captures, subtrie or None]; a capture is (term, kind, attribute or None).
        trie: dict[str, list] = {}
        for term, path in self.paths.items():
            if not _PLAIN_PATH.fullmatch(path):
                raise ValueError(f"{term}: {path!r} is not a plain path of prefixed names, "
                                 "possibly ending with /@name")
            steps = path.split("/")
            attribute = steps.pop()[1:] if steps[-1].startswith("@") else None
            if attribute is not None and (term in every or term in read_as):
                raise ValueError(f"{term}: an attribute is read as its value, not as elements "
                                 "or a text")
            kind = (ATTRIBUTE if attribute is not None else EVERY if term in every
                    else read_as.get(term, ELEMENT))
            node, entry = trie, None
            for position, step in enumerate(steps, start=1):
                entry = node.setdefault(_clark(step, namespaces), [[], None])
                if position < len(steps):
                    if entry[1] is None:
                        entry[1] = {}
                    node = entry[1]
            for other, _, other_attribute in entry[0]:
                if other_attribute == attribute:
                    raise ValueError(f"{term} and {other} have the same path {path!r}")
            entry[0].append((term, kind, attribute))
        self.source = _reader_source(trie, "read", self.order, as_tuple=False)
        if order is not None:
            self.source += _reader_source(trie, "read_in_order", self.order, as_tuple=True)
        namespace: dict[str, Any] = {"stripped": stripped, "plain_decimal": plain_decimal}
        exec(compile(self.source, "<Terms.read>", "exec"), namespace)
        self._python = (namespace["read"], namespace.get("read_in_order"))
        self.compiled = None
        if _walk is not None:
            slot = {term: index for index, term in enumerate(self.order)}
            self.compiled = _walk.Reader(_program(trie, slot), self.order)
        self._ordered = order is not None
        self._use(compiled=self.compiled is not None)
        _ALL_TERMS.add(self)

    def _use(self, *, compiled: bool) -> None:
        # The reading functions themselves, not methods calling them: one Python call less
        # for each line read.
        reader = self.compiled if compiled else None
        self.read: Callable[..., dict[str, Any]] = (
            reader.read if reader is not None else self._python[0])
        if self._ordered:
            self.read_in_order: Callable[..., tuple[Any, ...]] = (
                reader.read_in_order if reader is not None else self._python[1])


_ALL_TERMS: weakref.WeakSet[Terms] = weakref.WeakSet()


def compiled_readers() -> bool:
    """Whether the ``_walk`` extension is built, and so whether ``Terms`` can read compiled."""
    return _walk is not None


def use_compiled_readers(enabled: bool) -> None:
    """Makes every ``Terms`` read compiled (the default when the extension is built) or in
    Python. The two answer the same; the switch is there to show it."""
    if enabled and _walk is None:
        raise RuntimeError("the _walk extension is not built: install the package "
                           "(pip install -e .) to build it")
    for terms in list(_ALL_TERMS):
        terms._use(compiled=enabled)


def _program(trie: dict[str, list], slot: dict[str, int]) -> list[tuple]:
    """The steps of ``trie`` as ``_walk.Reader`` takes them: the names expected at one place are
    consecutive steps, the first level from index 0, each step pointing to the first of the
    names expected below it."""
    steps: list[tuple | None] = []

    def level(node: dict[str, list]) -> int:
        start = len(steps)
        branches = _branches(node)
        steps.extend([None] * len(branches))
        for offset, (tag, (captures, below)) in enumerate(branches):
            namespace, _, name = tag[1:].rpartition("}")
            steps[start + offset] = (
                namespace, name, level(below) if below else -1,
                start + offset + 1 if offset + 1 < len(branches) else -1,
                [(slot[term], _KIND_CODES[kind], attribute) for term, kind, attribute in captures],
            )
        return start

    if trie:
        level(trie)
    return steps  # type: ignore[return-value]


def _branches(node: dict[str, list]) -> list[tuple[str, list]]:
    # The names of repeated elements (lines, breakdowns, identifiers) are compared first: in a
    # UBL invoice the lines are children of the root, after some twenty other names.
    return sorted(node.items(),
                  key=lambda branch: not any(kind == EVERY for _, kind, _ in branch[1][0]))


def _reader_source(trie: dict[str, list], name: str, order: list[str], *, as_tuple: bool) -> str:
    """The source of the Python function ``name`` reading ``trie``, answering a dict or, if
    ``as_tuple``, a tuple in ``order``. Tags, terms and attribute names are written with
    repr(), the only text taken from the paths. While walking, the function keeps the first
    element met at each place where a term ends (``first<n>``) and the list of elements of each
    ``every`` term; the values are taken from them at the end. element[:] lists the children
    in one call: iterating the element would create an iterator object per element visited,
    which costs more than the visit. Comments and processing instructions are listed too;
    their tag is a function, equal to no name."""
    lines = [f"def {name}(element, decimals=None):"]
    slot = {term: index for index, term in enumerate(order)}
    # (term, kind, attribute, variable holding its element or elements), in the order of slots.
    values: list[tuple[str, str, str | None, str]] = []
    body: list[str] = []
    firsts = 0

    def loop(node: dict[str, list], parent: str, depth: int) -> None:
        nonlocal firsts
        pad = "    " * (2 * depth - 1)
        child = f"child{depth}"
        body.append(f"{pad}for {child} in {parent}[:]:")
        branches = _branches(node)
        if len(branches) == 1:  # most elements on a path have one child of interest
            body.append(f"{pad}    if {child}.tag == {branches[0][0]!r}:")
        else:
            body.append(f"{pad}    tag = {child}.tag")
        for position, (tag, (captures, below)) in enumerate(branches):
            if position:
                body.append(f"{pad}    elif tag == {tag!r}:")
            elif len(branches) > 1:
                body.append(f"{pad}    if tag == {tag!r}:")
            inner = f"{pad}        "
            first = None
            for term, kind, attribute in captures:
                if kind == EVERY:
                    variable = f"term{slot[term]}"
                    body.append(f"{inner}if {variable} is None:")
                    body.append(f"{inner}    {variable} = [{child}]")
                    body.append(f"{inner}else:")
                    body.append(f"{inner}    {variable}.append({child})")
                else:
                    if first is None:
                        first = f"first{firsts}"
                        firsts += 1
                        body.append(f"{inner}if {first} is None:")
                        body.append(f"{inner}    {first} = {child}")
                    variable = first
                values.append((term, kind, attribute, variable))
            if below is not None:
                loop(below, child, depth + 1)

    if trie:
        loop(trie, "element", 1)
    values.sort(key=lambda value: slot[value[0]])
    lines += [f"    first{index} = None" for index in range(firsts)]
    lines += [f"    term{slot[term]} = None" for term, kind, _, _ in values if kind == EVERY]
    lines += body

    def value_of(kind: str, attribute: str | None, variable: str) -> str:
        if kind == TEXT:
            return f"{variable}.text"
        if kind == STRIPPED:
            return f"stripped({variable}.text)"
        if kind == DECIMAL:
            return f"plain_decimal({variable}.text, decimals)"
        if kind == ATTRIBUTE:
            return f"{variable}.get({attribute!r})"
        return variable

    if any(kind == DECIMAL for _, kind, _, _ in values):
        lines.insert(1, "    if decimals is None:")
        lines.insert(2, "        raise TypeError('this reader converts decimals: give it the "
                        "decimals read so far')")
    if as_tuple:
        for term, kind, attribute, variable in values:
            if kind not in (ELEMENT, EVERY):
                lines.append(f"    term{slot[term]} = None if {variable} is None else "
                             f"{value_of(kind, attribute, variable)}")
            elif kind == ELEMENT:
                lines.append(f"    term{slot[term]} = {variable}")
        variables = [f"term{index}" for index in range(len(order))]
        lines.append(f"    return ({', '.join(variables)}{',' if len(variables) == 1 else ''})")
    else:
        lines.append("    found = {}")
        for term, kind, attribute, variable in values:
            lines.append(f"    if {variable} is not None:")
            lines.append(f"        found[{term!r}] = {value_of(kind, attribute, variable)}")
        lines.append("    return found")
    return "\n".join(lines) + "\n\n"


def text(element: etree._Element | None) -> str | None:
    """The stripped text of ``element``; None when it is absent or empty."""
    if element is None:
        return None
    value = element.text
    if value is None:
        return None
    return value.strip() or None


def stripped(value: str | None) -> str | None:
    """``value`` (the text of an element read as a text) stripped; None when absent or empty,
    as ``text`` answers for the element."""
    if value is None:
        return None
    return value.strip() or None


def plain_decimal(written: str | None, decimals: dict[str, Decimal]) -> Decimal | str | None:
    """The Decimal of ``written`` when ``decimals`` (``Values.decimals``) knows it or when it is
    plainly a decimal (ASCII digits with at most one dot, nothing else), stored in ``decimals``
    then; otherwise ``written`` itself, which ``Values.decimal_text`` judges. The Decimal is
    the one ``decimal_text`` answers for the same text, cached the same way: most amounts are
    written plainly, and this is the part of their reading the compiled readers do."""
    if written is None:
        return None
    value = decimals.get(written)
    if value is not None:
        return value
    if written.isascii() and written.replace(".", "", 1).isdigit():
        value = decimals[written] = Decimal(written)
        return value
    return written


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
        if _DATE_102(raw) and element.get("format", "102") == "102":
            parsed = _date(raw)
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
        parsed = _date(raw) if _ISO_DATE(raw) else None
        if parsed is None:
            self._unreadable(term, location, terms.paths[term], raw,
                             "a date written YYYY-MM-DD, such as 2026-03-02")
        return parsed

    def indicator(
        self, written: str | None, term: str, location: str, terms: Terms, label: str
    ) -> bool | None:
        """An xs:boolean (``true``/``false``/``1``/``0``), from the text of its element."""
        raw = stripped(written)
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


def _date(raw: str) -> date | None:
    """The date of ``raw``, YYYYMMDD or YYYY-MM-DD in ASCII digits (one of the patterns above
    matched it), or None for a day that does not exist: ``fromisoformat`` reads both forms since
    Python 3.11, at a third of the cost of building the date from the digits."""
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None
