"""State metrics against values worked out by hand, and on the simulator's planted states."""

import numpy as np
import pytest

from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.dynamics import state_metrics


def test_metrics_of_a_small_sequence_by_hand():
    # Stays: 1 (1 point), 2 (1), 1 (3), 0 (1); state 3 is never visited.
    metrics = state_metrics([1, 2, 1, 1, 1, 0], n_states=4, t_r=2.0, step=5)
    per_state = metrics.per_state
    np.testing.assert_allclose(per_state.temporal_fraction, [1 / 6, 4 / 6, 1 / 6, 0])
    np.testing.assert_allclose(per_state.persistence, [1, 2, 1, 0])  # state 1: (1 + 3) / 2
    np.testing.assert_array_equal(per_state.counts, [1, 2, 1, 0])
    np.testing.assert_allclose(per_state.persistence_seconds, [10, 20, 10, 0])  # x 5 x 2 s
    assert metrics.transition_frequency == 3
    # From 1: 1->2, 1->1, 1->1, 1->0; from 2: 2->1; 0 is last and 3 never seen.
    probability = metrics.transition_probability.to_numpy()
    np.testing.assert_allclose(probability[1], [0.25, 0.5, 0.25, 0])
    np.testing.assert_allclose(probability[2], [0, 1, 0, 0])
    assert np.isnan(probability[0]).all() and np.isnan(probability[3]).all()
    assert per_state.temporal_fraction.sum() == pytest.approx(1)


def test_one_state_throughout():
    metrics = state_metrics(np.zeros(10, int))
    assert metrics.per_state.to_dict("list") == {
        "temporal_fraction": [1.0],
        "persistence": [10.0],
        "counts": [1],
    }
    assert metrics.transition_frequency == 0
    assert metrics.transition_probability.iloc[0, 0] == 1


def test_metrics_of_the_simulators_planted_states():
    data = simulate_dynamic_rsfmri(
        n_scans=300, resolution=16, networks="procedural", n_states=3, random_state=1
    )
    sequence = data.states[0]
    metrics = state_metrics(sequence, n_states=3, t_r=data.t_r)
    per_state = metrics.per_state
    assert per_state.temporal_fraction.sum() == pytest.approx(1)
    # Occupancy = persistence x counts / points, as Yang et al. (2021) state.
    np.testing.assert_allclose(
        per_state.temporal_fraction, per_state.persistence * per_state.counts / len(sequence)
    )
    assert metrics.transition_frequency == per_state.counts.sum() - 1
    # The planted dwells are 30 to 90 scans: staying is far likelier than leaving.
    assert (np.diag(metrics.transition_probability) > 0.9).all()


@pytest.mark.parametrize(
    ("sequence", "n_states", "error", "match"),
    [
        ([], None, ValueError, "non-empty 1D array"),
        ([[0, 1]], None, ValueError, "non-empty 1D array"),
        ([0.5, 1.0], None, TypeError, "integer states"),
        ([0, 3], 2, ValueError, "states must be 0 to n_states - 1 = 1"),
        ([0, -1], 2, ValueError, "states must be 0 to n_states - 1"),
        ([0, 1], 0, ValueError, "n_states must be a positive integer"),
    ],
)
def test_bad_sequences_are_refused(sequence, n_states, error, match):
    with pytest.raises(error, match=match):
        state_metrics(sequence, n_states=n_states)


def test_docstring_examples_pass():
    import doctest

    from nilearn_stca import dynamics

    assert doctest.testmod(dynamics).failed == 0
