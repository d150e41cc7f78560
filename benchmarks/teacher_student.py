"""Teacher-student support recovery over teacher seeds 0-4 (1 and 2 hidden layers).

Usage: python benchmarks/teacher_student.py
"""
import numpy as np, warnings
warnings.simplefilter("ignore")
from sk_tdamp import EMTDAMPRegressor
from sk_tdamp.datasets import make_teacher_student
for hl in [(8,), (8, 6)]:
  for seed in range(5):
    X, y, T = make_teacher_student(n_samples=1500, n_features=8, hidden_layer_sizes=hl, density=0.5, input_density=0.5, noise_std=0.1, random_state=seed, return_teacher=True)
    reg = EMTDAMPRegressor(hidden_layer_sizes=hl, input_rho_init=0.5, max_iter=40, batch_size=64, random_state=0).fit(X[:1000], y[:1000])
    mse = np.mean((reg.predict(X[1000:]) - y[1000:]) ** 2)
    print(hl, seed, "teacher", T.active_masks[0].astype(int), "student", reg.neuron_masks_[0].astype(int), np.round(reg.support_probas_[0], 2), "mse/noise %.2f" % (mse / T.noise_variance), flush=True)
