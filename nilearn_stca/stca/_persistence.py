"""Saving estimators that hold a torch network: device-independent, written atomically.

A pickle (this module) or a model folder that loads without running code
(:mod:`nilearn_stca.stca._model_folder`).
"""

import errno
import pickle
from pathlib import Path

from sklearn.utils.validation import check_is_fitted

from .._utils.io import atomic_path, path_kind
from ._model_folder import (
    check_parent_folder,
    never_replaced,
    read_model_folder,
    reported_as,
    write_model_folder,
)
from .network import PAPER_BLOCK, STCANetwork


class NetworkPicklingMixin:
    """Pickle ``network_`` as its configuration and CPU weights; add ``save`` and ``load``.

    A model trained on a GPU therefore unpickles on a machine without one, always on CPU.
    """

    def __getstate__(self):
        state = self.__dict__.copy()
        network = state.pop("network_", None)
        if network is not None:
            state["_network_config"] = dict(network.config)
            state["_network_state"] = {
                key: value.detach().cpu() for key, value in network.state_dict().items()
            }
        return state

    def __setstate__(self, state):
        config = state.pop("_network_config", None)
        weights = state.pop("_network_state", None)
        if "decoder" in state:
            # Pickled before the levers on the paper's block existed: its network had none.
            state = {**PAPER_BLOCK, **state}
        self.__dict__.update(state)
        if config is not None:
            network = STCANetwork(**config)
            network.load_state_dict(weights)
            self.network_ = network.eval()

    def save(self, path, format=None):
        """Write the fitted estimator to ``path``, as a model folder or as a pickle.

        Parameters
        ----------
        path : str or Path
            A new path in an existing folder, or: for a model folder, an empty folder or a
            model folder saved before; for a pickle, a regular file.
        format : {"folder", "pickle"} or None, default=None
            "folder": a folder that loads without running code (parameters and fitted
            masker as JSON, the network's weights read with ``torch.load(weights_only=True)``,
            the mask and the static maps as NIfTI, a format version and checksums), for
            models shared with others. "pickle": one file, faster, for your own use only
            (loading a pickle can run code, so :meth:`load` reads one only with
            ``allow_pickle=True``). None: "pickle" if ``path`` ends in ``.pkl`` or
            ``.pickle``, else "folder".

        Returns
        -------
        path : Path

        Notes
        -----
        Either is written beside ``path`` and renamed onto it once complete, so no partial
        model is ever left under ``path``, and a failed save (a full disk...) leaves what
        was there as it was. Saving over a model folder replaces the model's own files
        (``estimator.json``, ``weights.pt``, ``mask.nii.gz``, ``components.nii.gz``) and
        keeps every other file or folder in it; a non-empty folder that is not a model
        folder is refused. A pickle replaces a regular file only. A symbolic link, a device
        or any other special file is refused, never replaced or written through. In a
        folder, ``mask`` is stored as the fitted mask image, and a ``memory`` or
        ``random_state`` that is an object (not a path or an int) as None; :meth:`load`
        ignores a stored ``memory`` (see there).
        """
        check_is_fitted(self)
        path = Path(path)
        if format is None:
            format = "pickle" if path.suffix in (".pkl", ".pickle") else "folder"
        if format == "folder":
            return write_model_folder(self, path)
        if format != "pickle":
            raise ValueError(f"format must be 'folder', 'pickle' or None, got {format!r}.")
        _check_pickle_target(path)
        with reported_as(path), atomic_path(path) as partial, partial.open("wb") as stream:
            pickle.dump(self, stream, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, path, allow_pickle=False):
        """Read an estimator written by :meth:`save` (a model folder or a pickle), on CPU.

        Parameters
        ----------
        path : str or Path
            A model folder, or a pickle file (with ``allow_pickle=True``).
        allow_pickle : bool, default=False
            Read a pickle file. Loading a pickle runs code stored in it, so a pickle is
            refused unless this is True: pass it only for a pickle you wrote yourself or that
            comes from someone you trust, as for :func:`pickle.load` and
            :func:`joblib.load`. Share models as folders, which load without running code.

        Returns
        -------
        estimator : instance of this class
            Its network is on CPU; move it with ``estimator.network_.to("cuda")`` if wanted.

        Notes
        -----
        A folder is checked before it is used: a file truncated or changed after
        :meth:`save`, a folder that a newer release wrote, a parameter that ``fit``
        refuses, or parameters, network configuration, weights and maps that do not agree
        are refused with a :class:`ValueError` naming the file. A ``memory`` (joblib cache
        folder) stored in the folder is ignored, with a warning: a model from elsewhere
        must not choose where this machine writes. Set it again with
        ``estimator.set_params(memory=...)``.
        """
        path = Path(path)
        if path.is_dir():
            return read_model_folder(path, cls)
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "No saved model here", str(path))
        if not allow_pickle:
            raise ValueError(
                f"{path} is not a model folder, so it would be read as a pickle, and loading "
                "a pickle runs code stored in it: pass allow_pickle=True only for a pickle "
                "you wrote or trust. Prefer the model folder format (save to a path not "
                "ending in .pkl), which loads without running code."
            )
        try:
            with open(path, "rb") as stream:
                estimator = pickle.load(stream)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
            raise ValueError(
                f"{path} cannot be read as a saved model ({type(error).__name__}: {error}): "
                "the file is truncated, damaged or not a model. Save the model again."
            ) from error
        if not isinstance(estimator, cls):
            raise TypeError(f"{path} holds a {type(estimator).__name__}, not a {cls.__name__}.")
        return estimator


def _check_pickle_target(path):
    """Refuse a pickle ``path`` that is neither absent nor a regular file."""
    kind = path_kind(path)
    if kind is None:
        check_parent_folder(path)
    elif kind == "folder":
        raise ValueError(f"{path} is a folder: give a file name for the pickle.")
    elif kind != "file":
        raise ValueError(
            f"{path} is a {kind}, not a regular file: give a new file name for the pickle "
            f"({never_replaced(kind)})."
        )
