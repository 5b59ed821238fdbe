"""A fitted STCA model as a folder that loads without running code.

``estimator.json`` holds the format and its version, the package version, the estimator's
parameters, the fitted masker's class and parameters, the network's configuration, the
loss curve, and the SHA-256 of every other file; ``weights.pt`` the network's CPU weights
(read with ``torch.load(weights_only=True)``, which unpickles tensors and containers only);
``mask.nii.gz`` the fitted mask and ``components.nii.gz`` the static maps. Nothing in the
folder is a pickle, so a folder from elsewhere can be loaded without trusting its author
to run code on this machine: its parameters are checked as ``fit`` checks them, its files
against each other, and it never chooses where this machine writes.
"""

import errno
import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import warnings
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from nilearn import maskers
from nilearn.masking import apply_mask

from .. import __version__
from .._utils.io import atomic_path

MODEL_FORMAT = "nilearn-stca-model"
#: Version of the folder layout; :func:`read_model_folder` refuses newer ones.
MODEL_FORMAT_VERSION = 1
MANIFEST = "estimator.json"
_DATA_FILES = ("weights.pt", "mask.nii.gz", "components.nii.gz")
#: The files of a model folder (those its manifest lists, and the manifest): saving again
#: replaces these and keeps everything else in the folder.
MODEL_FILES = (MANIFEST, *_DATA_FILES)
#: Maskers that may be rebuilt from a folder (those ``STCADecomposition`` accepts).
_MASKERS = ("MultiNiftiMasker", "NiftiMasker")
#: Parameters that hold objects (a mask image or masker, a joblib Memory, a RandomState):
#: the folder stores what rebuilds them, or None.
_OBJECT_PARAMS = ("mask", "memory", "random_state")
#: Parameters that name a place on the loading machine (joblib's cache folder, whose files
#: are pickles): a folder from elsewhere must not choose where this machine writes, so they
#: are reset to None on load, with a warning.
_LOCAL_PATH_PARAMS = ("memory",)
#: The estimator's parameters that the network is built from (its ``config``).
_NETWORK_PARAMS = (
    "window_length",
    "n_components",
    "autoencoder_widths",
    "decoder",
    "channel_pooling",
    "coordinate_channels",
    "map_activation",
    "refine_steps",
    "refine_sparsity",
)
#: The end of every refusal of files that disagree: the checksums of the data files held,
#: so the manifest was edited.
EDITED = f"{MANIFEST} was edited after saving: save the model again."


class ModelFolderError(ValueError):
    """A model folder that is not one, is damaged, or was written by a newer release."""


class _NewerFormatError(ModelFolderError):
    """A model folder in a format version newer than this release's."""


def path_kind(path):
    """What is at ``path``, not following a final symbolic link: None where nothing is.

    One of "file", "folder", "symbolic link", "device", "named pipe", "socket".
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    kinds = [
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
        (stat.S_ISFIFO, "named pipe"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "socket")


def never_replaced(kind):
    """Why a save refuses a path that is a ``kind`` (see :func:`path_kind`)."""
    through = ", nor writes through one" if kind == "symbolic link" else ""
    return f"a save never replaces a {kind}{through}"


def check_parent_folder(path):
    """Refuse a ``path`` whose folder does not exist (a save creates no folders above it)."""
    if not path.parent.is_dir():
        raise ValueError(
            f"{path.parent} is not an existing folder: create it first, or give another "
            f"path to save the model to."
        )


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
    manifest = _manifest(estimator)
    with reported_as(path), atomic_path(path, replace_folder=True) as staging:
        staging.mkdir()
        _write_model_files(estimator, manifest, staging)
        _carry_over(path, staging, kept)
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
        _read_manifest(path)
    except _NewerFormatError as error:
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


def _manifest(estimator):
    """The manifest of ``estimator``, without the checksums of its files."""
    masker = estimator.masker_
    masker_params = {
        key: value
        for key, value in masker.get_params().items()
        if key not in ("mask_img", "memory")
    }
    return {
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


def _write_model_files(estimator, manifest, folder):
    weights = {k: v.detach().cpu() for k, v in estimator.network_.state_dict().items()}
    # Serialised in memory, written by Python: torch's own writer reports a full disk as
    # "unexpected pos", without the system's error.
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    (folder / "weights.pt").write_bytes(buffer.getvalue())
    nib.save(estimator.mask_img_, folder / "mask.nii.gz")
    nib.save(estimator.components_img_, folder / "components.nii.gz")
    manifest = {**manifest, "sha256": {name: _sha256(folder / name) for name in _DATA_FILES}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _carry_over(old, new, names):
    """Put the entries ``names`` of the folder ``old`` into ``new``, leaving ``old`` whole.

    Files are hard-linked (the same file under two names, so nothing is copied and the
    user's file is untouched), or copied where the file system has no hard links; folders
    are made anew with their files linked; symbolic links are made anew.
    """
    for name in names:
        source, target = old / name, new / name
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        elif source.is_dir():
            shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(source, target)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise
        shutil.copy2(source, target)


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
    except ModelFolderError:
        raise
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
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFolderError(
            f"{path}/{MANIFEST} has no valid format_version ({version!r}): the folder is damaged."
        )
    if version > MODEL_FORMAT_VERSION:
        raise _NewerFormatError(
            f"{path} has model format version {version!r}; this release reads versions up to "
            f"{MODEL_FORMAT_VERSION}: upgrade nilearn-stca to load it."
        )
    return manifest


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
    masker_params = {k: _from_json(v) for k, v in masker_spec["params"].items()}
    _reset_local_paths(masker_params, "masker parameter ", manifest_file)
    return getattr(maskers, masker_spec["class"])(mask_img=mask_img, **masker_params).fit()


def _build_estimator(manifest, mask_img, cls, manifest_file):
    params = {k: _from_json(v) for k, v in manifest["params"].items()}
    if "decoder" in params:
        # Written before the levers on the paper's block existed: its network had none.
        params = {**_paper_block(), **params}
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
    config = _from_json(manifest["network_config"])
    if isinstance(config, dict):
        config = {**_paper_block(), **config}
    _check_network_config(config, estimator, manifest_file)
    network = STCANetwork(**config)
    weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    _check_weights(weights, network, path / "weights.pt", manifest_file)
    network.load_state_dict(weights)
    return network


def _check_network_config(config, estimator, manifest_file):
    """Refuse a ``network_config`` that is not the one the estimator's parameters give."""
    if not isinstance(config, dict):
        raise ModelFolderError(
            f"{manifest_file}: network_config is not a mapping of the network's settings. {EDITED}"
        )
    missing = [name for name in _NETWORK_PARAMS if name not in config]
    unknown = sorted(set(config) - set(_NETWORK_PARAMS))
    if missing or unknown:
        what = f"lacks {missing[0]}" if missing else f"has {unknown[0]}, which no network takes"
        raise ModelFolderError(f"{manifest_file}: network_config {what}. {EDITED}")
    for name in _NETWORK_PARAMS:
        in_network, in_params = config[name], getattr(estimator, name)
        if name == "autoencoder_widths":
            in_network, in_params = _as_tuple(in_network), _as_tuple(in_params)
        if in_network != in_params:
            raise ModelFolderError(
                f"{manifest_file} gives {name}={in_params!r} but its network_config, like "
                f"weights.pt, has {name}={in_network!r}. {EDITED}"
            )


def _paper_block():
    """The block's lever settings of a model saved before they existed."""
    from .network import PAPER_BLOCK

    return dict(PAPER_BLOCK)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _check_weights(weights, network, weights_file, manifest_file):
    """Refuse, in one line, weights that are not those of ``network`` (name and shape)."""
    if not isinstance(weights, dict) or not all(
        isinstance(value, torch.Tensor) for value in weights.values()
    ):
        raise ModelFolderError(f"{weights_file} does not hold a network's weights.")
    expected = {name: tuple(value.shape) for name, value in network.state_dict().items()}
    problems = [f"{name} is missing" for name in expected if name not in weights]
    problems += [
        f"it has {name}, which the network lacks" for name in weights if name not in expected
    ]
    problems += [
        f"{name} has shape {tuple(weights[name].shape)}, the network's is {shape}"
        for name, shape in expected.items()
        if name in weights and tuple(weights[name].shape) != shape
    ]
    if problems:
        raise ModelFolderError(
            f"{weights_file} does not fit the network {manifest_file} describes "
            f"({_describe(network.config)}): {problems[0]}. {EDITED}"
        )


def _describe(config):
    return ", ".join(f"{name}={value!r}" for name, value in config.items())


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
