"""sk_tdamp: Bayesian neural networks fitted by EM-TDAMP, as scikit-learn estimators.

EM-TDAMP (expectation maximization with turbo deep approximate message passing) fits a
multilayer perceptron with a group-sparse prior: it returns a weight posterior, a
predictive uncertainty and a pruned network.
"""

from ._estimators import EMTDAMPClassifier, EMTDAMPRegressor

__version__ = "0.1.0.dev0"

__all__ = ["EMTDAMPClassifier", "EMTDAMPRegressor", "__version__"]
