"""Pure NumPy/SciPy core of EM-TDAMP (no scikit-learn import).

Symbols follow ALGORITHM.md (see doc/algorithm.rst).
"""
