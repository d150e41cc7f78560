"""Test-session settings shared by the whole repository.

Flower's telemetry and update check, and Ray's usage statistics, are network calls made
when Flower (the optional ``flower`` extra) runs; they are switched off before anything
imports it, so the tests run offline. Without Flower installed, the doctests of
``sk_tdamp/federated/flower.py`` are not collected (its import raises by design; the
ImportError is tested in ``sk_tdamp/federated/tests/test_flower_optional.py``).
"""

import importlib.util
import os

for _name, _value in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
                      ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_name, _value)

collect_ignore = []
if importlib.util.find_spec("flwr") is None:
    collect_ignore.append("sk_tdamp/federated/flower.py")
