"""scikit-learn's online dictionary learning (``method="cd"``) without its per-call overhead.

:func:`online_dict_learning` runs the algorithm of ``MiniBatchDictionaryLearning.fit`` then
``transform`` (same shuffling, batches, inner statistics, dictionary update, resampling of
unused atoms and early stopping) and codes each mini-batch, and finally every sample, on
scikit-learn's compiled kernel (:mod:`._lasso_codes`): the learnt dictionary is
``dict_learning_online``'s bit for bit. The final codes are scikit-learn's own by default,
or, where asked (``exact_codes=True``; ``SDLDecomposition(window_coding="exact")``), the
exact codes of the voxels whose float32 descent cannot converge.

The fast path reproduces scikit-learn 1.8 and 1.9 bit for bit (tested); older releases (1.5
to 1.7, which nilearn 0.14 allows) learn slightly different dictionaries, so they run
``dict_learning_online`` itself (:data:`._lasso_codes.KERNEL_AVAILABLE` is False). On a
newer release, ``tests/test_online_dictionary.py`` says whether it still reproduces it.
"""

import itertools

import numpy as np
from scipy import linalg
from scipy.linalg.blas import get_blas_funcs
from sklearn.utils import check_random_state, gen_batches

from ._lasso_codes import KERNEL_AVAILABLE, converged_lasso_code, lasso_code


def _update_inner_stats(A, B, X, code, step):
    """MiniBatchDictionaryLearning's running averages ``A = code'code``, ``B = X'code``."""
    batch_size = X.shape[0]
    if step < batch_size - 1:
        theta = (step + 1) * batch_size
    else:
        theta = batch_size**2 + step + 1 - batch_size
    beta = (theta + 1 - batch_size) / (theta + 1)
    A *= beta
    A += code.T @ code / batch_size
    B *= beta
    B += X.T @ code / batch_size


def _update_dictionary(dictionary, X, code, A, B, random_state):
    """Block coordinate update of the atoms in place; unused atoms are redrawn from ``X``."""
    n_samples, n_components = code.shape
    # What scipy.linalg.norm calls for a vector, without its per-call checks.
    nrm2 = get_blas_funcs("nrm2", dtype=dictionary.dtype, ilp64="preferred")
    for k in range(n_components):
        if A[k, k] > 1e-6:
            dictionary[k] += (B[:, k] - A[k] @ dictionary) / A[k, k]
        else:
            new_atom = X[random_state.choice(n_samples)]
            noise_level = 0.01 * (new_atom.std() or 1)
            noise = random_state.normal(0, noise_level, size=len(new_atom))
            dictionary[k] = new_atom + noise
            code[:, k] = 0
        dictionary[k] /= max(nrm2(dictionary[k]), 1)


class _EarlyStopping:
    """MiniBatchDictionaryLearning's stopping rule: small dictionary change or no progress."""

    def __init__(self, n_samples, n_components, tol, max_no_improvement, verbose):
        self.n_samples = n_samples
        self.n_components = n_components
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.verbose = verbose
        self.ewa_cost = None
        self.ewa_cost_min = None
        self.no_improvement = 0

    def __call__(self, batch_size, batch_cost, new_dict, old_dict, step, n_steps):
        step = step + 1
        # The first steps (at most 100, or one epoch) only warm the averaged cost up.
        if step <= min(100, self.n_samples / batch_size):
            if self.verbose:
                print(f"Minibatch step {step}/{n_steps}: mean batch cost: {batch_cost}")
            return False
        if self.ewa_cost is None:
            self.ewa_cost = batch_cost
        else:
            weight = min(batch_size / (self.n_samples + 1), 1)
            self.ewa_cost = self.ewa_cost * (1 - weight) + batch_cost * weight
        if self.verbose:
            print(
                f"Minibatch step {step}/{n_steps}: mean batch cost: "
                f"{batch_cost}, ewa cost: {self.ewa_cost}"
            )
        dict_diff = linalg.norm(new_dict - old_dict) / self.n_components
        if self.tol > 0 and dict_diff <= self.tol:
            if self.verbose:
                print(f"Converged (small dictionary change) at step {step}/{n_steps}")
            return True
        if self.ewa_cost_min is None or self.ewa_cost < self.ewa_cost_min:
            self.no_improvement = 0
            self.ewa_cost_min = self.ewa_cost
        else:
            self.no_improvement += 1
        if self.max_no_improvement is not None and self.no_improvement >= self.max_no_improvement:
            if self.verbose:
                print(
                    "Converged (lack of improvement in objective function) "
                    f"at step {step}/{n_steps}"
                )
            return True
        return False


def _initial_dictionary(dict_init, n_components, dtype):
    dictionary = dict_init[:n_components]
    if len(dictionary) < n_components:
        padding = np.zeros((n_components - len(dictionary), dictionary.shape[1]), dictionary.dtype)
        dictionary = np.concatenate((dictionary, padding))
    # scikit-learn keeps the atoms in Fortran order; the layout changes BLAS rounding.
    return np.array(dictionary, order="F", dtype=dtype)


def online_dict_learning(
    X,
    n_components,
    *,
    alpha,
    dict_init,
    max_iter,
    batch_size,
    random_state,
    tol=1e-3,
    max_no_improvement=10,
    verbose=False,
    exact_codes=False,
):
    """``dict_learning_online(X, ..., method="cd", shuffle=True, return_code=True)``.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features), float32 or float64
        Samples to code (for DictLearning: one row per voxel).
    n_components : int
        Atoms of the dictionary.
    alpha : float
        L1 penalty of the codes.
    dict_init : ndarray, shape (n_atoms, n_features)
        Initial atoms (truncated or padded with zeros to ``n_components``).
    max_iter : int
        Passes over the data at most (scikit-learn's ``max_iter``); early stopping
        usually ends the loop long before.
    batch_size : int
        Samples per mini-batch.
    random_state : int, RandomState or None
        Shuffling of the samples and redrawing of unused atoms.
    tol, max_no_improvement : float, int or None
        Early stopping, as scikit-learn's defaults.
    verbose : bool, default=False
        Print the cost at each step.
    exact_codes : bool, default=False
        False: the final codes are scikit-learn's (:func:`lasso_code`), bit for bit. True:
        :func:`converged_lasso_code`, the exact minimiser for the samples whose float32
        descent cannot converge (faster; the same dictionary).

    Returns
    -------
    code : ndarray, shape (n_samples, n_components)
    dictionary : ndarray, shape (n_components, n_features)
    """
    if not KERNEL_AVAILABLE:  # pragma: no cover
        raise RuntimeError("This scikit-learn has no compiled Gram coordinate descent.")
    X = np.ascontiguousarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    n_samples, n_features = X.shape
    batch_size = min(batch_size, n_samples)
    random_state = check_random_state(random_state)
    dictionary = _initial_dictionary(dict_init, n_components, X.dtype)
    old_dict = dictionary.copy()
    X_train = X.copy()
    random_state.shuffle(X_train)
    if verbose:
        print("[dict_learning]")

    A = np.zeros((n_components, n_components), dtype=X.dtype)
    B = np.zeros((n_features, n_components), dtype=X.dtype)
    stopping = _EarlyStopping(n_samples, n_components, tol, max_no_improvement, verbose)
    batches = itertools.cycle(gen_batches(n_samples, batch_size))
    n_steps = max_iter * int(np.ceil(n_samples / batch_size))
    for step, batch in zip(range(n_steps), batches, strict=False):
        X_batch = X_train[batch]
        this_batch_size = X_batch.shape[0]
        code = lasso_code(X_batch, dictionary, alpha)
        batch_cost = (
            0.5 * ((X_batch - code @ dictionary) ** 2).sum() + alpha * np.sum(np.abs(code))
        ) / this_batch_size
        _update_inner_stats(A, B, X_batch, code, step)
        _update_dictionary(dictionary, X_batch, code, A, B, random_state)
        if stopping(this_batch_size, batch_cost, dictionary, old_dict, step, n_steps):
            break
        old_dict[:] = dictionary

    # ``transform`` codes every sample with the atoms in C order (sparse_encode's check).
    final_code = converged_lasso_code if exact_codes else lasso_code
    code = final_code(X, np.ascontiguousarray(dictionary), alpha)
    return code, dictionary
