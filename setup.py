"""Builds the package's one compiled module, ``services/invoices/formats/_walk.pyx``: the term
reader that walks lxml's libxml2 tree in C (see that file and ``_xml.Terms``). Everything else
about the package is declared in pyproject.toml; this file exists because the extension is
compiled against the headers of the lxml installed for the build, found by
``lxml.get_include()``, which pyproject.toml cannot compute."""

import hashlib
from pathlib import Path

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

SOURCE = "services/invoices/formats/_walk.pyx"
# Compiled in, so that the package refuses a module built from another version of the source.
SOURCE_SHA256 = hashlib.sha256((Path(__file__).parent / SOURCE).read_bytes()).hexdigest()

setup(
    ext_modules=cythonize(
        [Extension("services.invoices.formats._walk", [SOURCE], include_dirs=lxml.get_include(),
                   define_macros=[("WALK_SOURCE_SHA256", f'"{SOURCE_SHA256}"')])],
        build_dir="build/cython",  # the generated C stays out of the source tree
        compiler_directives={"language_level": 3},
    ),
)
