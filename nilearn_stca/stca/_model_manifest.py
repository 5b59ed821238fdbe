"""The manifest of a model folder, ``estimator.json``: written from an estimator, read back
and checked against the folder's other files.

It holds the format and its version, the package version, the estimator's parameters (as
JSON, :func:`to_json`), the fitted masker's class and parameters, the network's
configuration, the loss curve, and the SHA-256 of every other file. Reading refuses a
manifest that is not one, or is of a newer format (:func:`read_manifest`); the network's
configuration and weights are checked against the parameters (:func:`check_network_config`,
:func:`check_weights`).
"""

import json

import numpy as np
import torch

from .. import __version__

MODEL_FORMAT = "nilearn-stca-model"
#: Version of the folder layout; :func:`read_manifest` refuses newer ones.
MODEL_FORMAT_VERSION = 1
MANIFEST = "estimator.json"
#: The files whose checksums the manifest holds.
DATA_FILES = ("weights.pt", "mask.nii.gz", "components.nii.gz")
#: The files of a model folder (those its manifest lists, and the manifest): saving again
#: replaces these and keeps everything else in the folder.
MODEL_FILES = (MANIFEST, *DATA_FILES)
#: Parameters that hold objects (a mask image or masker, a joblib Memory, a RandomState):
#: the folder stores what rebuilds them, or None.
_OBJECT_PARAMS = ("mask", "memory", "random_state")
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


class NewerFormatError(ModelFolderError):
    """A model folder in a format version newer than this release's."""


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


def from_json(value):
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if isinstance(value, dict) and set(value) == {"ndarray"}:
        return np.asarray(value["ndarray"])
    if isinstance(value, dict) and set(value) == {"dict"}:
        return {key: from_json(item) for key, item in value["dict"].items()}
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


def manifest_of(estimator):
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


def read_manifest(path):
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
        raise NewerFormatError(
            f"{path} has model format version {version!r}; this release reads versions up to "
            f"{MODEL_FORMAT_VERSION}: upgrade nilearn-stca to load it."
        )
    return manifest


def check_network_config(config, estimator, manifest_file):
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


def paper_block():
    """The block's lever settings of a model saved before they existed."""
    from .network import PAPER_BLOCK

    return dict(PAPER_BLOCK)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def check_weights(weights, network, weights_file, manifest_file):
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
