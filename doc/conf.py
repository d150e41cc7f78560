"""Sphinx configuration of the sk_tdamp documentation.

Build (offline, warnings are errors; every gallery example runs)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

Nothing here fetches anything at build time: no intersphinx, no remote images or fonts.
Two pages are written at build time from the state of the checkout, so that the docs
build whether or not optional parts exist yet:

- ``doc/generated/benchmark_results/*.md`` includes each ``benchmarks/results/*.md``;
- ``doc/generated/api_federated.rst`` documents :mod:`sk_tdamp.federated` when it can be
  imported, and says that it is not available otherwise.
"""

import importlib
import os
import sys
import warnings
from pathlib import Path

DOC = Path(__file__).resolve().parent
ROOT = DOC.parent
sys.path.insert(0, str(ROOT))

import sk_tdamp  # noqa: E402

# -- project ---------------------------------------------------------------------------
project = "sk_tdamp"
author = "the sk_tdamp developers"
copyright = "2024-2025, the sk_tdamp developers"
release = sk_tdamp.__version__
version = release

# -- extensions ------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.codeobj.json"]
default_role = "literal"
# References to other projects (scikit-learn, NumPy) stay plain text: their inventories
# are not fetched, so the build is not nitpicky about unresolved cross-references.
nitpicky = False

# autodoc / autosummary / numpydoc
autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "groupwise"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# myst: Markdown for the benchmark tables
myst_heading_anchors = 2
suppress_warnings = ["myst.header"]


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing setters.

    ``set_fit_request`` and friends are added to every estimator by scikit-learn and
    their docstrings link to scikit-learn's own user guide, which this build does not
    have.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


# -- sphinx-gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("sk_tdamp",),
    "reference_url": {"sk_tdamp": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "image_srcset": [],
    "capture_repr": (),
}

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sk_tdamp {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "logo": {"text": "sk_tdamp"},
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": [], "changelog": []}


# -- pages written from the checkout ---------------------------------------------------
GENERATED = DOC / "generated"


def _write_if_changed(path, text):
    """Write ``text`` unless the file already holds it (keeps incremental builds quiet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _benchmark_pages():
    """One MyST page per ``benchmarks/results/*.md``, including the file as it is."""
    out = GENERATED / "benchmark_results"
    results = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    wanted = set()
    for md in results:
        page = out / md.name
        rel = os.path.relpath(md, out).replace(os.sep, "/")
        _write_if_changed(page, f"```{{include}} {rel}\n```\n")
        wanted.add(page)
    if not results:
        page = out / "none.md"
        _write_if_changed(page, "# No results yet\n\nThe benchmark scripts have not "
                                "written any table to `benchmarks/results/` yet.\n")
        wanted.add(page)
    for stale in out.glob("*.md"):
        if stale not in wanted:
            stale.unlink()


_FEDERATED_NAMES = {
    "Simulation and experiments": ["partition_clients"],
    "Deployment primitives": ["initial_message", "client_shift_sums",
                              "server_shift_step", "client_step", "server_step",
                              "to_estimator"],
    "Messages": ["GlobalMessage", "LocalMessage"],
    "Errors and warnings": ["ClientError", "ClientSkippedWarning"],
}


def _federated_api_page():
    """API section of ``sk_tdamp.federated``, or a note when it cannot be imported."""
    title = ":mod:`sk_tdamp.federated`: federated learning"
    lines = [title, "=" * len(title), ""]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module("sk_tdamp.federated")
    except Exception as exc:  # any failure means "not in this build"
        lines += [
            ".. note::", "",
            "   ``sk_tdamp.federated`` could not be imported when these pages were built",
            f"   ({type(exc).__name__}). The user guide describes its planned interface.",
            ""]
        _write_if_changed(GENERATED / "api_federated.rst", "\n".join(lines))
        return False
    lines += [".. automodule:: sk_tdamp.federated", "   :no-members:",
              "   :no-index:", "", ".. currentmodule:: sk_tdamp.federated", ""]
    public = set(getattr(module, "__all__", []))
    listed = set()
    for section, names in _FEDERATED_NAMES.items():
        names = [n for n in names if n in public]
        if not names:
            continue
        template = "class.rst" if names[0][0].isupper() else "function.rst"
        lines += [section, "-" * len(section), "", ".. autosummary::",
                  "   :toctree: api", f"   :template: {template}", ""]
        lines += [f"   {n}" for n in names] + [""]
        listed.update(names)
    rest = sorted(public - listed)
    if rest:
        lines += ["Other names", "-----------", "", ".. autosummary::",
                  "   :toctree: api", ""]
        lines += [f"   {n}" for n in rest] + [""]
    _write_if_changed(GENERATED / "api_federated.rst", "\n".join(lines))
    return True


_benchmark_pages()
HAS_FEDERATED = _federated_api_page()


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    if HAS_FEDERATED:
        app.tags.add("federated")
