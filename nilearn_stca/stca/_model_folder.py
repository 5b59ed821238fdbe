"""A fitted STCA model as a folder that loads without running code.

``estimator.json`` holds the format and its version, the package version, the estimator's
parameters, the fitted masker's class and parameters, the network's configuration, the
loss curve, and the SHA-256 of every other file; ``weights.pt`` the network's CPU weights
(read with ``torch.load(weights_only=True)``, which unpickles tensors and containers only);
``mask.nii.gz`` the fitted mask and ``components.nii.gz`` the static maps. Nothing in the
folder is a pickle, so a folder from elsewhere can be loaded without trusting its author
to run code on this machine.
"""

import hashlib
import json
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from nilearn import maskers
from nilearn.masking import apply_mask

from .. import __version__
from .._io import atomic_path

MODEL_FORMAT = "nilearn-stca-model"
#: Version of the folder layout; :func:`read_model_folder` refuses newer ones.
MODEL_FORMAT_VERSION = 1
MANIFEST = "estimator.json"
_DATA_FILES = ("weights.pt", "mask.nii.gz", "components.nii.gz")
#: Maskers that may be rebuilt from a folder (those ``STCADecomposition`` accepts).
_MASKERS = ("MultiNiftiMasker", "NiftiMasker")
#: Parameters that hold objects (a mask image or masker, a joblib Memory, a RandomState):
#: the folder stores what rebuilds them, or None.
_OBJECT_PARAMS = ("mask", "memory", "random_state")


class ModelFolderError(ValueError):
    """A model folder that is not one, is damaged, or was written by a newer release."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_json(value, name):
    """``value`` as JSON (arrays as nested lists, tuples as lists) or a ValueError naming it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist()}
    if isinstance(value, (list, tuple)):
        return [_to_json(item, name) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"dict": {key: _to_json(item, name) for key, item in value.items()}}
    raise ValueError(
        f"{name}={value!r} cannot be written to a model folder (JSON): give it a plain "
        "value, or save with format='pickle'."
    )


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, dict) and set(value) == {"ndarray"}:
        return np.asarray(value["ndarray"])
    if isinstance(value, dict) and set(value) == {"dict"}:
        return {key: _from_json(item) for key, item in value["dict"].items()}
    return value


def _object_param(name, value):
    """What the folder stores for a parameter that may hold an object."""
    if name == "mask":
        return None  # the fitted mask is mask.nii.gz, the masker's settings are stored apart
    if name == "memory":
        return value if isinstance(value, (str, type(None))) else None
    if name == "random_state":
        return value if isinstance(value, (int, np.integer, type(None))) else None
    return value


def write_model_folder(estimator, path):
    """Write a fitted ``STCADecomposition`` to the folder ``path`` (see the module's doc).

    The folder is written beside ``path`` and renamed onto it once complete. An existing
    model folder at ``path`` is replaced; anything else there is refused.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and (path / MANIFEST).is_file()):
        raise ValueError(
            f"{path} exists and is not a model folder: give a new path for the model "
            "(nothing else is overwritten)."
        )
    masker = estimator.masker_
    masker_params = {
        key: value
        for key, value in masker.get_params().items()
        if key not in ("mask_img", "memory")
    }
    manifest = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "package_version": __version__,
        "class": type(estimator).__name__,
        "params": {
            name: _to_json(_object_param(name, value) if name in _OBJECT_PARAMS else value, name)
            for name, value in estimator.get_params(deep=False).items()
        },
        "masker": {
            "class": type(masker).__name__,
            "params": {k: _to_json(v, f"masker parameter {k}") for k, v in masker_params.items()},
        },
        "network_config": _to_json(dict(estimator.network_.config), "network configuration"),
        "loss_curve": [float(loss) for loss in estimator.loss_curve_],
    }
    with atomic_path(path, replace_folder=True) as staging:
        staging.mkdir()
        weights = {k: v.detach().cpu() for k, v in estimator.network_.state_dict().items()}
        torch.save(weights, staging / "weights.pt")
        nib.save(estimator.mask_img_, staging / "mask.nii.gz")
        nib.save(estimator.components_img_, staging / "components.nii.gz")
        manifest["sha256"] = {name: _sha256(staging / name) for name in _DATA_FILES}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return path


def read_model_folder(path, cls):
    """The estimator of class ``cls`` stored in the model folder ``path``.

    Raises :class:`ModelFolderError` (one line naming the problem) if the folder is not a
    model folder, was written by a newer format, is for another class, or if a file is
    missing, truncated or changed since it was written.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    if manifest.get("class") != cls.__name__:
        raise ModelFolderError(
            f"{path} holds a {manifest.get('class')}, not a {cls.__name__}: load it with "
            f"{manifest.get('class')}.load."
        )
    recorded = manifest.get("sha256")
    if not isinstance(recorded, dict):
        raise ModelFolderError(f"{path}/{MANIFEST} has no checksums: the folder is damaged.")
    for name in _DATA_FILES:
        if not (path / name).is_file():
            raise ModelFolderError(f"{path} lacks {name}: the folder is incomplete.")
        if _sha256(path / name) != recorded.get(name):
            raise ModelFolderError(
                f"{path}/{name} does not match the checksum in {MANIFEST}: the file was "
                "truncated or changed after it was written. Save the model again."
            )
    try:
        return _build(path, manifest, cls)
    except (KeyError, TypeError, ValueError, RuntimeError, pickle.UnpicklingError) as error:
        raise ModelFolderError(f"{path} cannot be read as a model: {error}") from error


def _read_manifest(path):
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise ModelFolderError(f"{path} is not a model folder: it has no {MANIFEST}.")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFolderError(
            f"{manifest_file} is not valid JSON ({error}): the folder is damaged."
        ) from error
    if not isinstance(manifest, dict) or manifest.get("format") != MODEL_FORMAT:
        raise ModelFolderError(f"{path} is not a nilearn-stca model folder.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise ModelFolderError(
            f"{path} has model format version {version!r}; this release reads versions up to "
            f"{MODEL_FORMAT_VERSION}: upgrade nilearn-stca to load it."
        )
    return manifest


def _build(path, manifest, cls):
    from ._grid import BrainBox
    from .network import SPATIAL_MULTIPLE, STCANetwork

    mask_img = nib.load(path / "mask.nii.gz")
    mask_img = nib.Nifti1Image(np.asanyarray(mask_img.dataobj), mask_img.affine, mask_img.header)
    masker_spec = manifest["masker"]
    if masker_spec["class"] not in _MASKERS:
        raise ValueError(f"unknown masker class {masker_spec['class']!r}")
    masker_params = {k: _from_json(v) for k, v in masker_spec["params"].items()}
    masker = getattr(maskers, masker_spec["class"])(mask_img=mask_img, **masker_params).fit()

    params = {k: _from_json(v) for k, v in manifest["params"].items()}
    params["mask"] = mask_img
    if "autoencoder_widths" in params:
        params["autoencoder_widths"] = tuple(params["autoencoder_widths"])
    estimator = cls(**params)

    config = _from_json(manifest["network_config"])
    config["autoencoder_widths"] = tuple(config["autoencoder_widths"])
    network = STCANetwork(**config)
    weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    network.load_state_dict(weights)

    components_img = nib.load(path / "components.nii.gz")
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
