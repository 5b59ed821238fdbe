"""Saving estimators that hold a torch network: device-independent, written atomically.

A pickle (this module) or a model folder that loads without running code
(:mod:`nilearn_stca.stca._model_folder`).
"""

import pickle
from pathlib import Path

from sklearn.utils.validation import check_is_fitted

from .._io import atomic_path
from ._model_folder import read_model_folder, write_model_folder
from .network import STCANetwork


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
        format : {"folder", "pickle"} or None, default=None
            "folder": a folder that loads without running code (parameters and fitted
            masker as JSON, the network's weights read with ``torch.load(weights_only=True)``,
            the mask and the static maps as NIfTI, a format version and checksums), for
            models shared with others. "pickle": one file, faster, for your own use only
            (loading a pickle can run code). None: "pickle" if ``path`` ends in ``.pkl`` or
            ``.pickle``, else "folder".

        Returns
        -------
        path : Path

        Notes
        -----
        Either is written beside ``path`` and renamed onto it once complete, so no partial
        model is ever left under ``path``. A folder replaces an older model folder only; a
        pickle replaces a file. In a folder, ``mask`` is stored as the fitted mask image,
        and a ``memory`` or ``random_state`` that is an object (not a path or an int) as
        None.
        """
        check_is_fitted(self)
        path = Path(path)
        if format is None:
            format = "pickle" if path.suffix in (".pkl", ".pickle") else "folder"
        if format == "folder":
            return write_model_folder(self, path)
        if format != "pickle":
            raise ValueError(f"format must be 'folder', 'pickle' or None, got {format!r}.")
        if path.is_dir():
            raise ValueError(f"{path} is a folder: give a file name for the pickle.")
        with atomic_path(path) as partial, partial.open("wb") as stream:
            pickle.dump(self, stream, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save` (a model folder or a pickle), on CPU.

        Move its network with ``estimator.network_.to("cuda")`` if wanted. A folder whose
        files were truncated or changed after :meth:`save`, or that a newer release wrote,
        is refused with a :class:`ValueError` naming the file.

        .. warning::
            A pickle file (``save(path, format="pickle")``) can run arbitrary code when
            loaded. Load only pickles that you wrote yourself or that come from someone you
            trust, as for :func:`pickle.load` and :func:`joblib.load`; share models as
            folders, which load without running code.
        """
        path = Path(path)
        if path.is_dir():
            return read_model_folder(path, cls)
        try:
            with open(path, "rb") as stream:
                estimator = pickle.load(stream)
        except FileNotFoundError:
            raise
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
            raise ValueError(
                f"{path} cannot be read as a saved model ({type(error).__name__}: {error}): "
                "the file is truncated, damaged or not a model. Save the model again."
            ) from error
        if not isinstance(estimator, cls):
            raise TypeError(f"{path} holds a {type(estimator).__name__}, not a {cls.__name__}.")
        return estimator
