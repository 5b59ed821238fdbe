"""The window fits' online dictionary learning against scikit-learn's own, bit for bit."""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import dict_learning_online, sparse_encode

from nilearn_stca.baselines import _lasso_codes
from nilearn_stca.baselines._lasso_codes import KERNEL_AVAILABLE, converged_lasso_code, lasso_code
from nilearn_stca.baselines._online_dictionary import online_dict_learning

pytestmark = pytest.mark.skipif(
    not KERNEL_AVAILABLE,
    reason="the fast path is off: this scikit-learn is older than the one it reproduces, or its "
    "kernel differs",
)


def _sparse_data(dtype, n_samples=400, n_features=12, n_atoms=8, seed=0):
    """Samples that are sparse combinations of a few atoms, plus noise (as voxels of a window)."""
    rng = np.random.RandomState(seed)
    atoms = rng.randn(n_atoms, n_features)
    codes = rng.randn(n_samples, n_atoms) * (rng.rand(n_samples, n_atoms) < 0.3)
    X = codes @ atoms + 0.1 * rng.randn(n_samples, n_features)
    return np.ascontiguousarray(X, dtype=dtype), rng.randn(n_atoms, n_features).astype(dtype)


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of both, on purpose identical
        return function(*args, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [0.05, 1.0])
def test_lasso_code_is_sparse_encode(dtype, alpha):
    X, dictionary = _sparse_data(dtype)
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    expected = _quiet(sparse_encode, X, dictionary, algorithm="lasso_cd", alpha=alpha)
    code = _quiet(lasso_code, X, dictionary, alpha)
    assert code.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(code, expected)
    assert 0 < np.count_nonzero(code) < code.size


def _ill_conditioned_problem(n_samples=3000, n_features=20, n_atoms=20, seed=0):
    """float32 samples and unit atoms, some nearly collinear (as a window's learnt atoms)."""
    rng = np.random.RandomState(seed)
    atoms = rng.randn(n_atoms, n_features)
    atoms[n_atoms // 2 :] = atoms[: n_atoms // 2] + 0.2 * rng.randn(n_atoms // 2, n_features)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = rng.randn(n_samples, n_atoms) * (rng.rand(n_samples, n_atoms) < 0.15)
    X = codes @ atoms + 0.3 * rng.randn(n_samples, n_features)
    return np.ascontiguousarray(X, dtype=np.float32), atoms.astype(np.float32)


def _objective(X, dictionary, code, alpha):
    X, dictionary, code = (np.asarray(a, dtype=np.float64) for a in (X, dictionary, code))
    return 0.5 * ((X - code @ dictionary) ** 2).sum(axis=1) + alpha * np.abs(code).sum(axis=1)


def _assert_as_good_as(X, dictionary, code, expected, alpha):
    """``code`` has a lasso objective no worse than ``expected`` and reconstructs ``X`` alike.

    Codes themselves may differ more: along nearly collinear atoms the objective is flat,
    and scikit-learn's float32 descent stops wherever its last sweep left it.
    """
    expected_objective = _objective(X, dictionary, expected, alpha)
    assert np.all(_objective(X, dictionary, code, alpha) <= expected_objective * (1 + 1e-6))
    np.testing.assert_allclose(
        np.asarray(code, np.float64) @ dictionary,
        np.asarray(expected, np.float64) @ dictionary,
        atol=5e-3 * np.abs(X).max(),
    )


@pytest.mark.parametrize("max_sweeps", [1, 50])
def test_converged_lasso_code_is_sparse_encode_or_better(max_sweeps, monkeypatch):
    X, dictionary = _ill_conditioned_problem()
    alpha = 2.0
    expected = _quiet(sparse_encode, X, dictionary, algorithm="lasso_cd", alpha=alpha)
    gram, Xy = _lasso_codes._gram_problems(X, dictionary)
    _, converged = _quiet(_lasso_codes._descend, X, gram, Xy, alpha, max_sweeps)
    # The problem exercises both paths: samples that converge, samples that do not.
    assert 0.05 < converged.mean() < 0.95

    full_descents = []
    descend = _lasso_codes._descend

    def counting_descend(X, gram, Xy, alpha, max_iter):
        if max_iter == 1000:
            full_descents.append(len(X))
        return descend(X, gram, Xy, alpha, max_iter)

    monkeypatch.setattr(_lasso_codes, "_descend", counting_descend)
    code = _quiet(converged_lasso_code, X, dictionary, alpha, max_sweeps=max_sweeps)
    assert code.dtype == np.float32
    # Where scikit-learn's tolerance is met within max_sweeps: the same codes, bit for bit.
    np.testing.assert_array_equal(code[converged], expected[converged])
    # Elsewhere: the exact minimiser, at least as good as scikit-learn's last sweep...
    _assert_as_good_as(X, dictionary, code, expected, alpha)
    # Each of those is either scikit-learn's own (the optimality check failed) or as good as
    # float64 descent run to scikit-learn's tolerance.
    stuck = np.flatnonzero(~converged)[:100]
    X64, dictionary64 = X[stuck].astype(np.float64), dictionary.astype(np.float64)
    minimiser = _quiet(lasso_code, X64, dictionary64, alpha, 100_000)
    as_good = _objective(X64, dictionary64, code[stuck], alpha) <= _objective(
        X64, dictionary64, minimiser, alpha
    ) * (1 + 1e-9)
    sklearn_own = np.all(code[stuck] == expected[stuck], axis=1)
    assert np.all(as_good | sklearn_own)
    assert as_good.mean() > 0.5
    if max_sweeps == 1:
        # One sweep leaves wrong supports, which fail the optimality check: those samples
        # get scikit-learn's own 1000 sweeps.
        assert full_descents and 0 < full_descents[0] < (~converged).sum()


def test_exact_solve_refuses_a_singular_support():
    X, dictionary = _ill_conditioned_problem(n_samples=60)
    dictionary[1] = dictionary[0]  # a repeated atom: singular Gram blocks
    code = _quiet(converged_lasso_code, X, dictionary, 2.0)
    support, sign = code != 0, np.sign(code)
    assert not (support[:, 0] & support[:, 1]).any()
    support[:30, :2] = True  # both copies on the support of the first rows
    sign[:30, :2] = 1
    dictionary64 = dictionary.astype(np.float64)
    solved = _lasso_codes._solve_on_supports(
        dictionary64 @ dictionary64.T,
        X.astype(np.float64) @ dictionary64.T,
        2.0,
        support,
        sign,
    )
    assert np.isnan(solved[:30]).all()  # refused, not raised: they fall back to descent
    np.testing.assert_allclose(solved[30:], code[30:], atol=1e-4 * np.abs(code).max())


# (alpha, batch_size, n_components): the last two leave atoms unused (a large penalty, or
# more atoms than dict_init has rows), which scikit-learn redraws from the data.
CASES = [(0.1, 20, 8), (0.5, 7, 8), (8.0, 20, 8), (0.1, 16, 10)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("alpha", "batch_size", "n_components"), CASES)
def test_online_dict_learning_is_sklearn(dtype, alpha, batch_size, n_components):
    X, dict_init = _sparse_data(dtype)
    params = {
        "alpha": alpha,
        "batch_size": batch_size,
        "dict_init": dict_init,
        "max_iter": 5,
        "random_state": 0,
    }
    expected_code, expected_dictionary = _quiet(
        dict_learning_online,
        X,
        n_components,
        method="cd",
        return_code=True,
        shuffle=True,
        n_jobs=1,
        **params,
    )
    code, dictionary = _quiet(online_dict_learning, X, n_components, **params)
    assert code.dtype == dictionary.dtype == dtype
    # The learning loop and the final codes are scikit-learn's, bit for bit.
    np.testing.assert_array_equal(dictionary, expected_dictionary)
    np.testing.assert_array_equal(code, expected_code)
    assert np.count_nonzero(code) > 0
    # exact_codes: the same dictionary, converged_lasso_code's codes (tested above).
    exact, same_dictionary = _quiet(
        online_dict_learning, X, n_components, exact_codes=True, **params
    )
    np.testing.assert_array_equal(same_dictionary, expected_dictionary)
    final_code = _quiet(converged_lasso_code, X, np.ascontiguousarray(dictionary), alpha)
    np.testing.assert_array_equal(exact, final_code)
    _assert_as_good_as(X, dictionary, exact, expected_code, alpha)


def test_random_state_instance_is_drawn_from_as_sklearn():
    X, dict_init = _sparse_data(np.float64)
    params = {"alpha": 0.1, "batch_size": 20, "dict_init": dict_init, "max_iter": 2}
    expected_rng, rng = np.random.RandomState(5), np.random.RandomState(5)
    expected = _quiet(dict_learning_online, X, 8, method="cd", random_state=expected_rng, **params)
    result = _quiet(online_dict_learning, X, 8, random_state=rng, **params)
    np.testing.assert_array_equal(result[1], expected[1])
    assert rng.randint(1000) == expected_rng.randint(1000)


def test_kernel_check_refuses_a_kernel_with_another_signature_or_result():
    from nilearn_stca.baselines._lasso_codes import _cd_gram, kernel_works

    assert kernel_works(_cd_gram)

    def other_signature(w, alphas, beta, Q, q, y, max_iter, tol, rng, random, positive):
        raise AssertionError("never called: the arguments are passed by name")

    def wrong_result(w, **arguments):
        w[:] = 0.0

    assert not kernel_works(other_signature)
    assert not kernel_works(wrong_result)
    assert not kernel_works(None)


def test_without_the_kernel_sdl_windows_use_scikit_learn_itself(tiny_run, monkeypatch):
    # The fallback when the private kernel is missing or changed: dict_learning_online, the
    # same learnt dictionary, so the window maps agree with the kernel path's.
    import warnings

    from nilearn_stca.baselines import SDLDecomposition, _array_fits

    img, mask = tiny_run
    est = SDLDecomposition(
        n_components=3, alpha=1.0, mask=mask, window_length=20, window_stride=15, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(img)
        fast = list(est.iter_window_maps(img))
        monkeypatch.setattr(_array_fits, "KERNEL_AVAILABLE", False)
        fallback = list(est.iter_window_maps(img))
    assert [s for s, _ in fast] == [s for s, _ in fallback] == [0, 15, 30]
    for (_, a), (_, b) in zip(fast, fallback, strict=True):
        assert np.any(a)
        np.testing.assert_allclose(a, b, atol=0.05)
