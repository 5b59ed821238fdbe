"""How far the brain states of SDL's windows move with the seed and with rounding.

The configuration of ``tests/test_state_outputs.py``: the simulator's state mode (2 subjects
of 200 scans, 8 mm, 6 procedural networks, 3 planted states, snr 3), SDL with 6 maps on
windows of 20 scans every 10 (19 per subject), 3 states found by k-means on the windows'
template presence vectors (IoU, templates at 0.5) and on their FBN maps.

Each run is a data seed (the simulator's ``random_state``), an SDL seed, and an input: the
runs as simulated, or each value times ``1 + noise * N(0, 1)`` (``--noise``, 1e-6: about 8
float32 steps, far below the data's noise, a stand-in for another machine's rounding; one
draw per ``--draws``). Per run it prints:

- the adjusted Rand index of the states with the planted ones: of the presence states, each
  subject's and their mean, and of the map states, the mean of the two subjects;
- the share of windows whose SDL maps part from those of the same seeds on the unperturbed
  input (a map whose best match there correlates below 0.9);
- how many different partitions k-means gives the same presence vectors over 10 of its own
  seeds, with scikit-learn's usual 10 restarts and with the library's
  :data:`~nilearn_stca.states.kmeans.KMEANS_RESTARTS`, and the map states over the same
  seeds (:func:`~nilearn_stca.states.fit_map_states`, the library's restarts) with the
  lowest of their indices (mean of the two subjects);
- chance: the 99th percentile of the index of the presence states shuffled over the
  windows, the highest of the subjects' and that of their mean.

Then the spread of each index over the runs. Run from the repository root::

    python -m benchmarks.states_spread           # the test's data with SDL seeds 0-4, and
                                                 # data seeds 0-4; 2 noise draws (27 runs)
    python -m benchmarks.states_spread --quick   # the test's data, SDL seeds 0-1, 1 draw
    python -m benchmarks.states_spread --stages  # where one subject's window maps part
"""

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
from nilearn.image import load_img, new_img_like
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from nilearn_stca import write_window_sweep
from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.states import fit_map_states, fit_states, planted_window_states, sweep_presence
from nilearn_stca.states.kmeans import KMEANS_RESTARTS

from ._common import default_threads, fill_size_defaults, header

WINDOW, STRIDE, N_STATES = 20, 10, 3
#: A window's maps "part" when one of them correlates below this with its best match.
PARTED_BELOW = 0.9


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.states_spread", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="SDL seeds 0 1 on seed 0, 1 draw")
    parser.add_argument("--sdl-seeds", type=int, nargs="+", help="on data seed 0; default 0-4")
    parser.add_argument("--data-seeds", type=int, nargs="*", help="default 0-4 (none: [])")
    parser.add_argument("--draws", type=int, help="perturbed inputs per seed, default 2")
    parser.add_argument("--noise", type=float, default=1e-6, help="relative, default 1e-6")
    parser.add_argument(
        "--stages", action="store_true", help="only trace one subject through SDL's steps"
    )
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"sdl_seeds": [0, 1], "data_seeds": [], "draws": 1},
        full={"sdl_seeds": list(range(5)), "data_seeds": list(range(5)), "draws": 2},
    )


def simulate(seed):
    return simulate_dynamic_rsfmri(
        n_subjects=2,
        n_scans=200,
        resolution=8,
        networks="procedural",
        n_networks=6,
        n_states=N_STATES,
        snr=3.0,
        random_state=seed,
    )


def perturb(img, noise, draw):
    """``img`` with each value times ``1 + noise * N(0, 1)`` (draw ``draw``), in float32."""
    data = load_img(img).get_fdata(dtype=np.float32)
    factor = 1 + noise * np.random.default_rng(draw).standard_normal(data.shape)
    return new_img_like(img, (data * factor).astype(np.float32), copy_header=True)


def sweeps_of(sim, sdl_seed, inputs, folder):
    """Each subject's SDL window sweep of ``inputs`` (one image per subject)."""
    folder.mkdir()
    sweeps = {}
    for i, img in enumerate(inputs, start=1):
        sdl = SDLDecomposition(
            n_components=6,
            window_length=WINDOW,
            window_stride=STRIDE,
            mask=sim.mask_img,
            random_state=sdl_seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nilearn's warnings on small data
            sweeps[f"sub-0{i}"] = write_window_sweep(sdl, img, folder / f"sub-0{i}", fit=True)
    return sweeps


def worst_match(maps, other):
    """The lowest |r| between ``maps`` and their one-to-one best matches in ``other``."""
    n = len(maps)
    r = np.nan_to_num(np.corrcoef(maps, other)[:n, n:])
    rows, columns = linear_sum_assignment(-np.abs(r))
    return np.abs(r[rows, columns]).min()


def parted_share(sweeps, reference):
    """The share of windows with a map whose best match in ``reference`` has |r| < 0.9."""
    parted = [
        worst_match(maps, other) < PARTED_BELOW
        for subject, sweep in sweeps.items()
        for (_, maps), (_, other) in zip(sweep, reference[subject], strict=True)
    ]
    return float(np.mean(parted))


def print_stages(noise):
    """Where inside SDL's window fits a perturbed input parts from the input as simulated.

    Subject 1 of the test's data, SDL seed 0, noise draw 1; per window, the largest change
    of the cleaned window and of its SVD reduction relative to their largest value, and the
    worst-matched map of the dictionary's CanICA initialisation and of the final maps.
    """
    from threadpoolctl import threadpool_limits

    from nilearn_stca.baselines._array_fits import _initial_maps, clean_window, reduce_window

    sim = simulate(0)
    fits = []
    for img in (sim.func[0], perturb(sim.func[0], noise, 1)):
        sdl = SDLDecomposition(
            n_components=6, window_length=WINDOW, mask=sim.mask_img, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sdl.fit(img)
        fits.append((sdl, sdl._masked_run(img)))

    def relative(a, b):
        return np.abs(a - b).max() / np.abs(a).max()

    print("\n| window | cleaned | reduced | initialisation: worst abs r | maps: worst abs r |")
    print("|---:|---:|---:|---:|---:|")
    parted = {"initialisation": 0, "maps": 0}
    starts = range(0, sim.func[0].shape[3] - WINDOW + 1, STRIDE)
    # As the windows' fits run: one BLAS thread, nilearn's warnings silenced.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in starts:
            stages = []
            for sdl, run in fits:
                window = run[start : start + WINDOW]
                cleaned = clean_window(
                    window, sdl.standardize, sdl.standardize_confounds, sdl.detrend
                )
                reduced = reduce_window(cleaned, sdl.n_components, 0)
                initial = _initial_maps(reduced, sdl.n_components, 0, 1, "cube")
                stages.append((cleaned, reduced, initial, sdl._decompose_window(reduced)))
            (cleaned, reduced, initial, maps), (cleaned_, reduced_, initial_, maps_) = stages
            worst = {
                "initialisation": worst_match(initial, initial_),
                "maps": worst_match(maps, maps_),
            }
            for name, value in worst.items():
                parted[name] += value < PARTED_BELOW
            print(
                f"| {start} | {relative(cleaned, cleaned_):.1e} | "
                f"{relative(reduced, reduced_):.1e} | {worst['initialisation']:.3f} | "
                f"{worst['maps']:.3f} |"
            )
    print(
        f"\nWindows with a map below |r| {PARTED_BELOW}: {parted['initialisation']} of "
        f"{len(starts)} after the initialisation, {parted['maps']} at the end."
    )


def count_partitions(labelings):
    """How many different partitions are among ``labelings`` (whatever the state numbers)."""
    found = []
    for labels in labelings:
        if not any(adjusted_rand_score(labels, other) == 1 for other in found):
            found.append(labels)
    return len(found)


def kmeans_partitions(features, n_init, seeds=range(10)):
    """How many different partitions k-means gives ``features`` over its ``seeds``."""
    return count_partitions(
        KMeans(N_STATES, n_init=n_init, random_state=seed).fit(features).labels_ for seed in seeds
    )


def map_states_over_seeds(sweeps, planted, seeds=range(10)):
    """:func:`fit_map_states` over k-means' ``seeds``: how many different partitions, and
    the lowest mean over the subjects of the index with the planted states."""
    fits = [fit_map_states(sweeps, N_STATES, random_state=seed).sequences for seed in seeds]
    lowest = min(
        np.mean([adjusted_rand_score(planted[s], sequences[s]) for s in sweeps])
        for sequences in fits
    )
    return count_partitions(np.concatenate(list(fit.values())) for fit in fits), lowest


def chance_levels(sequences, planted, n_permutations=1000):
    """99th percentiles of the index of the sequences shuffled over their windows.

    Returns the highest over the subjects, and that of the mean over the subjects.
    """
    rng = np.random.default_rng(0)
    shuffled = np.array(
        [
            [adjusted_rand_score(planted[s], rng.permutation(sequences[s])) for s in sequences]
            for _ in range(n_permutations)
        ]
    )
    return np.percentile(shuffled, 99, axis=0).max(), np.percentile(shuffled.mean(axis=1), 99)


def measure(sim, sweeps, reference):
    """The row of one run (``reference``: the unperturbed input's sweeps, or None)."""
    presence = {
        s: sweep_presence(sweep, sim.maps_img, template_threshold=0.5)
        for s, sweep in sweeps.items()
    }
    planted = {
        s: planted_window_states(sim.states[i], presence[s].index, WINDOW)
        for i, s in enumerate(sweeps)
    }
    states = fit_states(presence, N_STATES)
    maps_states = fit_map_states(sweeps, N_STATES)
    features = np.vstack([table.to_numpy() for table in presence.values()])
    presence_ari = [adjusted_rand_score(planted[s], states.sequences[s]) for s in sweeps]
    maps_ari = [adjusted_rand_score(planted[s], maps_states.sequences[s]) for s in sweeps]
    maps_partitions, maps_lowest = map_states_over_seeds(sweeps, planted)
    chance, chance_of_mean = chance_levels(states.sequences, planted)
    return {
        "presence ARI sub-01": presence_ari[0],
        "presence ARI sub-02": presence_ari[1],
        "presence ARI (mean)": float(np.mean(presence_ari)),
        "maps ARI (mean)": float(np.mean(maps_ari)),
        "windows parted": "-" if reference is None else parted_share(sweeps, reference),
        "k-means partitions, 10 restarts": kmeans_partitions(features, 10),
        f"k-means partitions, {KMEANS_RESTARTS}": kmeans_partitions(features, KMEANS_RESTARTS),
        "map-states partitions": maps_partitions,
        "maps ARI (mean), lowest k-means seed": maps_lowest,
        "chance (99th pct)": chance,
        "chance of the mean": chance_of_mean,
    }


def runs(args):
    """(data seed, SDL seed) of every run: the test's data first, then the other data."""
    pairs = [(0, sdl_seed) for sdl_seed in args.sdl_seeds]
    return pairs + [(seed, seed) for seed in args.data_seeds if (seed, seed) not in pairs]


def print_spread(rows):
    print("\nSpread over the runs above (min / median / max):\n")
    print("| runs | index | min | median | max |")
    print("|---|---|---:|---:|---:|")
    groups = {
        "test's data (seed 0)": [row for key, row in rows.items() if key[0] == 0],
        "all": list(rows.values()),
    }
    for name, group in groups.items():
        values = {
            "presence, per subject": [
                row[f"presence ARI sub-0{i}"] for row in group for i in (1, 2)
            ],
            "presence, mean of the subjects": [row["presence ARI (mean)"] for row in group],
            "maps, mean of the subjects": [row["maps ARI (mean)"] for row in group],
            "maps, the lowest of k-means seeds 0-9": [
                row["maps ARI (mean), lowest k-means seed"] for row in group
            ],
            "chance, per subject (99th pct)": [row["chance (99th pct)"] for row in group],
            "chance, mean of the subjects": [row["chance of the mean"] for row in group],
        }
        for index, numbers in values.items():
            low, middle, high = np.min(numbers), np.median(numbers), np.max(numbers)
            print(f"| {name} | {index} | {low:.3f} | {middle:.3f} | {high:.3f} |")


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    print(header(n_threads, f"input noise {args.noise:g} (relative)"), flush=True)
    if args.stages:
        print_stages(args.noise)
        return
    inputs = ["as simulated"] + [f"noise draw {draw}" for draw in range(1, args.draws + 1)]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for data_seed, sdl_seed in runs(args):
            sim = simulate(data_seed)
            reference = None
            for name in inputs:
                draw = None if name == "as simulated" else int(name.split()[-1])
                imgs = (
                    sim.func if draw is None else [perturb(f, args.noise, draw) for f in sim.func]
                )
                folder = Path(tmp) / f"{data_seed}_{sdl_seed}_{draw}"
                sweeps = sweeps_of(sim, sdl_seed, imgs, folder)
                rows[data_seed, sdl_seed, name] = measure(sim, sweeps, reference)
                reference = sweeps if reference is None else reference
                if len(rows) == 1:
                    columns = list(rows[data_seed, sdl_seed, name])
                    print("\n| data seed | SDL seed | input | " + " | ".join(columns) + " |")
                    print("|---:|---:|---|" + "---:|" * len(columns))
                cells = [
                    v if isinstance(v, str) else f"{v:.3f}" if isinstance(v, float) else str(v)
                    for v in rows[data_seed, sdl_seed, name].values()
                ]
                print(
                    f"| {data_seed} | {sdl_seed} | {name} | " + " | ".join(cells) + " |",
                    flush=True,
                )
    print_spread(rows)


if __name__ == "__main__":
    main()
