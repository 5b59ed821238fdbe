"""Pickling of estimators that hold a torch network: device-independent, written atomically."""

import pickle
from pathlib import Path

from sklearn.utils.validation import check_is_fitted

from ._io import atomic_path
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

    def save(self, path):
        """Write the fitted estimator to ``path`` (a pickle whose network tensors are on CPU).

        The file is written beside ``path`` first and renamed, so no partial file is left.
        Only load files you trust: loading a pickle can run code.

        Returns
        -------
        path : Path
        """
        check_is_fitted(self)
        path = Path(path)
        with atomic_path(path) as partial, partial.open("wb") as stream:
            pickle.dump(self, stream, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`; its network is on CPU.

        Move it with ``estimator.network_.to("cuda")`` if wanted.

        .. warning::
            The file is a pickle, and loading a pickle can run arbitrary code. Load only
            files that you wrote yourself or that come from someone you trust, as for
            :func:`pickle.load` and :func:`joblib.load`.
        """
        with open(path, "rb") as stream:
            estimator = pickle.load(stream)
        if not isinstance(estimator, cls):
            raise TypeError(f"{path} holds a {type(estimator).__name__}, not a {cls.__name__}.")
        return estimator
