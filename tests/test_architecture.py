"""The package's shape: no import cycle, no reaching into another module's private names,
and a fit that lets the suite's warning guard see what the core warns."""

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

import sk_tdamp
from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor
from sk_tdamp import _engine as engine

PACKAGE = Path(sk_tdamp.__file__).resolve().parent


def _modules():
    """``{dotted name: parsed module}`` of the package, tests excluded."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent)
        if "tests" in rel.parts:
            continue
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        out[name] = (path, ast.parse(path.read_text()))
    return out


def _imports(name, path, tree, modules):
    """Package modules imported anywhere in ``tree`` (function-level imports too), with
    the names taken from each: ``[(module, [names])]``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            if target in modules:
                # "from . import _engine" imports a module, not a name
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
                found += [(s, []) for s in subs]
                found.append((target, [n for n in names if f"{target}.{n}" not in modules]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name in modules]
    return found


def _graph():
    modules = _modules()
    return {name: _imports(name, path, tree, modules)
            for name, (path, tree) in modules.items()}


def _cycles(edges):
    """Every import cycle (as a list of modules) of ``{module: [imported modules]}``."""
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node, [])
    return cycles


def test_the_package_has_no_import_cycle():
    graph = _graph()
    # a package's __init__ importing its own submodules is not a cycle of the layout
    edges = {m: sorted({t for t, _ in imps if not (m == t or t.startswith(m + "."))})
             for m, imps in graph.items()}
    assert _cycles(edges) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == [["a", "b", "c", "a"]]


def test_no_module_imports_another_modules_private_names():
    offenders = [(m, t, n) for m, imps in _graph().items() for t, names in imps
                 for n in names if n.startswith("_") and not n.startswith("__")]
    assert offenders == []


def _private_attribute_uses(tree):
    """``obj._name`` reads in a module whose ``obj`` is not ``self``, ``cls`` or
    ``super()`` (accesses to another object's private members)."""
    uses = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super":
                continue
            uses.append((ast.unparse(owner), node.attr, node.lineno))
    return uses


# Private members read on an object of the module's own making: an estimator's own
# class hooks in _estimators (the template of template_settings and from_posterior's new
# instance), the posterior average's own counter in _pasp's from_arrays.
_OWN = {
    "sk_tdamp._estimators": {("estimator", "_validate_params"),
                             ("estimator", "_likelihood"), ("est", "_chain"),
                             ("est", "_target"), ("est", "_finalize")},
    "sk_tdamp._core._pasp": {("avg", "_since")},
}


def test_no_module_reads_another_objects_private_members():
    found = {}
    for name, (_, tree) in _modules().items():
        uses = {(owner, attr) for owner, attr, _ in _private_attribute_uses(tree)}
        uses -= _OWN.get(name, set())
        if uses:
            found[name] = sorted(uses)
    assert found == {}


def _inject_runtime_warning(monkeypatch):
    """Make the core warn (as from ``sk_tdamp._core._turbo``) in every epoch."""
    real = engine.run_epoch

    def run_epoch(*args, **kwargs):
        warnings.warn_explicit("injected by the test", RuntimeWarning, "_turbo.py", 1,
                               module="sk_tdamp._core._turbo")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_epoch", run_epoch)


@pytest.mark.filterwarnings("error::RuntimeWarning:sk_tdamp.*")
@pytest.mark.parametrize("Est", [EMTDAMPRegressor, EMTDAMPClassifier])
@pytest.mark.parametrize("n_init", ["auto", 3])
def test_the_suites_runtime_warning_guard_fires_in_a_default_fit(monkeypatch, Est, n_init):
    # setup.cfg turns RuntimeWarnings from sk_tdamp into errors; a fit must not record
    # or re-emit warnings in a way that hides them (it did with n_init="auto")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    _inject_runtime_warning(monkeypatch)
    with pytest.raises(RuntimeWarning, match="injected by the test"):
        Est(hidden_layer_sizes=(4,), max_iter=2, n_init=n_init, random_state=0).fit(X, y)
