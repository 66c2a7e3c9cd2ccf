# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled form of ``Terms``: the same walk as the Python readers that ``Terms`` generates,
done on libxml2's tree itself.

The Python reader asks lxml, for each child of each element it goes through, for a proxy object
and its ``{namespace}name`` tag, a new string each time; here a child is told by comparing its
namespace URI and local name, two C strings, with those a path expects, and a Python object is
made only for what a term keeps. What it keeps is made by lxml's public C API
(``lxml.includes.etreepublic``): ``elementFactory`` gives the proxy ``element[:]`` would give,
``textOf`` what ``element.text`` answers and ``attributeValueFromNsName`` what
``element.get(name)`` answers, so both readers answer the same objects for the same tree. The
texts read as stripped texts or as decimals are converted as ``_xml.stripped`` and
``_xml.plain_decimal`` convert them.

The walk goes down only along the paths of the program, so its depth is at most that of the
longest path, whatever the document's depth; it only reads the tree, which the element read
keeps alive through its document.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport Py_UNICODE_ISSPACE
from libc.string cimport memset, strcmp

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree

from decimal import Decimal

cetree.import_lxml__etree()

cdef extern from *:
    """
    #ifndef WALK_SOURCE_SHA256
    #define WALK_SOURCE_SHA256 ""
    #endif
    """
    const char* WALK_SOURCE_SHA256

# The SHA-256 of the _walk.pyx this module was compiled from, given by setup.py: _xml refuses a
# module compiled from another version of the source (an editable install not rebuilt).
SOURCE_SHA256 = WALK_SOURCE_SHA256.decode("ascii")

# What a capture keeps of the elements at its path (the kinds of ``Terms``, numbered as
# ``_xml._KIND_CODES`` numbers them).
cdef enum Kind:
    KIND_ELEMENT = 0  # the first element
    KIND_EVERY = 1  # every element, in a list in document order
    KIND_TEXT = 2  # the text of the first element, as lxml's .text
    KIND_ATTRIBUTE = 3  # an attribute without namespace of the first element, as .get()
    KIND_STRIPPED = 4  # that text stripped, None when empty
    KIND_DECIMAL = 5  # that text's Decimal when known or plainly written, else the text


cdef enum:
    SLOTS_ON_STACK = 64  # up to this many terms, a read notes which it found on the stack


cdef struct Step:
    # A name a path expects below the element matched by the step that leads to it.
    const char* href
    const char* name
    int first_child  # the index of the first step below this one, or -1
    int next  # the index of the next step expected at the same place, or -1
    int first_capture  # captures[first_capture:end_capture] are taken at this step
    int end_capture


cdef struct Capture:
    int slot
    int kind
    const char* attribute


cdef class Reader:
    """A program of steps, the trie of a ``Terms``' paths, read below one element at a time.

    ``steps``: one ``(namespace, name, first_child, next, captures)`` tuple per step, where
    ``captures`` is a sequence of ``(slot, kind, attribute or None)``; the steps at the top
    start at index 0. ``slots`` names the terms; ``read_in_order`` answers their values as a
    tuple in that order, None for a term not found; ``read`` as a dict holding only the terms
    found. ``decimals`` is the cache of the decimal captures (text → Decimal), which they fill:
    required when the program has one."""

    cdef Step* _steps
    cdef Capture* _captures
    cdef int _slot_count
    cdef int _has_steps
    cdef bint _needs_decimals
    cdef tuple _slots
    cdef list _strings  # owners of the bytes the steps and captures point into

    def __cinit__(self, steps, slots):
        self._steps = NULL
        self._captures = NULL
        self._needs_decimals = False
        self._strings = []
        self._slots = tuple(slots)
        self._slot_count = len(self._slots)
        self._has_steps = len(steps) > 0
        capture_count = sum(len(step[4]) for step in steps)
        self._steps = <Step*>PyMem_Malloc(max(len(steps), 1) * sizeof(Step))
        self._captures = <Capture*>PyMem_Malloc(max(capture_count, 1) * sizeof(Capture))
        if self._steps is NULL or self._captures is NULL:
            raise MemoryError()
        cdef int index = 0
        cdef int capture_index = 0
        for href, name, first_child, next_step, captures in steps:
            self._steps[index].href = self._keep(href)
            self._steps[index].name = self._keep(name)
            self._steps[index].first_child = _index(first_child, len(steps))
            self._steps[index].next = _index(next_step, len(steps))
            self._steps[index].first_capture = capture_index
            for slot, kind, attribute in captures:
                if not 0 <= slot < self._slot_count:
                    raise ValueError(f"slot {slot} is not one of the {self._slot_count} slots")
                if kind not in (KIND_ELEMENT, KIND_EVERY, KIND_TEXT, KIND_ATTRIBUTE,
                                KIND_STRIPPED, KIND_DECIMAL):
                    raise ValueError(f"unknown kind {kind}")
                if kind == KIND_DECIMAL:
                    self._needs_decimals = True
                if (kind == KIND_ATTRIBUTE) != (attribute is not None):
                    raise ValueError("an attribute name goes with an attribute capture only")
                self._captures[capture_index].slot = slot
                self._captures[capture_index].kind = kind
                self._captures[capture_index].attribute = (
                    self._keep(attribute) if attribute is not None else NULL)
                capture_index += 1
            self._steps[index].end_capture = capture_index
            index += 1

    def __dealloc__(self):
        PyMem_Free(self._steps)
        PyMem_Free(self._captures)

    cdef const char* _keep(self, text) except NULL:
        encoded = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if b"\0" in encoded:
            raise ValueError(f"{text!r} holds a NUL character")
        self._strings.append(encoded)
        return <const char*>encoded

    def read_in_order(self, cetree._Element element not None, dict decimals=None):
        """The value of each term, in the order of ``slots``."""
        cdef list values = [None] * self._slot_count
        cdef char on_stack[SLOTS_ON_STACK]
        cdef char* seen = self._seen_buffer(on_stack)
        try:
            self._read(element, decimals, values, seen)
        finally:
            if seen is not on_stack:
                PyMem_Free(seen)
        return tuple(values)

    def read(self, cetree._Element element not None, dict decimals=None):
        """The value of each term found, by term."""
        cdef list values = [None] * self._slot_count
        cdef char on_stack[SLOTS_ON_STACK]
        cdef char* seen = self._seen_buffer(on_stack)
        cdef int slot
        try:
            self._read(element, decimals, values, seen)
            return {self._slots[slot]: values[slot]
                    for slot in range(self._slot_count) if seen[slot]}
        finally:
            if seen is not on_stack:
                PyMem_Free(seen)

    cdef char* _seen_buffer(self, char* on_stack) except NULL:
        # Where a read notes which slots it has found: ``on_stack`` when they fit.
        if self._slot_count <= SLOTS_ON_STACK:
            return on_stack
        cdef char* seen = <char*>PyMem_Malloc(self._slot_count)
        if seen is NULL:
            raise MemoryError()
        return seen

    cdef int _read(self, cetree._Element element, dict decimals, list values,
                   char* seen) except -1:
        if element._c_node is NULL:
            raise ValueError("the element belongs to no document")
        if decimals is None and self._needs_decimals:
            raise TypeError("this reader converts decimals: give it the decimals read so far")
        memset(seen, 0, self._slot_count)
        if self._has_steps:
            self._walk(element._doc, element._c_node, 0, decimals, values, seen)
        return 0

    cdef int _walk(self, cetree._Document doc, tree.xmlNode* parent, int first, dict decimals,
                   list values, char* seen) except -1:
        cdef tree.xmlNode* child = parent.children
        cdef Step* step
        cdef int index
        while child is not NULL:
            # Elements only: the text, comments and processing instructions between them
            # have no name a path can expect.
            if (child.type == tree.XML_ELEMENT_NODE and child.ns is not NULL
                    and child.ns.href is not NULL):
                index = first
                while index >= 0:
                    step = &self._steps[index]
                    if (strcmp(<const char*>child.name, step.name) == 0
                            and strcmp(<const char*>child.ns.href, step.href) == 0):
                        if step.first_capture < step.end_capture:
                            self._capture(doc, child, step, decimals, values, seen)
                        if step.first_child >= 0:
                            self._walk(doc, child, step.first_child, decimals, values, seen)
                        break
                    index = step.next
            child = child.next
        return 0

    cdef int _capture(self, cetree._Document doc, tree.xmlNode* node, Step* step,
                      dict decimals, list values, char* seen) except -1:
        cdef Capture* capture
        cdef int index
        for index in range(step.first_capture, step.end_capture):
            capture = &self._captures[index]
            if capture.kind == KIND_EVERY:
                if seen[capture.slot]:
                    (<list>values[capture.slot]).append(cetree.elementFactory(doc, node))
                else:
                    values[capture.slot] = [cetree.elementFactory(doc, node)]
                    seen[capture.slot] = 1
            elif not seen[capture.slot]:
                if capture.kind == KIND_TEXT:
                    values[capture.slot] = cetree.textOf(node)
                elif capture.kind == KIND_STRIPPED:
                    values[capture.slot] = _stripped(cetree.textOf(node))
                elif capture.kind == KIND_DECIMAL:
                    values[capture.slot] = _plain_decimal(cetree.textOf(node), decimals)
                elif capture.kind == KIND_ATTRIBUTE:
                    values[capture.slot] = cetree.attributeValueFromNsName(
                        node, NULL, <const unsigned char*>capture.attribute)
                else:
                    values[capture.slot] = cetree.elementFactory(doc, node)
                seen[capture.slot] = 1
        return 0


cdef object _stripped(str text):
    # _xml.stripped: str.strip() or None. Most texts have nothing to strip, which the ends
    # tell, with the test str.strip() applies.
    if text is None:
        return None
    cdef Py_ssize_t length = len(text)
    if length == 0:
        return None
    if not Py_UNICODE_ISSPACE(text[0]) and not Py_UNICODE_ISSPACE(text[length - 1]):
        return text
    return text.strip() or None


cdef object _plain_decimal(str text, dict decimals):
    # _xml.plain_decimal: the Decimal of a text already read, or of ASCII digits with at most
    # one dot (stored for the next time), else the text itself.
    if text is None:
        return None
    value = decimals.get(text)
    if value is not None:
        return value
    cdef Py_UCS4 character
    cdef Py_ssize_t digits = 0
    cdef Py_ssize_t dots = 0
    for character in text:
        if u'0' <= character <= u'9':
            digits += 1
        elif character == u'.':
            dots += 1
        else:
            return text
    if digits == 0 or dots > 1:
        return text
    value = Decimal(text)
    decimals[text] = value
    return value


cdef int _index(value, int count) except -2:
    if value is None or value == -1:
        return -1
    if not 0 <= value < count:
        raise ValueError(f"step {value} is not one of the {count} steps")
    return value
