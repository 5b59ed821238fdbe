"""The scikit-learn estimator contract of STCA, ICA and SDL, on Niimg input.

scikit-learn's checks that need no data run as they are. Those that fit feed arrays, which
these estimators refuse (they take 4D images, as nilearn's decompositions), so each such
property is written here over the three estimators on the tiny run of ``conftest.py``
(12^3 voxels, 50 scans): init, get/set_params and clone; fit returns self and leaves the
parameters as given; the fitted attributes; NotFittedError before fit; transform and
inverse_transform; a second fit; pickling. nilearn's own estimator checks
(``nilearn._utils.estimator_checks``) import polars, which the locked environment does not
hold, and generate data only for nilearn's own classes.
"""

import inspect
import pickle

import joblib
import numpy as np
import pytest
from conftest import TINY_STCA
from nibabel.spatialimages import SpatialImage
from nilearn.image import index_img
from nilearn.masking import apply_mask
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils.validation import check_is_fitted

from nilearn_stca import STCADecomposition
from nilearn_stca.baselines import ICADecomposition, SDLDecomposition

# Dictionary learning on pure noise does not converge in its few iterations: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Each estimator at the tiny run's size: 3 maps, windows of 10 scans every 5, seeded.
TINY = {
    STCADecomposition: TINY_STCA,
    ICADecomposition: dict(
        n_components=3, window_length=10, window_stride=5, n_init=2, random_state=0
    ),
    SDLDecomposition: dict(n_components=3, window_length=10, window_stride=5, random_state=0),
}
ESTIMATORS = list(TINY)
IDS = [cls.__name__ for cls in ESTIMATORS]

#: The fitted attributes every method has, and those of each method alone.
FITTED = {"components_", "components_img_", "masker_", "mask_img_", "maps_masker_"}
FITTED_OF = {
    STCADecomposition: {"network_", "loss_curve_", "n_steps_"},
    ICADecomposition: {"estimator_"},
    SDLDecomposition: {"estimator_"},
}

#: scikit-learn's checks that apply as they are: none of them fits on data.
SKLEARN_CHECKS = [
    "check_parameters_default_constructible",
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
]


def _given(cls, mask):
    """The tiny run's parameters of ``cls``, with the run's mask."""
    return {**TINY[cls], "mask": mask}


def _digest(params):
    """A hash of parameter values; images by their data, affine and header.

    nilearn caches an image's data on the image object once read (``_data_cache``), which
    is not a change of the parameter, so an image is not hashed as an object.
    """
    return joblib.hash(
        {
            name: (np.asanyarray(v.dataobj), v.affine, v.header.binaryblock)
            if isinstance(v, SpatialImage)
            else v
            for name, v in params.items()
        }
    )


def _parameters(cls):
    """The parameters of ``cls.__init__`` and their defaults, read from its signature."""
    signature = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in signature.items() if name != "self"}


@pytest.fixture(scope="module")
def fits(tiny_run):
    """Each estimator fitted once on the tiny run with its :data:`TINY` parameters."""
    img, mask = tiny_run
    return {cls: cls(**_given(cls, mask)).fit(img) for cls in ESTIMATORS}


# ---------------------------------------------------------------------- without data
@pytest.mark.parametrize("check", SKLEARN_CHECKS)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_sklearn_checks_without_data(cls, check):
    if not hasattr(estimator_checks, check):
        pytest.skip(f"{check} is not in this scikit-learn release")
    getattr(estimator_checks, check)(cls.__name__, cls())


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_init_stores_every_parameter_as_given_and_nothing_else(cls, tiny_run):
    _, mask = tiny_run
    given = _given(cls, mask)
    defaults = _parameters(cls)
    est = cls(**given)
    assert set(vars(est)) == set(defaults)
    for name, default in defaults.items():
        assert getattr(est, name) is given.get(name, default), name


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_get_params_set_params_and_clone_round_trip(cls, tiny_run):
    _, mask = tiny_run
    given = _given(cls, mask)
    est = cls(**given)
    params = est.get_params(deep=False)
    assert params == {**_parameters(cls), **given}

    copy = clone(est)
    assert type(copy) is cls and copy is not est
    assert _digest(copy.get_params(deep=False)) == _digest(params)
    rebuilt = cls().set_params(**params)
    assert rebuilt.get_params(deep=False) == params
    assert copy.set_params(n_components=5) is copy
    assert (copy.n_components, est.n_components) == (5, 3)
    with pytest.raises(ValueError, match="Invalid parameter 'n_component'"):
        est.set_params(n_component=5)
    # Only the parameters that differ from the defaults are shown, as scikit-learn does.
    assert repr(cls(n_components=3)) == f"{cls.__name__}(n_components=3)"


# ---------------------------------------------------------------------- fitting
@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_fit_returns_self_and_leaves_the_parameters_as_given(cls, tiny_run):
    img, mask = tiny_run
    est = cls(**_given(cls, mask))
    given = est.get_params(deep=False)
    digest = _digest(given)
    assert est.fit(img) is est
    after = est.get_params(deep=False)
    # Neither replaced (same objects) nor changed in place (same hash).
    assert after.keys() == given.keys()
    assert [name for name in given if after[name] is not given[name]] == []
    assert _digest(after) == digest


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_fitted_attributes_end_with_an_underscore_and_hold_the_fit(cls, fits, tiny_run):
    img, mask = tiny_run
    est = fits[cls]
    params = est.get_params(deep=False)
    learned = {name for name in vars(est) if name not in params and not name.startswith("_")}
    assert [name for name in learned if not name.endswith("_")] == []
    assert learned >= FITTED | FITTED_OF[cls]
    check_is_fitted(est)

    mask_data = mask.get_fdata()
    n_voxels = int(np.count_nonzero(mask_data))
    np.testing.assert_array_equal(est.mask_img_.get_fdata(), mask_data)
    assert est.components_.shape == (3, n_voxels) and est.n_elements_ == 3
    assert est.components_img_.shape == (12, 12, 12, 3)
    np.testing.assert_allclose(apply_mask(est.components_img_, mask), est.components_, atol=1e-6)
    assert est.masker_.transform(img).shape == (50, n_voxels)
    if cls is STCADecomposition:
        # 9 windows of 10 scans every 5 in 50 scans, one per step, one epoch.
        assert est.n_steps_ == len(est.loss_curve_) == 9
    else:
        assert est.estimator_.n_components == 3 and est.estimator_.masker_ is est.masker_
    # A clone carries the parameters only.
    assert set(vars(clone(est))) == set(params)


#: Every call that needs a fitted estimator, on the tiny run.
UNFITTED_CALLS = {
    "transform": lambda est, img: est.transform(img),
    "inverse_transform": lambda est, img: est.inverse_transform([np.zeros((5, 3))]),
    "score": lambda est, img: est.score(img),
    "n_elements_": lambda est, img: est.n_elements_,
    "iter_window_maps": lambda est, img: next(est.iter_window_maps(img)),
    "window_maps_img": lambda est, img: est.window_maps_img(img, 0),
    "fbns_img": lambda est, img: est.fbns_img(),
}


@pytest.mark.parametrize("call", UNFITTED_CALLS)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_not_fitted_error_before_fit(cls, call, tiny_run):
    img, mask = tiny_run
    est = cls(**_given(cls, mask))
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet"):
        UNFITTED_CALLS[call](est, img)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_transform_then_inverse_transform(cls, fits, tiny_run):
    img, mask = tiny_run
    est = fits[cls]
    loadings = est.transform([img, index_img(img, slice(0, 30))])
    assert [loading.shape for loading in loadings] == [(50, 3), (30, 3)]
    images = est.inverse_transform(loadings)
    assert [image.shape for image in images] == [(12, 12, 12, 50), (12, 12, 12, 30)]
    for loading, image in zip(loadings, images, strict=True):
        expected = loading @ est.components_
        np.testing.assert_allclose(
            apply_mask(image, mask), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max()
        )


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_a_second_fit_with_the_same_random_state_gives_the_same_maps(cls, fits, tiny_run):
    img, _ = tiny_run
    est = clone(fits[cls])
    np.testing.assert_array_equal(est.fit(img).components_, fits[cls].components_)
    # Fitting the same instance again starts afresh.
    np.testing.assert_array_equal(est.fit(img).components_, fits[cls].components_)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_pickle_round_trip_of_a_fitted_estimator(cls, fits, tiny_run):
    img, _ = tiny_run
    est = fits[cls]
    copy = pickle.loads(pickle.dumps(est))
    assert type(copy) is cls
    assert _digest(copy.get_params(deep=False)) == _digest(est.get_params(deep=False))
    np.testing.assert_array_equal(copy.components_, est.components_)
    np.testing.assert_array_equal(copy.transform(img)[0], est.transform(img)[0])
    assert copy.score(img) == est.score(img)
    # The window maps need what the fit learned beyond components_ (STCA's network).
    np.testing.assert_array_equal(
        copy.window_maps_img(img, 5).get_fdata(), est.window_maps_img(img, 5).get_fdata()
    )
