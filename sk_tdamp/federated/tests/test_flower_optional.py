"""sk_tdamp without the optional ``flower`` extra (Flower blocked from importing)."""

import importlib
import sys

import pytest


def _block_flower(monkeypatch):
    """Make ``import flwr`` (and every ``flwr.*``) fail as if it were not installed."""
    for name in [n for n in sys.modules if n == "flwr" or n.startswith("flwr.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flwr", None)  # None in sys.modules: ImportError
    monkeypatch.delitem(sys.modules, "sk_tdamp.federated.flower", raising=False)


def test_flower_module_names_the_extra_when_flower_is_missing(monkeypatch):
    _block_flower(monkeypatch)
    with pytest.raises(ImportError, match=r'pip install "sk-tdamp\[flower\]"'):
        importlib.import_module("sk_tdamp.federated.flower")


def test_package_works_without_flower(monkeypatch):
    _block_flower(monkeypatch)
    for name in [n for n in sys.modules if n == "sk_tdamp" or n.startswith("sk_tdamp.")]:
        monkeypatch.delitem(sys.modules, name)
    federated = importlib.import_module("sk_tdamp.federated")
    sk_tdamp = importlib.import_module("sk_tdamp")
    assert "flwr" not in {n.split(".")[0] for n in sys.modules if sys.modules[n]}
    reg = sk_tdamp.EMTDAMPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    msg = federated.initial_message(reg, n_features=2, n_samples=10)
    assert federated.to_estimator(msg).predict([[0.0, 0.0]]).shape == (1,)
