"""scikit-learn's online dictionary learning (``method="cd"``) without its per-call overhead.

``sklearn.decomposition.dict_learning_online`` codes every mini-batch, and finally every
sample, with a ``Lasso`` fitted target by target. For a sliding window of nilearn's
DictLearning the problems are tiny (20 atoms of 20 features) and numerous (about 20 per step
for some 1,000 steps, then one per voxel), so much of the time goes to the validation and
bookkeeping of ``Lasso.fit`` and ``enet_path``. :func:`online_dict_learning` runs the same
algorithm (that of ``MiniBatchDictionaryLearning.fit`` then ``transform``: same shuffling,
batches, inner statistics, dictionary update, resampling of unused atoms and early
stopping) and calls scikit-learn's compiled coordinate-descent kernel directly, with the
arrays, in the memory layouts, that ``Lasso`` would give it: the learnt dictionary is
``dict_learning_online``'s bit for bit.

The rest of the time is descent that cannot finish: scikit-learn asks for a duality gap
below ``1e-8 * ||x||^2``, under float32's resolution, so for a third of a 4 mm window's
voxels the final coding runs all 1000 sweeps, most of them changing nothing.
:func:`converged_lasso_code` codes those voxels exactly instead (see there), where asked
(``exact_codes=True``; ``SDLDecomposition(window_coding="exact")``); every other voxel's
code is scikit-learn's bit for bit. By default the final codes are scikit-learn's own.
``tests/test_online_dictionary.py`` checks both against scikit-learn.

The kernel, ``sklearn.linear_model._cd_fast.enet_coordinate_descent_gram``, is private:
:data:`KERNEL_AVAILABLE` is False where a scikit-learn release lacks it or calls it
otherwise (checked at import on a problem with a known answer, :func:`kernel_works`), and
callers then use ``dict_learning_online`` itself, slower. The fast path reproduces
scikit-learn 1.8 and 1.9 bit for bit (tested); older releases (1.5 to 1.7, which nilearn 0.14
allows) learn slightly different dictionaries, so they run ``dict_learning_online`` itself.
On a newer release, ``tests/test_online_dictionary.py`` says whether it still reproduces it.
"""

import itertools
import re

import numpy as np
import sklearn
from scipy import linalg
from scipy.linalg.blas import get_blas_funcs
from sklearn.utils import check_random_state, gen_batches

try:  # pragma: no cover - depends on the installed scikit-learn
    from sklearn.linear_model._cd_fast import enet_coordinate_descent_gram as _cd_gram
except ImportError:  # pragma: no cover
    _cd_gram = None


def _call(kernel, w, alpha, gram, xy, y, max_iter, tol, rng=None):
    """The kernel on one lasso (no L2 term, cyclic, signed), its arguments by name.

    By name, so that a release that adds or reorders arguments (1.9 added ``do_screening``
    at the end, whose default keeps the descent as before) fails loudly or keeps working,
    never silently passes a value to another parameter.
    """
    return kernel(
        w=w,
        alpha=alpha,
        beta=0.0,
        Q=gram,
        q=xy,
        y=y,
        max_iter=max_iter,
        tol=tol,
        rng=_UnusedRandomState() if rng is None else rng,
        random=0,
        positive=0,
    )


def kernel_works(kernel):
    """Whether ``kernel`` takes the arguments this module passes and solves a lasso.

    The kernel is private to scikit-learn, so a release may change its signature or its
    results without notice. A one-atom problem whose minimiser is known (the soft threshold
    of ``X'y`` by ``alpha``, over ``X'X``) is solved with the call this module makes; any
    error or another result leaves the kernel unused.
    """
    if kernel is None:
        return False
    X = np.array([[1.0], [1.0]])
    y = np.array([1.5, 1.5])
    w = np.zeros(1)
    try:
        _call(kernel, w, 1.0, np.asfortranarray(X.T @ X), X.T @ y, y, 100, 1e-10)
    except (TypeError, ValueError):  # pragma: no cover - depends on the installed release
        return False
    return bool(np.isclose(w[0], (3.0 - 1.0) / 2.0))


# Lasso's settings in scikit-learn's sparse coding: ``tol`` is fixed there, ``max_iter``
# is dict_learning_online's default ``method_max_iter``.
_LASSO_TOL = 1e-8
_LASSO_MAX_ITER = 1000


class _UnusedRandomState:
    """The kernel draws a seed for random coordinate selection even when it is cyclic.

    ``Lasso`` hands it the global numpy generator; with cyclic selection the draw has no
    effect on the result, so it gets this stand-in instead (cheaper, and leaves numpy's
    global state alone).
    """

    @staticmethod
    def randint(low, high):
        return low


#: The oldest scikit-learn whose ``dict_learning_online`` this module reproduces bit for bit
#: (checked on 1.8.0 and 1.9.1; 1.5 to 1.7 learn slightly different dictionaries).
OLDEST_REPRODUCED_SKLEARN = (1, 8)


def _sklearn_version():
    return tuple(int(part) for part in re.findall(r"\d+", sklearn.__version__)[:2])


#: Whether the fast path is used: a scikit-learn release this module reproduces, whose kernel
#: passes :func:`kernel_works`; otherwise ``dict_learning_online`` itself runs.
KERNEL_AVAILABLE = _sklearn_version() >= OLDEST_REPRODUCED_SKLEARN and kernel_works(_cd_gram)


def _gram_problems(X, dictionary):
    """``Lasso``'s Gram matrix and ``X'y`` for coding the rows of ``X``, as it computes them."""
    n_samples = X.shape[0]
    gram = np.dot(dictionary, dictionary.T).astype(X.dtype, copy=False)
    Xy = np.empty((dictionary.shape[0], n_samples), dtype=X.dtype, order="F")
    # Lasso's design matrix is dictionary.T and its targets are the columns of X.T.
    np.dot(X, dictionary.T, out=Xy.T)
    return gram, Xy


def _descend(X, gram, Xy, alpha, max_iter):
    """The kernel on every row; returns the codes and whether each met scikit-learn's tol."""
    n_samples, n_features = X.shape
    targets = X.T
    # Lasso(alpha=alpha / n_features) scaled back by enet_path's n_samples (= n_features).
    l1_reg = float(alpha) / n_features * 1.0 * n_features
    rng = _UnusedRandomState()
    code = np.zeros((n_samples, gram.shape[0]), dtype=X.dtype)
    converged = np.ones(n_samples, dtype=bool)
    # Where no atom's correlation exceeds the penalty, zero is the minimiser and the kernel
    # returns it before any sweep (its duality gap at zero is exactly 0): skip the call.
    nonzero = np.flatnonzero(np.abs(Xy).max(axis=0) > X.dtype.type(l1_reg))
    for k in nonzero:
        w = np.zeros(gram.shape[0], dtype=X.dtype)
        _, gap, tol, n_sweeps = _call(
            _cd_gram, w, l1_reg, gram, Xy[:, k], targets[:, k], max_iter, _LASSO_TOL, rng
        )
        code[k] = w
        # The last sweep always checks the gap; a longer descent would have gone on from
        # there, so only an earlier stop is the stop of any longer descent.
        converged[k] = gap <= tol and n_sweeps < max_iter
    return code, converged


def lasso_code(X, dictionary, alpha, max_iter=_LASSO_MAX_ITER):
    """Sparse codes of the rows of ``X``: scikit-learn's ``sparse_encode(algorithm="lasso_cd")``.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
        C-contiguous rows to code.
    dictionary : ndarray, shape (n_components, n_features)
        The atoms (their layout changes the rounding of the Gram matrix, as in
        scikit-learn, so pass the layout it would see).
    alpha : float
        L1 penalty, as ``sparse_encode``'s ``alpha``.
    max_iter : int, default=1000
        Coordinate-descent sweeps per sample.

    Returns
    -------
    code : ndarray, shape (n_samples, n_components), of ``X``'s dtype
    """
    gram, Xy = _gram_problems(X, dictionary)
    return _descend(X, gram, Xy, alpha, max_iter)[0]


def _solve_on_supports(gram, Xy, alpha, support, sign):
    """Exact lasso minimisers on given supports and signs, or NaN where the KKT check fails.

    On the support ``A`` with signs ``s`` the minimiser solves
    ``gram[A, A] w = Xy[A] - alpha * s``; it is the lasso's minimiser if its signs are ``s``
    and every other coordinate's correlation stays within ``alpha``. Samples sharing a
    support share one solve; a singular ``gram[A, A]`` (repeated atoms) fails the check.
    """
    n_samples, n_components = support.shape
    code = np.zeros((n_samples, n_components))
    keys, groups = np.unique(np.packbits(support, axis=1), axis=0, return_inverse=True)
    for group in range(len(keys)):
        rows = np.flatnonzero(groups.ravel() == group)
        active = support[rows[0]]
        if not active.any():
            continue
        rhs = Xy[rows][:, active] - alpha * sign[rows][:, active]
        try:
            solution = np.linalg.solve(gram[np.ix_(active, active)], rhs.T).T
        except np.linalg.LinAlgError:
            solution = np.nan
        code[np.ix_(rows, active)] = solution
    residual_correlation = Xy - code @ gram
    signs_kept = np.where(support, np.sign(code) == sign, True).all(axis=1)
    within_penalty = np.abs(residual_correlation) <= alpha * (1 + 1e-6)
    inactive_ok = np.where(support, True, within_penalty).all(axis=1)
    code[~(signs_kept & inactive_ok)] = np.nan
    return code


def converged_lasso_code(X, dictionary, alpha, max_sweeps=50):
    """:func:`lasso_code`, with the exact minimiser where coordinate descent cannot converge.

    scikit-learn asks coordinate descent for a duality gap below ``1e-8 * ||x||^2``. In
    float32 that is below the resolution of the gap itself, so for many samples (a third of
    the voxels of a 4 mm window) descent never meets it: it runs all 1000 sweeps, most of
    them changing nothing, and returns wherever rounding has left it. Here every sample gets
    ``max_sweeps`` sweeps of the same kernel; those that meet the tolerance have exactly
    ``lasso_code``'s codes. For the others, the support and signs that descent has found
    give the exact minimiser by one linear solve (float64), accepted only if it satisfies
    the lasso's optimality conditions; any sample that fails them gets ``lasso_code``'s
    full 1000 sweeps instead.

    Returns
    -------
    code : ndarray, shape (n_samples, n_components), of ``X``'s dtype
    """
    gram, Xy = _gram_problems(X, dictionary)
    code, converged = _descend(X, gram, Xy, alpha, max_sweeps)
    stuck = np.flatnonzero(~converged)
    if len(stuck) == 0:
        return code
    dictionary64 = dictionary.astype(np.float64)
    solved = _solve_on_supports(
        dictionary64 @ dictionary64.T,
        X[stuck].astype(np.float64) @ dictionary64.T,
        float(alpha),
        code[stuck] != 0,
        np.sign(code[stuck]),
    )
    failed = np.isnan(solved).any(axis=1)
    code[stuck[~failed]] = solved[~failed]
    if failed.any():
        rows = stuck[failed]
        code[rows] = _descend(
            np.ascontiguousarray(X[rows]),
            gram,
            np.asfortranarray(Xy[:, rows]),
            alpha,
            _LASSO_MAX_ITER,
        )[0]
    return code


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
