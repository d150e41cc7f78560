"""Every floor, clip and bound of the model, named after the reason it exists.

The switch points of the special-function approximations (continued fraction, asymptotic
series) stay next to their function in ``_special`` and ``_likelihoods``: they belong to
the method of evaluation, not to the model. Section numbers are those of ALGORITHM.md.

==========================  ==========================================================
name                        reason
==========================  ==========================================================
FORWARD_VARIANCE_FLOOR      5.3: ``V = 0`` (a point mass) stays finite in the tilted
                            moments; standardized arguments ``omega / sqrt(V)`` then
                            stay far from overflow for any ``|omega| < 1e50``
GAUSSIAN_V_BOUNDS           4: the Gaussian noise variance M-step (standardized units)
PROBIT_V_BOUNDS             4: the probit temperature search interval
RHO_BOUNDS                  4: the support-probability M-step keeps ``logit(rho)``
                            finite and a layer able to grow back
RHO_INIT_CLIP               2: an initial ``rho`` of exactly 0 or 1 has no log-odds
SLAB_VARIANCE_FLOOR         4: the optional slab-variance M-step on a layer whose
                            active weights are all zero
==========================  ==========================================================
"""

import numpy as np

FORWARD_VARIANCE_FLOOR = 1e-200
GAUSSIAN_V_BOUNDS = (1e-6, 1e6)
PROBIT_V_BOUNDS = (1e-3, 1e3)
RHO_BOUNDS = (1e-3, 1.0 - 1e-3)
RHO_INIT_CLIP = (1e-6, 1.0 - 1e-6)
SLAB_VARIANCE_FLOOR = 1e-8
TINY = float(np.finfo(np.float64).tiny)
