"""The spread of the numbers that tests hold to a threshold, over seeds and perturbed inputs.

A test that asserts a recovery score (IoU, adjusted Rand index) at least some threshold
must pass on any machine. The numbers of the window fits (FastICA, dictionary learning,
STCA's training) move with rounding, and another machine rounds otherwise: this benchmark
recomputes each such number as its test or tutorial does, with the method's seed in
``--seeds`` (for ``recovery`` the simulator's too, as in its test), on the input as
simulated and on ``--draws`` inputs with each value times ``1 + 1e-6 * N(0, 1)`` (a stand-in
for another machine's rounding), and prints, per number, the test's threshold and the
minimum, median and maximum over the runs. A lower bound must sit below the minimum, an
upper bound above the maximum. The states of ``tests/test_state_outputs.py`` are measured by
:mod:`benchmarks.states_spread`. Run from the repository root::

    python -m benchmarks.threshold_spreads           # seeds 0 1 2, 2 draws (9 runs a check)
    python -m benchmarks.threshold_spreads --quick   # seed 0, 1 draw
    python -m benchmarks.threshold_spreads --checks baselines dynamics
"""

import argparse
import copy
import time
import warnings

import numpy as np
from nilearn.decomposition import CanICA
from nilearn.image import load_img, new_img_like
from threadpoolctl import threadpool_limits

from nilearn_stca import STCADecomposition
from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation import compare, table1
from nilearn_stca.evaluation.truth import (
    TRUTH_THRESHOLD,
    score_against_truth,
    score_windows_against_truth,
)
from nilearn_stca.maps import flip_to_positive_tail, zscore_maps
from nilearn_stca.states import fit_states, planted_window_states, presence_table, score_states

from ._common import default_threads, fill_size_defaults, header

NOISE = 1e-6


def perturb(imgs, draw):
    """Each image's values times ``1 + 1e-6 * N(0, 1)`` (float32); ``imgs`` if draw is 0."""
    if draw == 0:
        return imgs
    rng = np.random.default_rng(draw)
    perturbed = []
    for img in imgs:
        data = load_img(img).get_fdata(dtype=np.float32)
        factor = 1 + NOISE * rng.standard_normal(data.shape)
        perturbed.append(new_img_like(img, (data * factor).astype(np.float32), copy_header=True))
    return perturbed


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's and scikit-learn's warnings on small data
        return function(*args, **kwargs)


def _mean_iou(maps, sim, mask_img):
    return score_against_truth(maps, sim.maps_img, mask_img).iou


# ---------------------------------------------------------------------- the checks
def baselines(seed, draw):
    """tests/test_baselines.py: static maps and 40-scan windows of ICA and SDL (20 maps)."""
    sim = simulate_dynamic_rsfmri(
        n_scans=120, resolution=8, snr=3.0, networks="procedural", random_state=0
    )
    (img,) = perturb(sim.func, draw)
    row = {}
    for name, cls, extra in (
        ("ICA", ICADecomposition, {"n_init": 2}),
        ("SDL", SDLDecomposition, {}),
    ):
        est = cls(random_state=seed, window_length=40, window_stride=40, **extra)
        _quiet(est.fit, img)
        iou = _mean_iou(est.components_, sim, est.mask_img_)
        row[f"{name} static mean IoU"] = iou.mean()
        row[f"{name} static networks with IoU > 0.1"] = int((iou > 0.1).sum())
        if cls is SDLDecomposition:
            windows = [
                _mean_iou(m, sim, est.mask_img_).mean()
                for _, m in _quiet(list, est.iter_window_maps(img))
            ]
            row["SDL windows mean IoU"] = np.mean(windows)
            row["SDL windows min IoU"] = min(windows)
    return row


def baselines_fast(seed, draw):
    """tests/test_baselines_fast.py: SDL's 40-scan windows (fast path), exact codes moved."""
    sim = simulate_dynamic_rsfmri(
        n_scans=80, resolution=8, snr=3.0, networks="procedural", random_state=0
    )
    (img,) = perturb(sim.func, draw)
    est = _quiet(SDLDecomposition(random_state=seed, window_length=40, window_stride=20).fit, img)
    run = est._masked_run(img)
    starts = [0, 20, 40]
    with threadpool_limits(limits=1, user_api="blas"):
        plain = _quiet(list, est._iter_run_maps_plain(run, starts))
    fast = _quiet(list, est._iter_run_maps(run, starts))
    exact_est = copy.copy(est).set_params(window_coding="exact")
    exact = _quiet(list, exact_est._iter_run_maps(run, starts))
    pairs = {
        "fast": list(zip(fast, plain, strict=True)),
        "exact": list(zip(exact, plain, strict=True)),
    }

    def iou(maps):
        return _mean_iou(maps, sim, est.mask_img_).mean()

    return {
        "SDL fast windows mean IoU": np.mean([iou(m) for _, m in fast]),
        "fast - plain max abs": max(np.abs(a - b).max() for (_, a), (_, b) in pairs["fast"]),
        "exact - plain max abs": max(np.abs(a - b).max() for (_, a), (_, b) in pairs["exact"]),
        "exact - plain window IoU max abs": max(
            abs(iou(a) - iou(b)) for (_, a), (_, b) in pairs["exact"]
        ),
    }


def _sdl_presence_states(n_subjects, n_components, seed, draw):
    """SDL's presence states of the simulator's state mode (240 scans), scored as planted."""
    sim = simulate_dynamic_rsfmri(
        n_subjects=n_subjects,
        n_scans=240,
        resolution=8,
        networks="procedural",
        n_networks=6,
        n_states=3,
        snr=3.0,
        random_state=0,
    )
    results = _quiet(
        compare,
        perturb(sim.func, draw),
        methods=("sdl",),
        templates=sim.maps_img,
        template_threshold=TRUTH_THRESHOLD,
        mask_img=sim.mask_img,
        window_length=20,
        window_stride=5,
        n_components=n_components,
        random_state=seed,
        verbose=0,
    )
    subjects = [f"sub-0{i}" for i in range(1, n_subjects + 1)]
    states = fit_states({s: presence_table(results, s, "sdl") for s in subjects}, n_states=3)
    rng = np.random.default_rng(0)
    scores, shuffled = [], []
    for i, s in enumerate(subjects):
        planted = planted_window_states(sim.states[i], states.starts[s], 20)
        scores.append(score_states(states.sequences[s], planted, 3))
        permuted = rng.permutation(states.sequences[s])
        shuffled.append(score_states(permuted, planted, 3)["adjusted_rand"])
    return {
        "SDL ARI": np.mean([score["adjusted_rand"] for score in scores]),
        "SDL shuffled ARI": np.mean(shuffled),
        "SDL occupancy error": np.mean([score["occupancy_error"] for score in scores]),
    }


def dynamics(seed, draw):
    """tests/test_dynamics.py: SDL's presence states (20 maps, windows of 20 every 5), one
    subject."""
    return _sdl_presence_states(1, None, seed, draw)


def tutorial_05(seed, draw):
    """Tutorial 05: SDL's presence states (6 maps), two subjects, mean over them.

    The tutorial's check takes the best of ICA, SDL and STCA: SDL's is a lower bound of it.
    """
    return _sdl_presence_states(2, 6, seed, draw)


def tutorial_01(seed, draw):
    """Tutorial 01: CanICA's and STCA's static maps (10 maps, 120 scans)."""
    sim = simulate_dynamic_rsfmri(n_scans=120, resolution=8, snr=3.0, random_state=0)
    imgs = perturb(sim.func, draw)
    canica = CanICA(n_components=10, mask=sim.mask_img, smoothing_fwhm=None, random_state=seed)
    _quiet(canica.fit, imgs)
    stca = _quiet(
        STCADecomposition(n_components=10, mask=sim.mask_img, random_state=seed).fit, imgs
    )
    ica_z = zscore_maps(flip_to_positive_tail(canica.components_))
    return {
        "CanICA static mean IoU": _mean_iou(ica_z, sim, sim.mask_img).mean(),
        "STCA static mean IoU": _mean_iou(stca.components_, sim, sim.mask_img).mean(),
    }


def tutorial_02(seed, draw):
    """Tutorial 02: SDL's 40-scan windows every 8 scans (16 maps), active pairs' IoU."""
    sim = simulate_dynamic_rsfmri(n_scans=120, resolution=8, snr=3.0, random_state=0)
    (img,) = perturb(sim.func, draw)
    sdl = _quiet(SDLDecomposition(n_components=16, mask=sim.mask_img, random_state=seed).fit, img)
    scores = _quiet(
        score_windows_against_truth,
        sdl.iter_window_maps(img, stride=8),
        sim.maps_img,
        sim.mask_img,
        sim.amplitudes[0],
        40,
        active_threshold=-1.0,
        network_names=sim.network_names,
    )
    amplitudes = sim.amplitudes[0]
    envelopes = np.array([amplitudes[s : s + 40].mean(axis=0) for s in range(len(amplitudes))])
    networks = scores.network.map(sim.network_names.index)
    active = scores[envelopes[scores.start_scan, networks] > 0.5]
    return {"SDL active-pair window IoU": active.iou.mean()}


def tutorial_03(seed, draw):
    """Tutorial 03: SDL's static maps in compare (2 subjects of 80 scans, 10 maps)."""
    sim = simulate_dynamic_rsfmri(n_subjects=2, n_scans=80, resolution=8, snr=3.0, random_state=0)
    results = _quiet(
        compare,
        perturb(sim.func, draw),
        methods=("sdl",),
        templates=sim.maps_img,
        template_threshold=TRUTH_THRESHOLD,
        template_names=sim.network_names,
        mask_img=sim.mask_img,
        window_length=40,
        windows=False,
        n_components=10,
        random_state=seed,
        verbose=0,
    )
    return {"SDL static mean IoU (Table 1)": table1(results).loc["mean", ("SDL", "mean")]}


def recovery(seed, draw):
    """tests/test_recovery.py: STCA trained on three blobs (300 scans), against untrained.

    The seed is the simulator's and STCA's, as in the test (which runs seeds 0 and 1).
    """
    # The test's own data and scoring, so that the numbers are the test's.
    from tests.test_recovery import _three_blob_networks, _untrained, _window_scores

    maps_img, mask_img = _three_blob_networks()
    sim = simulate_dynamic_rsfmri(
        n_scans=300, mask_img=mask_img, networks=maps_img, snr=3.0, random_state=seed
    )
    sim.func = perturb(sim.func, draw)
    est = STCADecomposition(
        n_components=8, window_length=20, mask=sim.mask_img, device="cpu", random_state=seed
    ).fit(sim.func[0])
    scores = _window_scores(est, sim)
    baseline = _window_scores(_untrained(est), sim)
    static = score_against_truth(est.components_, sim.maps_img, est.mask_img_)
    return {
        "STCA window IoU": scores.iou.mean(),
        "STCA window IoU - untrained": scores.iou.mean() - baseline.iou.mean(),
        "STCA window correlation": scores.correlation.mean(),
        "STCA window correlation - untrained": (
            scores.correlation.mean() - baseline.correlation.mean()
        ),
        "STCA static IoU": static.iou.mean(),
        "untrained window IoU": baseline.iou.mean(),
        "untrained window correlation": baseline.correlation.mean(),
    }


#: check -> (function, {number: (test, threshold as the test writes it)})
CHECKS = {
    "baselines": (
        baselines,
        {
            "ICA static mean IoU": ("test_baselines.py", ">= 0.22"),
            "ICA static networks with IoU > 0.1": ("test_baselines.py", ">= 7"),
            "SDL static mean IoU": ("test_baselines.py", ">= 0.3"),
            "SDL static networks with IoU > 0.1": ("test_baselines.py", ">= 7"),
            "SDL windows mean IoU": ("test_baselines.py", ">= 0.22"),
            "SDL windows min IoU": ("test_baselines.py", ">= 0.15"),
        },
    ),
    "baselines_fast": (
        baselines_fast,
        {
            "SDL fast windows mean IoU": ("test_baselines_fast.py", ">= 0.2"),
            "fast - plain max abs": ("test_baselines_fast.py", "<= 1e-4"),
            "exact - plain max abs": ("test_baselines_fast.py", "<= 1.0"),
            "exact - plain window IoU max abs": ("test_baselines_fast.py", "<= 0.02"),
        },
    ),
    "dynamics": (
        dynamics,
        {
            "SDL ARI": ("test_dynamics.py", ">= 0.4"),
            "SDL shuffled ARI": ("test_dynamics.py", "< 0.1"),
            "SDL occupancy error": ("test_dynamics.py", "< 0.1"),
        },
    ),
    "tutorial_05": (
        tutorial_05,
        {
            "SDL ARI": ("test_tutorials.py (best of 3 methods)", ">= 0.4"),
            "SDL shuffled ARI": ("test_tutorials.py (max of 3 methods)", "< 0.2"),
        },
    ),
    "recovery": (
        recovery,
        {
            "STCA window IoU": ("test_recovery.py", ">= 0.06"),
            "STCA window IoU - untrained": ("test_recovery.py", ">= 0.04"),
            "STCA window correlation": ("test_recovery.py", ">= 0.45"),
            "STCA window correlation - untrained": ("test_recovery.py", ">= 0.2"),
            "STCA static IoU": ("test_recovery.py", ">= 0.3"),
            "untrained window IoU": ("test_recovery.py", "< 0.05"),
            "untrained window correlation": ("test_recovery.py", "< 0.35"),
        },
    ),
    "tutorial_01": (
        tutorial_01,
        {
            "CanICA static mean IoU": ("test_tutorials.py", ">= 0.2"),
            "STCA static mean IoU": ("test_tutorials.py", ">= 0.05"),
        },
    ),
    "tutorial_02": (
        tutorial_02,
        {"SDL active-pair window IoU": ("test_tutorials.py", ">= 0.2")},
    ),
    "tutorial_03": (
        tutorial_03,
        {"SDL static mean IoU (Table 1)": ("test_tutorials.py", ">= 0.25")},
    ),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.threshold_spreads", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="seed 0, 1 draw")
    parser.add_argument("--checks", nargs="+", choices=CHECKS, help="default: all")
    parser.add_argument("--seeds", type=int, nargs="+", help="methods' seeds, default 0 1 2")
    parser.add_argument("--draws", type=int, help="perturbed inputs per seed, default 2")
    args = fill_size_defaults(
        parser.parse_args(argv),
        quick={"seeds": [0], "draws": 1},
        full={"seeds": [0, 1, 2], "draws": 2},
    )
    args.checks = args.checks or list(CHECKS)
    return args


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    print(header(n_threads, f"input noise {NOISE:g} (relative)"), flush=True)
    print("\n| check | number | test | threshold | runs | min | median | max | each run | s/run |")
    print("|---|---|---|---|---:|---:|---:|---:|---|---:|")
    for name in args.checks:
        function, numbers = CHECKS[name]
        tic = time.perf_counter()
        rows = [function(seed, draw) for seed in args.seeds for draw in range(args.draws + 1)]
        seconds = (time.perf_counter() - tic) / len(rows)
        for number, (test, threshold) in numbers.items():
            values = np.array([row[number] for row in rows], dtype=float)
            each = " ".join(f"{v:.3g}" for v in values)
            print(
                f"| {name} | {number} | {test} | {threshold} | {len(values)} | "
                f"{values.min():.3g} | {np.median(values):.3g} | {values.max():.3g} | {each} | "
                f"{seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
