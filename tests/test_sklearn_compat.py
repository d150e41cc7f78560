"""scikit-learn API compatibility of the EM-TDAMP estimators (the common checks).

Both estimators pass every common check with tiny settings, so no check is listed as an
expected failure. ``check_param_validation`` is not part of ``parametrize_with_checks`` in
scikit-learn 1.9 (scikit-learn runs it from its own ``test_common.py``), so it is called
explicitly here.
"""

import pytest
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from sk_tdamp import EMTDAMPClassifier, EMTDAMPRegressor

# Tiny settings keep the ~110 checks within a few seconds.
_SMALL = dict(hidden_layer_sizes=(8,), max_iter=5, batch_size=32, random_state=0)
ESTIMATORS = [EMTDAMPRegressor(**_SMALL), EMTDAMPClassifier(**_SMALL)]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda est: type(est).__name__)
def test_param_validation_is_informative(estimator):
    check_param_validation(type(estimator).__name__, estimator)
