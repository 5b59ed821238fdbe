"""What the benchmarks share: threads, peak memory, child processes, the paper's grid."""

import os
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context

import numpy as np
from joblib.externals.loky import get_reusable_executor
from nilearn.datasets import load_mni152_brain_mask
from nilearn.image import resample_img
from threadpoolctl import threadpool_limits

#: Field of view of the paper's 4 mm grid (49 x 58 x 47 voxels), in mm, and its origin.
PAPER_FOV_MM = (196, 232, 188)
PAPER_ORIGIN_MM = (-96, -132, -78)


def fill_size_defaults(args, quick, full):
    """Give the options left unset their ``--quick`` value, or else their full-size one.

    ``quick`` and ``full`` map option names (as in ``args``) to values.
    """
    for name, full_value in full.items():
        if getattr(args, name) is None:
            setattr(args, name, quick[name] if args.quick else full_value)
    return args


def default_threads():
    """Give torch and the BLAS / OpenMP pools the machine's number of cores."""
    n_cores = os.cpu_count() or 1
    threadpool_limits(limits=n_cores)
    try:
        import torch
    except ImportError:
        return n_cores
    torch.set_num_threads(n_cores)
    return n_cores


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def reset_window_peak():
    """Restart Linux's peak-RSS counter (VmHWM), so that it measures what follows alone.

    A process's ``ru_maxrss`` cannot be reset, and importing torch and nilearn can peak
    higher than the work on a small grid. Returns False where /proc does not allow it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def window_peak_mib():
    """VmHWM, the peak RSS since :func:`reset_window_peak`, in MiB (None if unavailable)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    return None


def _call_then_release_workers(function, *args):
    try:
        return function(*args)
    finally:
        # joblib keeps its worker processes for reuse; a process exits only once its
        # children have, so they would hold the child (n_jobs > 1) until their idle timeout.
        get_reusable_executor().shutdown(wait=True)


def in_child(function, *args):
    """``function(*args)`` in a fresh (spawned) process, so that its peak memory is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as executor:
        return executor.submit(_call_then_release_workers, function, *args).result()


def paper_mask_img(resolution=4):
    """nilearn's MNI152 brain mask on the paper's field of view, at ``resolution`` mm.

    At 4 mm this is the 49 x 58 x 47 grid of the paper's HCP data.
    """
    affine = np.diag([resolution] * 3 + [1.0]).astype(float)
    affine[:3, 3] = PAPER_ORIGIN_MM
    shape = tuple(int(np.ceil(fov / resolution)) for fov in PAPER_FOV_MM)
    return resample_img(
        load_mni152_brain_mask(resolution=2),
        target_affine=affine,
        target_shape=shape,
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )


def header(n_threads, description=""):
    """First line of a benchmark's output: when, where, and with what."""
    import torch

    line = (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{n_threads} threads, torch {torch.__version__}"
    )
    return f"{line}; {description}" if description else line


def mib(value):
    """A MiB count for a table, '-' where it could not be measured."""
    return "-" if value is None else f"{value:.0f}"


def stca_fitted_briefly(func_file, mask_img, n_components, window_length=40):
    """STCA fitted on the first ``window_length + 1`` scans (two training steps): for the
    memory benchmarks, where what the weights learned does not matter."""
    import warnings

    from nilearn.image import index_img

    from nilearn_stca import STCADecomposition

    estimator = STCADecomposition(
        n_components=n_components,
        window_length=window_length,
        mask=mask_img,
        device="cpu",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(index_img(func_file, slice(0, window_length + 1)))
