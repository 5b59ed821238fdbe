"""One pass over the data: STCA's fit and window sweep, and what ``compare`` reads and masks.

1. STCA on one simulated run, each path in its own child process with the same seed:

   - ``two passes``: ``fit`` (training, then every training window mapped for the static
     maps), then ``iter_window_maps`` (every window mapped again), as before;
   - ``one pass``: ``fit_iter_window_maps``, which ``compare``, the nipype nodes and
     ``write_window_sweep(..., fit=True)`` use: the windows are mapped once, for the static
     maps and the caller.

   Printed: the time of each, the windows mapped, the run's reads from disk and maskings,
   and whether both give the same static and window maps (SHA-256 of every array).
2. ``compare`` on the same run with the three methods (windows scored every
   ``--sweep-stride`` scans): the run's reads from disk and maskings, in all and per method,
   and the share of each method's time spent masking (resampling, smoothing, cleaning).

Run from the repository root::

    python -m benchmarks.one_pass            # 4 mm MNI grid, 300 scans, 64 maps
    python -m benchmarks.one_pass --quick    # 8 mm, 80 scans, 8 maps: a smoke run
"""

import argparse
import hashlib
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from nilearn_stca.datasets import simulate_dynamic_rsfmri

from ._common import default_threads, fill_size_defaults, header, in_child, paper_mask_img


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.one_pass", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="8 mm grid, 80 scans, 8 maps")
    parser.add_argument("--resolution", type=int, help="grid (mm), default 4")
    parser.add_argument("--n-scans", type=int, help="scans in the run, default 300")
    parser.add_argument("--n-components", type=int, help="STCA's maps, default 64")
    parser.add_argument("--sweep-stride", type=int, help="compare's scored windows, default 20")
    parser.add_argument("--seed", type=int, default=0)
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"resolution": 8, "n_scans": 80, "n_components": 8, "sweep_stride": 20},
        full={"resolution": 4, "n_scans": 300, "n_components": 64, "sweep_stride": 20},
    )


class Counters:
    """Counts, in this process, the run's reads from disk, its maskings and STCA's windows.

    ``masking_seconds`` adds up the time spent in nilearn's ``filter_and_mask``.
    """

    def __init__(self):
        import nilearn._utils.niimg as niimg
        import nilearn.maskers.multi_nifti_masker as multi_masker
        import nilearn.maskers.nifti_masker as masker

        import nilearn_stca.stca.decomposition as decomposition

        self.reads = self.maskings = self.windows = 0
        self.masking_seconds = 0.0

        def count(name, function):
            def counted(*args, **kwargs):
                setattr(self, name, getattr(self, name) + 1)
                return function(*args, **kwargs)

            return counted

        def timed(function):
            def timed_call(*args, **kwargs):
                tic = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.masking_seconds += time.perf_counter() - tic

            return timed_call

        load = niimg.load
        niimg.load = lambda path, *a, **k: (
            count("reads", load)(path, *a, **k) if str(path).endswith(".nii") else load(path)
        )
        masker.filter_and_mask = timed(count("maskings", masker.filter_and_mask))
        multi_masker.filter_and_mask = timed(count("maskings", multi_masker.filter_and_mask))
        logits = decomposition.iter_attention_logits

        def counted_logits(*args, **kwargs):
            for item in logits(*args, **kwargs):
                self.windows += 1
                yield item

        decomposition.iter_attention_logits = counted_logits

    def snapshot(self):
        return {
            "reads": self.reads,
            "maskings": self.maskings,
            "windows": self.windows,
            "masking_seconds": self.masking_seconds,
        }


def stca_path(path, func_file, mask_img, args):
    """Child process: STCA by one path; its time, counts and the digests of its maps."""
    from nilearn_stca import STCADecomposition

    default_threads()
    counters = Counters()
    estimator = STCADecomposition(
        n_components=args.n_components, mask=mask_img, device="cpu", random_state=args.seed
    )
    windows = hashlib.sha256()
    tic = time.perf_counter()
    if path == "two passes":
        estimator.fit(func_file)
        maps = estimator.iter_window_maps(func_file)
    else:
        maps = estimator.fit_iter_window_maps(func_file)
    for _, window_maps in maps:
        windows.update(window_maps.tobytes())
    seconds = time.perf_counter() - tic
    return {
        "seconds": seconds,
        **counters.snapshot(),
        "static": hashlib.sha256(estimator.components_.tobytes()).hexdigest(),
        "window_maps": windows.hexdigest(),
    }


def compare_counts(func_file, mask_img, sim, args):
    """Child process: compare's reads and maskings of the run, in all and per method."""
    import nilearn_stca.evaluation.comparison as comparison

    default_threads()
    counters = Counters()
    per_method = {}
    run_cell = comparison._run_cell

    def counted_cell(plan, subject, method, *rest):
        before, tic = counters.snapshot(), time.perf_counter()
        rows = run_cell(plan, subject, method, *rest)
        after = counters.snapshot()
        per_method[method] = {key: after[key] - before[key] for key in after}
        per_method[method]["seconds"] = time.perf_counter() - tic
        return rows

    comparison._run_cell = counted_cell
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comparison.compare(
            [func_file],
            templates=sim.maps_img,
            template_threshold=0.5,
            mask_img=mask_img,
            sweep_stride=args.sweep_stride,
            method_params={"stca": {"n_components": args.n_components}, "ica": {"n_init": 2}},
            verbose=0,
        )
    return {"total": counters.snapshot(), "per_method": per_method}


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    mask_img = paper_mask_img(args.resolution)
    sim = simulate_dynamic_rsfmri(n_scans=args.n_scans, mask_img=mask_img, random_state=0)
    print(header(n_threads, sim.description), flush=True)
    work_dir = Path(tempfile.mkdtemp(prefix="one_pass_"))
    try:
        func_file = work_dir / "func.nii"
        sim.func[0].to_filename(func_file)
        sim.func = None  # the children read the run from disk
        rows = {
            path: in_child(stca_path, path, func_file, mask_img, args)
            for path in ("two passes", "one pass")
        }
        counts = in_child(compare_counts, func_file, mask_img, sim, args)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    two, one = rows["two passes"], rows["one pass"]
    print(f"\nSTCA, {args.n_components} maps, windows of 40 scans at stride 1:\n")
    print("| path | seconds | windows mapped | reads of the run | maskings of the run |")
    print("|---|---:|---:|---:|---:|")
    for path, row in rows.items():
        print(
            f"| {path} | {row['seconds']:.1f} | {row['windows']} | {row['reads']} | "
            f"{row['maskings']} |"
        )
    same = two["static"] == one["static"] and two["window_maps"] == one["window_maps"]
    print(
        f"\ntwo passes / one pass: {two['seconds'] / one['seconds']:.2f}x; the same static "
        f"and window maps: {same}"
    )
    print(f"\ncompare, one subject, three methods, windows every {args.sweep_stride} scans:\n")
    print(
        "| | reads of the run | maskings of the run | STCA windows mapped | seconds | of "
        "which masking | masking share |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method, row in counts["per_method"].items():
        print(
            f"| {method} | {row['reads']} | {row['maskings']} | {row['windows']} | "
            f"{row['seconds']:.1f} | {row['masking_seconds']:.1f} | "
            f"{row['masking_seconds'] / row['seconds']:.1%} |"
        )
    total = counts["total"]
    print(
        f"| all (with compare's checks) | {total['reads']} | {total['maskings']} | "
        f"{total['windows']} |"
    )
    return rows, counts


if __name__ == "__main__":
    main()
