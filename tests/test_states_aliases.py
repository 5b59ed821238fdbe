"""The brain-state modules moved to nilearn_stca.states: the old paths warn for one release."""

import importlib
import warnings

import pytest

import nilearn_stca.states as states

#: What each old module offered (its ``__all__``, and the two functions of the state figures).
OLD_NAMES = {
    "nilearn_stca.dynamics": "fit_map_states fit_states planted_window_states presence_table "
    "score_states state_metrics state_metrics_table transition_counts transition_probability",
    "nilearn_stca.state_outputs": "STATES_FILE sweep_presence write_states",
}


@pytest.mark.parametrize("old", OLD_NAMES)
def test_old_paths_warn_and_give_the_states_objects(old):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        module = importlib.import_module(old)  # light and silent: nothing is used yet
    assert sorted(module.__all__) == OLD_NAMES[old].split()
    for name in module.__all__:
        with pytest.warns(FutureWarning, match=f"{old} moved to nilearn_stca.states"):
            value = getattr(module, name)
        assert value is getattr(states, name)
    # Only what the old module offered: the other names of the states package are not there.
    with pytest.raises(AttributeError, match="has no attribute 'kmeans'"):
        module.kmeans  # noqa: B018


def test_from_import_of_an_old_path_warns_and_gives_the_function():
    with pytest.warns(FutureWarning, match="nilearn_stca.dynamics moved to nilearn_stca.states"):
        from nilearn_stca.dynamics import state_metrics
    assert state_metrics is states.state_metrics


def test_old_path_is_an_attribute_of_the_package_once_imported():
    import nilearn_stca.dynamics

    import nilearn_stca

    assert nilearn_stca.dynamics is importlib.import_module("nilearn_stca.dynamics")
    with pytest.warns(FutureWarning, match="nilearn_stca.dynamics moved"):
        assert nilearn_stca.dynamics.fit_states is states.fit_states
