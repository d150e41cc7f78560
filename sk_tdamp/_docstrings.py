"""Docstring fragments shared by the two estimators (filled by :func:`fill`)."""

PARAMS_DOC = """
    hidden_layer_sizes : array-like of int, default=(50,)
        Width of each hidden layer; ``()`` gives a model with no hidden layer.
    activation : {"relu", "identity"}, default="relu"
        Activation of the hidden layers.
    batch_size : int, default=32
        Minibatch size of the E-step (clipped to the number of samples).
    max_iter : int, default=100
        Number of epochs (passes over the data) of ``fit``.
    tol : float, default=1e-4
        ``fit`` stops when the training objective (``loss_curve_``) has not improved
        by at least ``tol`` for ``n_iter_no_change`` consecutive epochs. If the
        objective then ends more than 0.1 nats per sample above its minimum (the
        posterior chain broke down), ``fit`` returns the model of the best epoch and
        warns with a ``ConvergenceWarning``.
    n_iter_no_change : int, default=10
        See ``tol``.
    n_init : int or "auto", default="auto"
        Number of initializations ``fit`` runs, each from its own random network (seeds
        drawn from ``random_state``; the first is the initialization of
        ``n_init=1``). The model with the lowest training objective is kept, with its
        ``loss_curve_``, ``n_iter_`` and warnings. The posterior can end at a collapsed
        fixed point that predicts a constant (every group of a layer pruned): a network
        with two hidden layers did so for 2 of 6 seeds on a teacher-student problem
        and for 4 of 6 on one whose target has no linear trend, where the training
        objective tells the collapsed fits apart (see the algorithm page,
        "Collapsed fits and restarts"), or partly collapsed, with a hidden layer
        reduced to one or two neurons and a poor fit. ``"auto"`` runs one
        initialization and another one (up to 3 in all) only while the fits end
        collapsed (a layer with no kept group, or a hidden layer of 4 or more neurons
        keeping at most 2 without a ``target_density``), restarting from
        ``noise_variance_init / 10`` (a first pass that weighs the data more finds the
        signal before pruning sets in); a fit that does not end collapsed is the fit of
        ``n_init=1``. On data without signal, where a constant is the right answer, it
        triples the fitting time. Warm-started fits and ``partial_fit`` go on from the
        current posterior and ignore it.
    n_turbo_iter : int or "auto", default="auto"
        Turbo iterations (module A sweep + module B) per minibatch. ``"auto"`` runs 2
        for :class:`EMTDAMPRegressor`; :class:`EMTDAMPClassifier` runs 2 in the first
        pass over the data (the first epoch of ``fit``, the first ``partial_fit``, the
        first federated round) and 1 afterwards. A second iteration lowers the Boston
        RMSE of a (50, 50) network from 2.87 to 2.75 and the classifier's test error
        after the first Fashion-MNIST epoch from 0.150 to 0.145, while later on one
        iteration (at half the cost per epoch) matches two in accuracy on MNIST-5k (see
        the algorithm page, "Turbo iterations and damping").
    damping : float in [0, 1) or "auto", default="auto"
        Damping of the posterior updates: ``new = damping * old + (1 - damping) * new``.
        ``"auto"`` is 0.5 with one turbo iteration and 0.8 with more, so that a
        minibatch moves the posterior by about the same fraction (``1 - damping ** n``,
        0.5 and 0.64) either way.
    prior_variance : float or "auto", default="auto"
        Scale of the slab variance: the weights of a layer with ``n_in`` inputs have
        prior variance ``prior_variance / n_in`` when their group is active (and are
        initialized with that variance). ``"auto"`` is 1 for :class:`EMTDAMPRegressor`;
        for :class:`EMTDAMPClassifier` it is 16 with up to two hidden layers and 1 with
        more. With centered layer inputs a wide prior trains the classifier faster
        (784-300-100-10, one turbo iteration: Fashion-MNIST test error after one epoch
        0.150 against 0.172 with 1) and more accurately (MNIST-5k, seeds 0-4: 94.5%
        against 93.6%); with three or four hidden layers 16 trains as well but is no
        more accurate (MNIST-5k, three seeds: 93.8% against 94.0% and 93.1% against
        93.7%). See the algorithm page, "Centered layer inputs" and "Probit
        temperature after the first pass".
    learn_prior_variance : bool, default=False
        Whether the M-step also learns the slab variance of each layer.
    bias_variance : float, default=1.0
        Gaussian prior variance of the biases (never pruned).
    rho_init : float in (0, 1], default=0.5
        Initial prior probability that a hidden neuron is active.
    learn_rho : bool, default=True
        Whether the M-step learns the sparsity ``rho`` of each layer.
    target_density : float in (0, 1] or None, default=None
        If set, keep exactly ``ceil(target_density * n)`` neurons in every hidden layer
        (those with the largest support probability) instead of learning ``rho``.
    input_rho_init : float in (0, 1] or None, default=None
        Initial support probability of the input-feature groups, learned separately
        from the hidden layers. ``None`` leaves the input features ungrouped (never
        pruned).
    input_target_density : float in (0, 1] or None, default=None
        If set, keep exactly that fraction of the input features.
    noise_variance_init : float, default={v_default}
        Initial noise variance ``v`` of the likelihood{v_units}.
    learn_noise_variance : bool, default=True
        Whether the M-step learns ``v``. With more than two hidden layers,
        :class:`EMTDAMPClassifier` skips the M-step of ``v`` after the first pass over
        the data (the first update comes after the second): the statistics of that
        pass, gathered mostly by a near-random network, drive the probit temperature
        down and the network diverged (MNIST-5k with four hidden layers: ``v`` 0.14
        after one epoch). With up to two hidden layers, whose wide prior gives large
        outputs, the first update is needed (federated MNIST-5k with label skew broke
        down without it).
    pasp_memory : float, default=4.0
        Memory of the posterior-as-prior chain in epochs ``E``: after each minibatch of
        size ``B`` the accumulated evidence is multiplied by ``1 - B / (E n_samples)``.
    init_evidence : float, default=3.0
        Weight of the random initialization kept as prior pseudo-evidence (it then
        decays through the PasP chain); needed by networks with two or more hidden
        layers to break the symmetry between hidden neurons.
    centering : bool or "auto", default="auto"
        Whether every layer computes with centered inputs, ``W (u - mu) + b'``, with
        ``mu`` the mean of the layer's inputs over the first fit's training data (at
        most 8192 evenly spaced rows; the data for the first layer, the activations of
        the initial network for the others), fixed from then on. It is a
        reparametrization of the same network (the prior sits on ``b'`` instead of
        ``b``) that removes the common mode of non-negative inputs from the parallel
        weight updates of the message passing.
        ``"auto"`` is True for :class:`EMTDAMPClassifier` (without it, prior variances
        above about 4 diverge in the first epoch) and False for
        :class:`EMTDAMPRegressor` (Boston: test RMSE 2.95 with it against 2.83).
        Federated fits pool the means from the clients before the first round.
    posterior_average : float, default=1.0
        Window in epochs of the moving average of the posterior that the fitted model
        (prediction, ``coefs_``, the pruned network) is read from: the moment-matched
        mixture of the posteriors after the minibatches of about the last
        ``posterior_average`` passes (ALGORITHM.md 5.7 gives the posterior after the last
        minibatch, which moves with it). ``0`` reads the last posterior. Training itself
        does not depend on it. Federated fits read the last server posterior.
    shuffle : bool, default=True
        Whether to shuffle the samples at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization and of the shuffling.
    verbose : bool, default=False
        Print one line per epoch.
    warm_start : bool, default=False
        Reuse the previous posterior as the starting point of ``fit``.
    local_epochs : int, default=1
        Federated fit only (``fit(X, y, client_ids=...)``): passes of each client over
        its data per communication round.
    client_likelihood_power : float in [0, 1], default=0.5
        Federated fit only: exponent ``gamma`` of the tempering of each client's
        likelihood. Client ``k`` with ``N_k`` of the ``N`` samples multiplies its evidence
        by ``s_k = (N / N_k) ** gamma`` and forgets ``s_k`` times faster, so the average
        still holds ``pasp_memory`` epochs of evidence. ``0`` is the plain weighted
        average of the local posteriors (a round then adds about ``1/K`` of an epoch of
        evidence with ``K`` equal clients); ``1`` lets every client treat its data as the
        whole data set, fast on IID clients but unstable under label skew. With a single
        client ``s_k = 1`` whatever ``gamma``. See the "Federated learning" section of the
        algorithm page for the measurements behind the default.
    n_jobs : int or None, default=None
        Federated fit only: number of clients run in parallel through
        :class:`joblib.Parallel` (``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` uses all processors). The
        backend is not forced, so ``joblib.parallel_config(backend="dask")`` runs the
        clients on a Dask cluster. Results do not depend on ``n_jobs`` or the backend.
    on_client_error : {"raise", "skip"}, default="raise"
        Federated fit only: when a client raises, ``"raise"`` stops ``fit`` with a
        :class:`sk_tdamp.federated.ClientError` naming the client (the estimator is left
        as it was before ``fit``); ``"skip"`` leaves that client out of the round with a
        :class:`sk_tdamp.federated.ClientSkippedWarning`.
    dtype : {"float64", "float32"} or numpy floating type, default="float64"
        Floating type of the weight posterior and of the products with it (the large
        arrays and most of the work of an epoch). The per-sample nonlinear parts (the
        activations' tilted moments, the likelihood) are computed in float64 either way,
        and so are predictions. ``"float32"`` halves the memory of the model and of
        federated messages and makes an epoch cheaper.
"""

ATTRS_DOC = """
    coefs_ : list of ndarray of shape (n_in, n_out)
        Posterior means of the weights of each layer (pruned neurons are zero).
    intercepts_ : list of ndarray of shape (n_out,)
        Posterior means of the biases, such that ``X @ coefs_[0] + intercepts_[0]``
        etc. is the posterior-mean network.
    coefs_var_, intercepts_var_ : list of ndarray
        Posterior variances of the weights and biases, same shapes.
    input_shifts_ : list of ndarray of shape (n_in,)
        Shift of each layer's inputs with ``centering`` (zeros without): the model
        holds layer ``l`` as ``(u - input_shifts_[l]) @ W + b'`` with ``W`` and ``b'``
        independent a posteriori, so ``intercepts_[l] = b' - input_shifts_[l] @ W``
        and ``intercepts_var_`` adds ``input_shifts_[l] ** 2 @ coefs_var_[l]`` to the
        variance of ``b'``. The predictive variance also uses the covariance of the
        intercepts with the weights that this implies.
    support_probas_ : list of ndarray
        Posterior probability that each group is active: first the input features,
        then the neurons of each hidden layer.
    neuron_masks_ : list of ndarray of bool
        Kept input features and neurons, same layout as ``support_probas_``.
    n_features_kept_ : int
        Number of input features kept.
    n_neurons_kept_ : list of int
        Number of neurons kept in each hidden layer.
    density_ : list of float
        Fraction of neurons kept in each hidden layer.
    kept_features_ : ndarray of int
        Indices of the kept input features.
    pruned_coefs_, pruned_intercepts_, pruned_coefs_var_, pruned_intercepts_var_ : list
        The compact network: the same as ``coefs_`` etc. restricted to the kept
        features and neurons. It predicts exactly as the full network.
    pruned_input_shifts_ : list of ndarray
        ``input_shifts_`` restricted to the kept features and neurons.
    rho_ : ndarray of shape (`n_layers_` - 1,)
        Learned prior support probability of each layer's groups (1 for ungrouped).
    prior_variances_ : ndarray of shape (`n_layers_` - 1,)
        Slab variance of each layer.
    noise_variance_ : float
        Learned noise variance ``v``{v_units}.
    n_iter_ : int
        Number of epochs run.
    t_ : int
        Number of training samples seen.
    loss_curve_ : list of float
        Training objective per epoch: mean negative log-likelihood of each
        minibatch's targets under the model before it was fitted on them.
    noise_variance_curve_ : list of float
        ``v`` after each epoch.
    density_curve_ : list of float
        Fraction of hidden neurons kept after each epoch.
    settings_ : Settings
        Every setting the fit used, with each ``"auto"`` resolved (a frozen
        dataclass; see the algorithm page, "Settings"). Federated messages carry it.
    n_layers_ : int
        Number of layers including input and output.
    n_outputs_ : int
        Number of network outputs.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.
"""


def fill(doc, **fields):
    """Substitute ``{name}`` fields of a shared docstring fragment."""
    for key, value in fields.items():
        doc = doc.replace("{" + key + "}", value)
    return doc


REFERENCES = """    References
    ----------
    W. Xu, A. Liu, Y. Zhang and V. Lau, "Bayesian Deep Learning via Expectation
    Maximization and Turbo Deep Approximate Message Passing", IEEE Trans. Signal
    Processing 72 (2024), 3865-3878.
"""
Y_REG = """        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Training targets, one column per output.
"""
Y_CLS = """        y : array-like of shape (n_samples,)
            Training class labels.
"""
FIT_DOC = """Fit the posterior by EM-TDAMP for ``max_iter`` epochs (or until converged).

        With ``client_ids``, simulate Bayesian federated learning instead
        (:mod:`sk_tdamp.federated`): each distinct id is a client whose samples stay
        with it, and ``max_iter`` counts communication rounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, preferably standardized.
{y}        client_ids : array-like of shape (n_samples,), default=None
            Client of each sample (any sortable labels). In each round every client
            runs ``local_epochs`` passes of TDAMP from the global posterior (in parallel
            with ``n_jobs``), then the server averages their posteriors and runs the
            M-step. Routed by scikit-learn's metadata routing after
            ``set_fit_request(client_ids=True)``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
