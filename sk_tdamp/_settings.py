"""Every setting of a fit, resolved once from the estimator's parameters.

:func:`resolve_settings` turns the parameters (``get_params()``), which may say
``"auto"``, into a frozen :class:`Settings`: the one place where options are read. The
engine, the federated clients and server, and the read-out see nothing else; a fitted
estimator exposes the settings its fit used as ``settings_``, and federated messages carry
them.

The ``"auto"`` values, per likelihood (``"gaussian"``: the regressor, ``"probit"``: the
classifier), are the rows of ``_AUTO`` below; doc/algorithm.rst gives the measurement
behind each one.
"""

import json
from dataclasses import asdict, dataclass, fields
from numbers import Integral

import numpy as np

from ._core._turbo import TurboConfig

# "auto" per likelihood. Pairs keyed by depth are (up to two hidden layers, more); pairs
# keyed by pass are (first pass over the data, later passes).
_AUTO = {
    "gaussian": dict(n_turbo_iter=(2, 2), prior_variance=(1.0, 1.0), centering=False,
                     v_warmup=(0, 0)),
    "probit": dict(n_turbo_iter=(2, 1), prior_variance=(16.0, 1.0), centering=True,
                   v_warmup=(0, 1)),
}
# n_init="auto": at most this many initializations while the fits end collapsed, the
# later ones from noise_variance_init times the restart scale.
_AUTO_MAX_INIT = 3
_RESTART_NOISE_SCALE = 0.1


@dataclass(frozen=True)
class Settings:
    """The resolved settings of a fit (no ``"auto"`` left).

    Attributes
    ----------
    likelihood : {"gaussian", "probit"}
    hidden_layer_sizes : tuple of int
    activation : {"relu", "identity"}
    batch_size, max_iter, n_iter_no_change : int
    tol : float
    shuffle, verbose : bool
    init_noise_variances : tuple of float
        One entry per initialization ``fit`` may run (``n_init``), its initial ``v``.
    restart_while_collapsed : bool
        Stop after the first initialization whose fit is not collapsed (``n_init="auto"``);
        otherwise run them all.
    collapse_width : tuple of int
        ``(wide, narrow)``: a hidden layer of at least ``wide`` neurons keeping at most
        ``narrow`` counts as collapsed (without a target density).
    n_turbo_iter, damping : tuple
        ``(first pass, later passes)``: turbo iterations per minibatch and damping.
    prior_variance : float
        Slab variance scale (``sigma_l^2 = prior_variance / n_in``).
    learn_prior_variance : bool
    bias_variance : float
    rho_init : float
    learn_rho : bool
    rho_warmup : int
        Epochs before the first rho M-step.
    target_density, input_rho_init, input_target_density : float or None
    learn_noise_variance : bool
    v_warmup : int
        Epochs before the first noise-variance M-step.
    pasp_memory : float
    init_evidence : float
    centering : bool
    posterior_average : float
    breakdown_margin : float
        ``fit`` keeps its best epoch when the objective ends this far above it.
    local_epochs : int
    client_likelihood_power : float
    dtype : {"float64", "float32"}
        Floating type of the weight-sized arrays and their products.
    """

    likelihood: str
    hidden_layer_sizes: tuple
    activation: str
    batch_size: int
    max_iter: int
    tol: float
    n_iter_no_change: int
    shuffle: bool
    verbose: bool
    init_noise_variances: tuple
    restart_while_collapsed: bool
    collapse_width: tuple
    n_turbo_iter: tuple
    damping: tuple
    prior_variance: float
    learn_prior_variance: bool
    bias_variance: float
    rho_init: float
    learn_rho: bool
    rho_warmup: int
    target_density: float | None
    input_rho_init: float | None
    input_target_density: float | None
    learn_noise_variance: bool
    v_warmup: int
    pasp_memory: float
    init_evidence: float
    centering: bool
    posterior_average: float
    breakdown_margin: float
    local_epochs: int
    client_likelihood_power: float
    dtype: str = "float64"

    @property
    def n_init(self):
        """Largest number of initializations ``fit`` runs."""
        return len(self.init_noise_variances)

    def turbo(self, first_pass, evidence_scale=1.0):
        """The E-step configuration of an epoch (``first_pass``: nothing seen yet)."""
        k = 0 if first_pass else 1
        return TurboConfig(activation=self.activation, likelihood=self.likelihood,
                           n_sweeps=self.n_turbo_iter[k], damping=self.damping[k],
                           evidence_scale=evidence_scale)

    def layer_kappas(self, n_layers):
        """Target density of each layer's groups (inputs first), None where learned."""
        return [self.input_target_density] + [self.target_density] * (n_layers - 1)

    def to_json(self):
        """The settings as a JSON string (the federated messages' encoding)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        types = {f.name: f.type for f in fields(cls)}
        for name, value in data.items():  # JSON has lists where the dataclass has tuples
            if isinstance(value, list) and types[name] is tuple:
                data[name] = tuple(value)
        return cls(**data)


def hidden_sizes(hidden_layer_sizes):
    """``hidden_layer_sizes`` as a tuple of positive ints, or a ``ValueError``."""
    sizes = hidden_layer_sizes
    if isinstance(sizes, Integral):
        sizes = [sizes]
    sizes = list(sizes)
    valid = all(isinstance(s, Integral | np.integer) and not isinstance(s, bool | np.bool_)
                and s >= 1 for s in sizes)
    if not valid:
        raise ValueError("hidden_layer_sizes must be a sequence of positive integers, got "
                         f"{hidden_layer_sizes!r}.")
    return tuple(int(s) for s in sizes)


def resolve_settings(params, likelihood):
    """The :class:`Settings` of estimator parameters ``params`` for ``likelihood``.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``, already validated.
    likelihood : {"gaussian", "probit"}

    Returns
    -------
    Settings
    """
    p, auto = params, _AUTO[likelihood]
    hidden = hidden_sizes(p["hidden_layer_sizes"])
    deep = len(hidden) > 2  # the depth-keyed "auto" values take their second entry
    n_turbo = auto["n_turbo_iter"] if p["n_turbo_iter"] == "auto" else (p["n_turbo_iter"],) * 2
    damping = tuple(p["damping"] if p["damping"] != "auto" else 0.5 if n == 1 else 0.8
                    for n in n_turbo)
    v0 = float(p["noise_variance_init"])
    if p["n_init"] == "auto":
        inits = (v0,) + (v0 * _RESTART_NOISE_SCALE,) * (_AUTO_MAX_INIT - 1)
    else:
        inits = (v0,) * int(p["n_init"])
    input_rho = p["input_rho_init"]
    if input_rho is None and p["input_target_density"] is not None:
        input_rho = 0.5  # a target density needs grouped inputs
    return Settings(
        likelihood=likelihood, hidden_layer_sizes=hidden, activation=p["activation"],
        batch_size=int(p["batch_size"]), max_iter=int(p["max_iter"]), tol=float(p["tol"]),
        n_iter_no_change=int(p["n_iter_no_change"]), shuffle=bool(p["shuffle"]),
        verbose=bool(p["verbose"]), init_noise_variances=inits,
        restart_while_collapsed=p["n_init"] == "auto", collapse_width=(4, 2),
        n_turbo_iter=tuple(int(n) for n in n_turbo), damping=tuple(map(float, damping)),
        prior_variance=float(auto["prior_variance"][deep] if p["prior_variance"] == "auto"
                             else p["prior_variance"]),
        learn_prior_variance=bool(p["learn_prior_variance"]),
        bias_variance=float(p["bias_variance"]), rho_init=float(p["rho_init"]),
        learn_rho=bool(p["learn_rho"]), rho_warmup=2,
        target_density=_optional(p["target_density"]), input_rho_init=_optional(input_rho),
        input_target_density=_optional(p["input_target_density"]),
        learn_noise_variance=bool(p["learn_noise_variance"]),
        v_warmup=int(auto["v_warmup"][deep]), pasp_memory=float(p["pasp_memory"]),
        init_evidence=float(p["init_evidence"]),
        centering=bool(auto["centering"] if p["centering"] == "auto" else p["centering"]),
        posterior_average=float(p["posterior_average"]), breakdown_margin=0.1,
        local_epochs=int(p["local_epochs"]),
        client_likelihood_power=float(p["client_likelihood_power"]),
        dtype=np.dtype(p["dtype"]).name)


def _optional(value):
    return None if value is None else float(value)
