"""scikit-learn's sparse coding (``sparse_encode(algorithm="lasso_cd")``) on its compiled kernel.

``sparse_encode`` codes every sample with a ``Lasso`` fitted target by target. For a sliding
window of nilearn's DictLearning the problems are tiny (20 atoms of 20 features) and
numerous (about 20 per step of the online dictionary learning for some 1,000 steps, then
one per voxel), so much of the time goes to the validation and bookkeeping of ``Lasso.fit``
and ``enet_path``. :func:`lasso_code` calls scikit-learn's compiled coordinate-descent
kernel directly, with the arrays, in the memory layouts, that ``Lasso`` would give it: the
same codes, bit for bit.

The rest of the time is descent that cannot finish: scikit-learn asks for a duality gap
below ``1e-8 * ||x||^2``, under float32's resolution, so for a third of a 4 mm window's
voxels the final coding runs all 1000 sweeps, most of them changing nothing.
:func:`converged_lasso_code` codes those voxels exactly instead (see there); every other
voxel's code is scikit-learn's bit for bit.

The kernel, ``sklearn.linear_model._cd_fast.enet_coordinate_descent_gram``, is private:
:data:`KERNEL_AVAILABLE` is False where a scikit-learn release lacks it or calls it
otherwise (checked at import on a problem with a known answer, :func:`kernel_works`), and
callers then use scikit-learn's own functions, slower. ``tests/test_online_dictionary.py``
checks both codings against scikit-learn.
"""

import re

import numpy as np
import sklearn

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
