"""The brain-state modules moved to nilearn_stca.states: the old paths warn for one release."""

import importlib

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
    with pytest.warns(FutureWarning, match=f"{old} moved to nilearn_stca.states"):
        module = importlib.reload(importlib.import_module(old))
    assert sorted(module.__all__) == OLD_NAMES[old].split()
    for name in module.__all__:
        assert getattr(module, name) is getattr(states, name)
