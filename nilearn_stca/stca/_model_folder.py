"""A fitted STCA model as a folder that loads without running code.

``estimator.json`` holds the format and its version, the package version, the estimator's
parameters, the fitted masker's class and parameters, the network's configuration, the
loss curve, and the SHA-256 of every other file; ``weights.pt`` the network's CPU weights
(read with ``torch.load(weights_only=True)``, which unpickles tensors and containers only);
``mask.nii.gz`` the fitted mask and ``components.nii.gz`` the static maps. Nothing in the
folder is a pickle, so a folder from elsewhere can be loaded without trusting its author
to run code on this machine: its parameters are checked as ``fit`` checks them, its files
against each other (the manifest: :mod:`~nilearn_stca.stca._model_manifest`), and it never
chooses where this machine writes.
"""

import io
import json
import os
import pickle
import warnings
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from nilearn import maskers
from nilearn.masking import apply_mask

from .._utils.io import atomic_path, carry_over, file_sha256, path_kind
from ._model_manifest import (
    DATA_FILES,
    EDITED,
    MANIFEST,
    MODEL_FILES,
    ModelFolderError,
    NewerFormatError,
    check_network_config,
    check_weights,
    from_json,
    manifest_of,
    paper_block,
    read_manifest,
)

__all__ = [
    "MANIFEST",
    "MODEL_FILES",
    "ModelFolderError",
    "check_parent_folder",
    "never_replaced",
    "read_model_folder",
    "reported_as",
    "write_model_folder",
]

#: Maskers that may be rebuilt from a folder (those ``STCADecomposition`` accepts).
_MASKERS = ("MultiNiftiMasker", "NiftiMasker")
#: Parameters that name a place on the loading machine (joblib's cache folder, whose files
#: are pickles): a folder from elsewhere must not choose where this machine writes, so they
#: are reset to None on load, with a warning.
_LOCAL_PATH_PARAMS = ("memory",)


def never_replaced(kind):
    """Why a save refuses a path that is a ``kind`` (see :func:`~.._utils.io.path_kind`)."""
    through = ", nor writes through one" if kind == "symbolic link" else ""
    return f"a save never replaces a {kind}{through}"


def check_parent_folder(path):
    """Refuse a ``path`` whose folder does not exist (a save creates no folders above it)."""
    if not path.parent.is_dir():
        raise ValueError(
            f"{path.parent} is not an existing folder: create it first, or give another "
            f"path to save the model to."
        )


@contextmanager
def reported_as(path):
    """Re-raise a system error (a full disk...) of a save as one error that names ``path``.

    The error itself would name the temporary file or folder beside ``path``, or, from
    torch's writer, say only "unexpected pos".
    """
    try:
        yield
    except OSError as error:
        if error.errno is None:
            raise
        raise OSError(
            error.errno,
            f"{error.strerror or error}: the model was not saved, and what was at this path "
            "is as it was",
            str(path),
        ) from error


def write_model_folder(estimator, path):
    """Write a fitted ``STCADecomposition`` to the folder ``path`` (see the module's doc).

    ``path`` may be new, an empty folder, or a model folder: the model's files
    (:data:`MODEL_FILES`) are replaced and every other file or folder in it is kept. Anything
    else (a folder with other files, a file, a symbolic link) is refused. The model is
    written beside ``path``, with the kept entries hard-linked (or copied) into it, and
    renamed onto ``path`` once complete, so that a failed or interrupted save leaves what
    was there as it was.
    """
    path = Path(path)
    kept = _entries_to_keep(path)
    manifest = manifest_of(estimator)
    with reported_as(path), atomic_path(path, replace_folder=True) as staging:
        staging.mkdir()
        _write_model_files(estimator, manifest, staging)
        carry_over(path, staging, kept)
    return path


def _entries_to_keep(path):
    """The user's entries of the model folder at ``path`` (none if absent or empty).

    Refuses a ``path`` that is not a folder, or a non-empty folder that is not a model
    folder this release may replace.
    """
    kind = path_kind(path)
    if kind is None:
        check_parent_folder(path)
        return []
    if kind != "folder":
        raise ValueError(
            f"{path} is a {kind}, not a folder: save the model to a new path or a folder "
            f"({never_replaced(kind)})."
        )
    entries = sorted(os.listdir(path))
    if not entries:
        return []
    try:
        read_manifest(path)
    except NewerFormatError as error:
        raise ModelFolderError(
            f"{path} holds a model written by a newer release of nilearn-stca: save to "
            "another path, or upgrade nilearn-stca to replace it."
        ) from error
    except ModelFolderError as error:
        raise ValueError(
            f"{path} exists and is not a model folder (it has no nilearn-stca {MANIFEST}), "
            "and it is not empty: give a new or empty folder for the model (nothing in it "
            "is overwritten)."
        ) from error
    return [name for name in entries if name not in MODEL_FILES]


def _write_model_files(estimator, manifest, folder):
    weights = {k: v.detach().cpu() for k, v in estimator.network_.state_dict().items()}
    # Serialised in memory, written by Python: torch's own writer reports a full disk as
    # "unexpected pos", without the system's error.
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    (folder / "weights.pt").write_bytes(buffer.getvalue())
    nib.save(estimator.mask_img_, folder / "mask.nii.gz")
    nib.save(estimator.components_img_, folder / "components.nii.gz")
    manifest = {**manifest, "sha256": {name: file_sha256(folder / name) for name in DATA_FILES}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def read_model_folder(path, cls):
    """The estimator of class ``cls`` stored in the model folder ``path``.

    Raises :class:`ModelFolderError` (one line naming the file and the problem) if the
    folder is not a model folder, was written by a newer format, is for another class, if a
    file is missing, truncated or changed since it was written, if a parameter is one that
    ``fit`` refuses, or if the parameters, the network's configuration, its weights and the
    maps do not agree. A ``memory`` (a joblib cache folder) it sets is reset to None, with
    a warning: the folder does not choose where this machine writes.
    """
    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("class") != cls.__name__:
        raise ModelFolderError(
            f"{path} holds a {manifest.get('class')}, not a {cls.__name__}: load it with "
            f"{manifest.get('class')}.load."
        )
    recorded = manifest.get("sha256")
    if not isinstance(recorded, dict):
        raise ModelFolderError(f"{path}/{MANIFEST} has no checksums: the folder is damaged.")
    for name in DATA_FILES:
        if not (path / name).is_file():
            raise ModelFolderError(f"{path} lacks {name}: the folder is incomplete.")
        if file_sha256(path / name) != recorded.get(name):
            raise ModelFolderError(
                f"{path}/{name} does not match the checksum in {MANIFEST}: the file was "
                "truncated or changed after it was written. Save the model again."
            )
    try:
        return _build(path, manifest, cls)
    except ModelFolderError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, pickle.UnpicklingError) as error:
        raise ModelFolderError(f"{path} cannot be read as a model: {error}") from error


def _build(path, manifest, cls):
    from ._grid import BrainBox
    from .network import SPATIAL_MULTIPLE

    manifest_file = path / MANIFEST
    mask_img = nib.load(path / "mask.nii.gz")
    mask_img = nib.Nifti1Image(np.asanyarray(mask_img.dataobj), mask_img.affine, mask_img.header)
    estimator = _build_estimator(manifest, mask_img, cls, manifest_file)
    masker = _build_masker(manifest, mask_img, manifest_file)
    network = _build_network(path, manifest, estimator)
    components_img = _read_components(path, estimator)

    estimator.masker_ = masker
    estimator.mask_img_ = masker.mask_img_
    estimator._box = BrainBox(np.asanyarray(masker.mask_img_.dataobj) > 0, SPATIAL_MULTIPLE)
    estimator.network_ = network.eval()
    estimator.loss_curve_ = [float(loss) for loss in manifest["loss_curve"]]
    estimator.n_steps_ = len(estimator.loss_curve_)
    estimator.components_ = apply_mask(components_img, masker.mask_img_).astype(np.float32)
    estimator.components_img_ = masker.inverse_transform(estimator.components_)
    estimator._fit_maps_masker()
    return estimator


def _build_masker(manifest, mask_img, manifest_file):
    masker_spec = manifest["masker"]
    if masker_spec["class"] not in _MASKERS:
        raise ValueError(f"unknown masker class {masker_spec['class']!r}")
    masker_params = {k: from_json(v) for k, v in masker_spec["params"].items()}
    _reset_local_paths(masker_params, "masker parameter ", manifest_file)
    return getattr(maskers, masker_spec["class"])(mask_img=mask_img, **masker_params).fit()


def _build_estimator(manifest, mask_img, cls, manifest_file):
    params = {k: from_json(v) for k, v in manifest["params"].items()}
    if "decoder" in params:
        # Written before the levers on the paper's block existed: its network had none.
        params = {**paper_block(), **params}
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ModelFolderError(
            f"{manifest_file} sets {unknown[0]}, which is not a parameter of {cls.__name__}: "
            "the file was edited, or a newer release wrote it (upgrade nilearn-stca)."
        )
    _reset_local_paths(params, "", manifest_file)
    params["mask"] = mask_img
    if isinstance(params.get("autoencoder_widths"), list):
        params["autoencoder_widths"] = tuple(params["autoencoder_widths"])
    estimator = cls(**params)
    _check_fit_params(estimator, manifest_file)
    return estimator


def _reset_local_paths(params, prefix, manifest_file):
    """Reset to None, with a warning, the parameters that name a place on this machine."""
    for name in _LOCAL_PATH_PARAMS:
        if params.get(name) is not None:
            warnings.warn(
                f"{manifest_file} sets {prefix}{name}={params[name]!r}, ignored: a model folder "
                f"does not choose where this machine writes (joblib's cache files are "
                f"pickles), so {name} is None; set it with set_params({name}=...) to cache.",
                UserWarning,
                stacklevel=6,
            )
            params[name] = None


def _check_fit_params(estimator, manifest_file):
    """Refuse, naming the file, a parameter that ``fit`` refuses (``fit``'s own checks)."""
    device = estimator.device
    if _device_missing_here(device):
        # The model loads on CPU; a device this machine lacks concerns a new fit, which
        # refuses it then.
        estimator.device = "cpu"
    try:
        estimator._check_params()
    except (TypeError, ValueError) as error:
        raise ModelFolderError(
            f"{manifest_file} holds a parameter that fit refuses: {error}"
        ) from error
    finally:
        estimator.device = device


def _device_missing_here(device):
    """Whether ``device`` names a CUDA or MPS device that this machine does not have."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        return False  # "auto", or not a device: the estimator's checks decide
    if kind == "cuda":
        return not torch.cuda.is_available()
    return kind == "mps" and not torch.backends.mps.is_available()


def _build_network(path, manifest, estimator):
    """The network of ``network_config`` with the weights of ``weights.pt``, both checked
    against the estimator's parameters."""
    from .network import STCANetwork

    manifest_file = path / MANIFEST
    config = from_json(manifest["network_config"])
    if isinstance(config, dict):
        config = {**paper_block(), **config}
    check_network_config(config, estimator, manifest_file)
    network = STCANetwork(**config)
    weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    check_weights(weights, network, path / "weights.pt", manifest_file)
    network.load_state_dict(weights)
    return network


def _read_components(path, estimator):
    components_file = path / "components.nii.gz"
    components_img = nib.load(components_file)
    n_maps = components_img.shape[3] if len(components_img.shape) == 4 else 1
    if n_maps != estimator.n_components:
        raise ModelFolderError(
            f"{components_file} holds {n_maps} maps but {path / MANIFEST} gives "
            f"n_components={estimator.n_components!r}. {EDITED}"
        )
    return components_img
