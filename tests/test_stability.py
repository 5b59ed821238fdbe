"""ICASSO-like stability across seeds, for any of the package's estimators."""

import warnings

import numpy as np
import pytest

from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.evaluation.stability import stability


def _quiet_stability(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on small data
        return stability(*args, **kwargs)


def test_the_same_seed_gives_clusters_of_identical_maps(sim):
    estimator = ICADecomposition(n_components=3, n_init=1, mask=sim.mask_img)
    result = _quiet_stability(estimator, sim.func[0], random_states=[7, 7, 7])
    table = result.table
    assert len(table) == 3
    np.testing.assert_array_equal(table.n_maps, [3, 3, 3])  # one copy from each run
    np.testing.assert_array_equal(table.n_runs, [3, 3, 3])
    np.testing.assert_allclose(table.intra_similarity, 1.0)
    np.testing.assert_allclose(table.stability_index, 1.0 - table.extra_similarity)
    assert (table.stability_index.diff().dropna() <= 0).all()  # most stable first
    fitted = estimator.set_params(random_state=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(sim.func[0])
    # The centrotypes are the fitted maps, in some order.
    matches = np.abs(np.corrcoef(result.components_, fitted.components_)[:3, 3:])
    np.testing.assert_allclose(np.sort(matches.max(axis=1)), 1.0, atol=1e-5)
    assert result.components_img_.shape == (*sim.mask_img.shape, 3)
    assert result.similarity.shape == (9, 9)


def test_other_seeds_give_a_table_of_every_cluster(sim):
    estimator = SDLDecomposition(n_components=4, mask=sim.mask_img)
    result = _quiet_stability(estimator, sim.func[0], n_runs=3, random_state=0)
    table = result.table
    assert len(table) == 4 and table.n_maps.sum() == 12
    assert ((table.stability_index >= -1) & (table.stability_index <= 1)).all()
    assert set(result.labels) == {0, 1, 2, 3}
    np.testing.assert_array_equal(np.bincount(result.labels), table.n_maps)
    # Every centrotype is one of its cluster's maps.
    for cluster, centrotype in enumerate(table.centrotype):
        assert result.labels[centrotype] == cluster


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_runs": 1}, "n_runs must be an integer >= 2"),
        ({"random_states": [3]}, "stability needs at least 2 runs"),
    ],
)
def test_fewer_than_two_runs_are_refused(sim, kwargs, match):
    with pytest.raises(ValueError, match=match):
        stability(SDLDecomposition(mask=sim.mask_img), sim.func[0], **kwargs)
