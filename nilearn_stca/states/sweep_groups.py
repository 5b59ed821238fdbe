"""Window sweeps given by folder, labelled by subject, grouped by method and checked."""

import os
from pathlib import Path

import numpy as np

from ..methods import METHOD_REGISTRY
from ..windows.sweep import WindowSweep, check_method_name, load_window_sweep
from .kmeans import check_n_states

#: The method's name (``ica``, ``sdl``, ``stca``) of each estimator class a sweep records.
_METHOD_OF_CLASS = {method.estimator.split(":")[1]: key for key, method in METHOD_REGISTRY.items()}


def _method_of(sweep):
    """The method's name from the estimator class in sweep.json (the class name if unknown)."""
    name = sweep.metadata["method"]
    try:
        check_method_name(name)
    except ValueError as error:
        raise ValueError(f"{sweep.path / 'sweep.json'}: {error}.") from None
    return _METHOD_OF_CLASS.get(name, name)


def group_sweeps(sweeps):
    """``{method: {label: WindowSweep}}``, methods in the registry's order, then by name.

    ``sweeps`` is a dict ``{label: folder or WindowSweep}``, or a list of folders (or
    sweeps) labelled by folder name: by path below the common parent of a method's folders
    where two of its folders share a name.
    """
    if isinstance(sweeps, (str, Path, WindowSweep)):
        sweeps = [sweeps]
    labelled = isinstance(sweeps, dict)
    items = list(sweeps.items()) if labelled else [(None, sweep) for sweep in sweeps]
    if not items:
        raise ValueError("sweeps is empty: give at least one sweep folder.")
    opened = [
        (label, sweep if isinstance(sweep, WindowSweep) else load_window_sweep(sweep))
        for label, sweep in items
    ]
    resolved = [sweep.path.resolve() for _, sweep in opened]
    twice = sorted({str(path) for path in resolved if resolved.count(path) > 1})
    if twice:
        raise ValueError(f"sweeps: {twice} given more than once; give each sweep once.")
    groups = {}
    for (label, sweep), path in zip(opened, resolved, strict=True):
        groups.setdefault(_method_of(sweep), []).append((label, sweep, path))
    order = [m for m in METHOD_REGISTRY if m in groups]
    order += sorted(set(groups) - set(METHOD_REGISTRY))
    return {
        method: dict(
            zip(
                [str(label) for label, _, _ in groups[method]]
                if labelled
                else _labels([path for _, _, path in groups[method]]),
                [sweep for _, sweep, _ in groups[method]],
                strict=True,
            )
        )
        for method in order
    }


def _labels(paths):
    """Folder names; where two share a name, their paths below the folders' common parent."""
    names = [path.name for path in paths]
    if len(set(names)) == len(names):
        return names
    common = os.path.commonpath([path.parent for path in paths])
    return [path.relative_to(common).as_posix() for path in paths]


def check_one_mask(method, group):
    """``features="maps"`` needs every sweep of a method on the same voxels."""
    first_label, first = next(iter(group.items()))
    reference = first.masker.mask_img_
    for label, sweep in group.items():
        mask = sweep.masker.mask_img_
        same = (
            mask.shape == reference.shape
            and np.allclose(mask.affine, reference.affine)
            and np.array_equal(
                np.asanyarray(mask.dataobj) > 0, np.asanyarray(reference.dataobj) > 0
            )
        )
        if not same:
            raise ValueError(
                f"features='maps' needs every {method} sweep on one mask, but {label!r} has "
                f"another mask than {first_label!r}: write the sweeps with one mask, or use "
                "features='presence'."
            )


def check_one_window(method, group):
    """A method's windows are pooled across subjects: one window length and stride."""
    windows = {
        str(sweep.path): (sweep.metadata["window_length"], sweep.metadata["stride"])
        for sweep in group.values()
    }
    if len(set(windows.values())) > 1:
        listed = ", ".join(
            f"{path} (window_length {length}, stride {stride})"
            for path, (length, stride) in windows.items()
        )
        raise ValueError(
            f"The {method} sweeps have other window lengths or strides: {listed}. A method's "
            "windows are pooled across subjects, so write its sweeps with one window_length "
            "and stride (or give them to separate states runs)."
        )


def check_groups(groups, features, n_states):
    """Refuse, before any fit, grouped sweeps that the states of ``features`` cannot pool.

    Per method: one window length and stride, enough windows for ``n_states``, and for
    ``features="maps"`` one mask (checked here once, in full).
    """
    for method, group in groups.items():
        check_one_window(method, group)
        check_n_states(n_states, sum(len(sweep) for sweep in group.values()))
        if features == "maps":
            check_one_mask(method, group)
