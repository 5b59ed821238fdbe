"""State metrics against values worked out by hand, and on the simulator's planted states."""

import itertools

import numpy as np
import pytest

from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.datasets._states import DWELL_SCANS
from nilearn_stca.states import score_states, state_metrics


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


def _metrics_by_hand(sequence, n_states):
    """The metrics by their definitions, counted stay by stay and step by step."""
    stays = [(state, len(list(run))) for state, run in itertools.groupby(sequence)]
    fraction, persistence, counts = [], [], []
    for state in range(n_states):
        lengths = [length for stayed, length in stays if stayed == state]
        fraction.append(sum(lengths) / len(sequence))
        persistence.append(sum(lengths) / len(lengths) if lengths else 0.0)
        counts.append(len(lengths))
    steps = np.zeros((n_states, n_states))
    for before, after in itertools.pairwise(sequence):
        steps[before, after] += 1
    with np.errstate(invalid="ignore"):
        probability = steps / steps.sum(axis=1, keepdims=True)
    return stays, fraction, persistence, counts, probability


def test_metrics_of_the_simulators_planted_states():
    data = simulate_dynamic_rsfmri(
        n_scans=300, resolution=16, networks="procedural", n_states=3, random_state=1
    )
    sequence = list(data.states[0])
    stays, fraction, persistence, counts, probability = _metrics_by_hand(sequence, 3)
    # The planted sequence is what the simulator promises: a new state at every switch,
    # dwells of 30 to 90 scans at 300 scans (shorter runs scale them down), the first and
    # last cut by the run's ends.
    assert all(a != b for (a, _), (b, _) in itertools.pairwise(stays))
    low, high = DWELL_SCANS
    assert all(low <= length <= high for _, length in stays[1:-1]) and len(stays) >= 4

    metrics = state_metrics(sequence, n_states=3, t_r=data.t_r)
    per_state = metrics.per_state
    np.testing.assert_allclose(per_state.temporal_fraction, fraction)
    np.testing.assert_allclose(per_state.persistence, persistence)
    np.testing.assert_array_equal(per_state.counts, counts)
    np.testing.assert_allclose(per_state.persistence_seconds, np.multiply(persistence, data.t_r))
    assert metrics.transition_frequency == len(stays) - 1
    np.testing.assert_allclose(metrics.transition_probability.to_numpy(), probability)
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

    from nilearn_stca.states import metrics as dynamics

    assert doctest.testmod(dynamics).failed == 0


# ---------------------------------------------------------------------- states from windows
def _results(subject, method, windows):
    """compare-like rows: ``windows`` maps window start -> {template: iou}."""
    import pandas as pd

    rows = [
        {"subject": subject, "method": method, "window": "static", "template": t, "iou": 0.5}
        for t in ("DMN", "Visual")
    ]
    for start, ious in windows.items():
        rows += [
            {"subject": subject, "method": method, "window": start, "template": t, "iou": v}
            for t, v in ious.items()
        ]
    return pd.DataFrame(rows)


def test_presence_table_is_windows_by_templates():
    from nilearn_stca.states import presence_table

    results = _results(
        "sub-01", "sdl", {20: {"DMN": 0.1, "Visual": 0.7}, 0: {"DMN": 0.4, "Visual": 0.0}}
    )
    presence = presence_table(results, "sub-01", "sdl")
    assert list(presence.columns) == ["DMN", "Visual"] and list(presence.index) == [0, 20]
    np.testing.assert_allclose(presence.to_numpy(), [[0.4, 0.0], [0.1, 0.7]])
    with pytest.raises(ValueError, match="no window rows for subject 'sub-01' and method 'ica'"):
        presence_table(results, "sub-01", "ica")


def _two_state_presence(rng, n_windows=40):
    """Windows alternating in blocks of 10 between a DMN state and a Visual state."""
    import pandas as pd

    planted = (np.arange(n_windows) // 10) % 2
    profiles = np.array([[0.6, 0.05], [0.05, 0.5]])
    values = profiles[planted] + 0.05 * rng.standard_normal((n_windows, 2))
    starts = np.arange(n_windows) * 5
    return pd.DataFrame(values, index=starts, columns=["DMN", "Visual"]), planted


def test_fit_states_finds_the_planted_states_and_their_number():
    from nilearn_stca.states import fit_states, score_states

    rng = np.random.default_rng(0)
    (first, planted_1), (second, planted_2) = _two_state_presence(rng), _two_state_presence(rng)
    states = fit_states({"sub-01": first, "sub-02": second}, random_state=0)
    assert states.n_states == 2 and max(states.silhouette, key=states.silhouette.get) == 2
    for subject, planted in (("sub-01", planted_1), ("sub-02", planted_2)):
        scores = score_states(states.sequences[subject], planted)
        assert scores == {"adjusted_rand": 1.0, "occupancy_error": 0.0}
    np.testing.assert_array_equal(states.starts["sub-01"], first.index)
    # Each centroid is one planted profile.
    dominant = sorted(states.centroids.idxmax(axis=1))
    assert dominant == ["DMN", "Visual"]
    given = fit_states({"sub-01": first}, n_states=3)
    assert given.n_states == 3 and given.silhouette is None and given.centroids.shape == (3, 2)


def test_planted_window_states_take_the_majority_of_each_window():
    from nilearn_stca.states import planted_window_states

    scans = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(planted_window_states(scans, [0, 2, 4, 6], 4), [0, 1, 1, 2])
    np.testing.assert_array_equal(planted_window_states(scans, [1], 4), [0])  # a 2-2 tie: lower


def test_score_states_ignores_the_numbering_and_checks_lengths():
    from nilearn_stca.states import score_states

    planted = np.array([0, 0, 1, 1, 1, 2])
    renamed = np.array([2, 2, 0, 0, 0, 1])
    assert score_states(renamed, planted) == {"adjusted_rand": 1.0, "occupancy_error": 0.0}
    one_off = score_states(np.array([0, 0, 0, 1, 1, 2]), planted)
    assert 0 < one_off["adjusted_rand"] < 1 and one_off["occupancy_error"] == 0.0
    with pytest.raises(ValueError, match="sequence has 2 points and planted 6"):
        score_states([0, 1], planted)


@pytest.mark.slow
def test_sdl_window_states_follow_the_planted_states():
    """End to end: compare's SDL windows -> presence vectors -> k-means -> planted states.

    Measured (2026-12-04, benchmarks/threshold_spreads.py, SDL seeds 0-2 x {as simulated,
    2 inputs times 1 + 1e-6 N(0, 1)}): adjusted Rand index 0.47 to 0.69 (0.52 here), the
    labels shuffled 0.003 to 0.066, occupancy error 0.015 to 0.044.
    """
    import warnings

    from nilearn_stca.evaluation import compare
    from nilearn_stca.states import fit_states, planted_window_states, presence_table

    sim = simulate_dynamic_rsfmri(
        n_scans=240, resolution=8, networks="procedural", n_networks=6, n_states=3, snr=3.0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on small data
        results = compare(
            sim.func,
            methods=("sdl",),
            templates=sim.maps_img,
            template_threshold=0.5,
            mask_img=sim.mask_img,
            window_length=20,
            window_stride=5,
            verbose=0,
        )
    states = fit_states({"sub-01": presence_table(results, "sub-01", "sdl")}, n_states=3)
    planted = planted_window_states(sim.states[0], states.starts["sub-01"], 20)
    recovered = states.sequences["sub-01"]
    scores = score_states(recovered, planted, n_states=3)
    shuffled = score_states(np.random.default_rng(0).permutation(recovered), planted, 3)
    assert scores["adjusted_rand"] >= 0.4 and shuffled["adjusted_rand"] < 0.1
    assert scores["occupancy_error"] < 0.1


def test_plot_states_draws_profiles_sequences_and_transitions(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from nilearn_stca.evaluation.state_figures import plot_states
    from nilearn_stca.states import fit_states

    rng = np.random.default_rng(0)
    (first, _), (second, _) = _two_state_presence(rng), _two_state_presence(rng)
    states = fit_states({"sub-01": first, "sub-02": second}, n_states=2)
    figure = plot_states(states, title="SDL")
    profiles, sequences, transitions = figure.axes[:3]
    assert [tick.get_text() for tick in profiles.get_xticklabels()] == ["DMN", "Visual"]
    assert len(sequences.patches) == 2 * 40  # one bar per window of each subject
    # Pooled transitions: blocks of 10 windows, so 9 stays in every 10 steps or so.
    values = [float(text.get_text()) for text in transitions.texts]
    assert len(values) == 4 and values[0] > 0.8 and values[3] > 0.8
    plot_states(states, output_file=tmp_path / "states.png")
    assert (tmp_path / "states.png").read_bytes().startswith(b"\x89PNG")


def test_fit_map_states_groups_the_windows_fbns_streamed_from_sweeps(sim, tmp_path):
    import warnings

    from nilearn.masking import apply_mask

    from nilearn_stca import load_window_sweep, write_window_sweep
    from nilearn_stca.baselines import SDLDecomposition
    from nilearn_stca.states import fit_map_states

    sweeps = {}
    for i, img in enumerate(sim.func):
        sdl = SDLDecomposition(
            n_components=3, window_length=20, window_stride=5, mask=sim.mask_img, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sweeps[f"sub-0{i + 1}"] = write_window_sweep(sdl, img, tmp_path / f"{i}", fit=True)
    states = fit_map_states(sweeps, n_states=2, n_features=14)  # 2 x 7 windows: full rank
    assert states.n_states == 2 and states.state_maps_img.shape == (*sim.mask_img.shape, 2)
    assert [len(states.sequences[s]) for s in sweeps] == [7, 7]
    np.testing.assert_array_equal(states.starts["sub-01"], [0, 5, 10, 15, 20, 25, 30])
    # With every component kept, a state's map is the mean FBN union of its windows.
    unions = np.vstack(
        [(load_window_sweep(sweeps[s].path).maps >= 3.6).any(axis=1).astype(float) for s in sweeps]
    )
    labels = np.concatenate([states.sequences[s] for s in sweeps])
    state_maps = apply_mask(states.state_maps_img, sim.mask_img)
    for state in range(2):
        np.testing.assert_allclose(
            state_maps[state], np.clip(unions[labels == state].mean(axis=0), 0, 1), atol=1e-4
        )
    assert np.isclose(states.explained_variance_ratio.sum(), 1, atol=1e-4)
    # Small steps (batches of 4, 4, 4 and 2 windows: the last joins the one before).
    small = fit_map_states(sweeps, n_states=2, n_features=3, batch_size=4)
    assert [len(small.sequences[s]) for s in sweeps] == [7, 7]
    assert len(small.explained_variance_ratio) == 3
