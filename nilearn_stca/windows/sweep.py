"""The dynamic maps of every window of a run, streamed to disk and read back lazily.

A sweep folder holds:

``maps.npy``
    float32 array of shape ``(n_windows, n_components, n_voxels)``: the z-maps of each
    window (as :meth:`iter_window_maps` yields them), one block per window in start order.
    The columns follow the voxels of ``mask.nii.gz`` in nilearn's (C) order, so
    ``NiftiMasker(mask).fit().inverse_transform(maps[i])`` is window ``i`` as a 4D image.
``mask.nii.gz``
    The estimator's ``mask_img_``.
``sweep.json``
    What the maps are: format version, method, ``window_length``, ``stride``, the window
    ``starts``, the FBN ``threshold``, the shape and dtype of ``maps.npy``.

The maps are written one window at a time with plain file writes, so memory does not grow
with the number of windows (the paper's 1,161 windows of 64 maps at 4 mm are about 8.7 GB
on disk). :func:`load_window_sweep` memory-maps them back.
"""

import json
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nibabel.filebasedimages import ImageFileError
from nilearn.image import load_img
from nilearn.maskers import NiftiMasker
from sklearn.utils.validation import check_is_fitted

from .._param_rules import check_stride
from .._utils.checks import check_fbn_threshold
from .._utils.io import atomic_path
from ..maps import threshold_fbn_img
from .starts import window_starts

FORMAT = "nilearn-stca window sweep"
VERSION = 1


def write_window_sweep(estimator, img, path, confounds=None, stride=None, fit=False):
    """Write the maps of every sliding window of ``img`` to the folder ``path``.

    Parameters
    ----------
    estimator : STCADecomposition, ICADecomposition or SDLDecomposition
        Fitted, unless ``fit`` is True.
    img : Niimg-like
        One 4D run.
    path : str or Path
        The folder to create; it must not exist. It appears only once complete. Missing
        folders above it are created (and removed again if the sweep fails).
    confounds : CSV path, ndarray, DataFrame or None, default=None
        See :meth:`iter_window_maps`.
    stride : int, default=None
        Scans between windows; the estimator's ``window_stride`` if None.
    fit : bool, default=False
        Fit ``estimator`` on ``img`` first, in the same pass as the sweep
        (:meth:`fit_iter_window_maps`): STCA then maps each window once for both its static
        maps and the sweep.

    Returns
    -------
    sweep : WindowSweep
        The written sweep, memory-mapped.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: choose a new folder for the sweep.")
    if fit:
        windows = estimator.fit_iter_window_maps(img, confounds, stride)
    else:
        check_is_fitted(estimator)
        windows = estimator.iter_window_maps(img, confounds, stride)
    stride = check_stride(stride, estimator.window_stride)
    n_scans = load_img(img).shape[3]
    starts = window_starts(n_scans, estimator.window_length, stride)
    n_voxels = int(np.count_nonzero(np.asanyarray(estimator.mask_img_.dataobj)))
    shape = (len(starts), estimator.n_components, n_voxels)
    with _new_parents(path), atomic_path(path) as partial:
        partial.mkdir()
        estimator.mask_img_.to_filename(partial / "mask.nii.gz")
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        with open(partial / "maps.npy", "wb") as stream:
            np.lib.format.write_array_header_2_0(stream, header)
            written = []
            for start, maps in windows:
                stream.write(np.ascontiguousarray(maps, dtype="<f4").tobytes())
                written.append(int(start))
        if written != starts.tolist():
            raise RuntimeError(f"Expected windows {starts.tolist()}, got {written}.")
        threshold = estimator._fbn_threshold()
        metadata = {
            "format": FORMAT,
            "version": VERSION,
            "method": type(estimator).__name__,
            "window_length": int(estimator.window_length),
            "stride": int(stride),
            "starts": written,
            "threshold": float(threshold),
            "maps": {"file": "maps.npy", "shape": list(shape), "dtype": "float32"},
            "mask": "mask.nii.gz",
        }
        (partial / "sweep.json").write_text(json.dumps(metadata, indent=2))
    return load_window_sweep(path)


@contextmanager
def _new_parents(path):
    """Create the missing folders above ``path``; remove them again if the block fails."""
    missing = [parent for parent in path.parents if not parent.exists()]  # deepest first
    ancestor = next(parent for parent in path.parents if parent.exists())
    if not ancestor.is_dir():
        raise ValueError(f"path={str(path)!r}: {ancestor} is a file, not a folder.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in missing:
            if any(folder.iterdir()):
                break
            folder.rmdir()
        raise


@dataclass
class WindowSweep:
    """A sweep folder read back: the maps stay on disk until indexed.

    Attributes
    ----------
    path : Path
    starts : ndarray of int
        First scan of each window.
    maps : numpy.memmap, shape (n_windows, n_components, n_voxels)
    masker : NiftiMasker
        Fitted on the sweep's mask; ``masker.inverse_transform(maps[i])`` is an image.
    metadata : dict
        The content of ``sweep.json``.
    """

    path: Path
    starts: np.ndarray
    maps: np.ndarray
    masker: NiftiMasker
    metadata: dict = field(repr=False)

    def __len__(self):
        return len(self.starts)

    def __iter__(self):
        """Yield ``(start, maps)`` for each window, as :meth:`iter_window_maps` does.

        The windows are read from the file one at a time, not through the memory map, so
        resident memory stays at one window's maps however long the sweep. A window whose
        maps hold NaN or inf raises a ValueError naming the file.
        """
        n_components, n_voxels = self.maps.shape[1:]
        with open(self.maps.filename, "rb") as stream:
            stream.seek(self.maps.offset)
            for start in self.starts:
                maps = np.fromfile(stream, self.maps.dtype, n_components * n_voxels)
                yield int(start), self._checked(maps.reshape(n_components, n_voxels), start)

    def _checked(self, maps, start):
        """A window's maps, refused if the file holds NaN or inf there."""
        if not np.isfinite(maps).all():
            raise ValueError(
                f"{self.maps.filename}: the maps of the window starting at scan {start} hold "
                "NaN or inf; the file is damaged: write the sweep again with "
                "write_window_sweep."
            )
        return maps

    def window_img(self, start_scan):
        """The maps of the window starting at ``start_scan`` as a 4D image."""
        index = np.flatnonzero(self.starts == start_scan)
        if not len(index):
            raise ValueError(
                f"No window starts at scan {start_scan}; the sweep's windows start at "
                f"{self.starts[0]}, {self.starts[0] + self.metadata['stride']}, ... "
                f"{self.starts[-1]}."
            )
        maps = self._checked(np.asarray(self.maps[index[0]]), start_scan)
        return self.masker.inverse_transform(maps)

    def fbn_threshold(self, threshold=None):
        """The z threshold of the FBNs: ``threshold``, or the sweep's own if None.

        The sweep's own is the estimator's when the sweep was written (``sweep.json``).
        """
        return self.metadata["threshold"] if threshold is None else threshold

    def iter_fbns(self, threshold=None):
        """Yield ``(start, fbns)`` for each window, read as :meth:`__iter__` reads them.

        ``fbns`` is a boolean array ``(n_components, n_voxels)``: z at or above
        :meth:`fbn_threshold`.
        """
        cut = self.fbn_threshold(threshold)
        for start, maps in self:
            yield start, maps >= cut

    def fbns_img(self, start_scan, threshold=None):
        """Binary FBNs of one window (z at or above :meth:`fbn_threshold`) as a 4D image."""
        return threshold_fbn_img(self.window_img(start_scan), self.fbn_threshold(threshold))


def load_window_sweep(path):
    """Open a folder written by :func:`write_window_sweep`.

    ``sweep.json`` is checked against the files: the maps and mask must be regular files
    inside the folder (not symbolic links), ``maps.npy`` must hold float32 maps of the
    recorded shape (its header is read first: an array of Python objects is never
    unpickled), one block per recorded window start, and the mask as many voxels as the
    maps have columns. The method must be a class name, ``window_length`` and ``stride``
    positive integers, the starts ``0, stride, 2 * stride...``, and ``threshold`` a
    finite z value >= 0. The maps are checked for NaN and inf as they are read.

    Returns
    -------
    sweep : WindowSweep

    Raises
    ------
    ValueError
        Naming the folder's file at fault, if any check fails.
    """
    path = Path(path)
    metadata, starts, recorded_shape, maps_file, mask_file = _read_metadata(path)
    maps = _open_maps(maps_file)
    mask_img, n_voxels = _read_mask(mask_file)
    stride = metadata["stride"]
    problems = []
    if list(maps.shape) != recorded_shape:
        problems.append(f"maps.npy has shape {maps.shape}, sweep.json records {recorded_shape}")
    if starts.ndim != 1 or maps.ndim != 3 or len(starts) != maps.shape[0]:
        n_windows = maps.shape[0] if maps.ndim else 0
        problems.append(f"sweep.json lists {starts.size} window starts for {n_windows} windows")
    elif not np.array_equal(starts, stride * np.arange(len(starts))):
        problems.append(f"sweep.json's starts are not 0, {stride}, {2 * stride}... (its stride)")
    if maps.ndim == 3 and maps.shape[2] != n_voxels:
        problems.append(f"the mask has {n_voxels} voxels, the maps {maps.shape[2]}")
    if problems:
        raise ValueError(
            f"{path} is not a consistent window sweep: {'; '.join(problems)}. Write it again "
            "with write_window_sweep."
        )
    masker = NiftiMasker(mask_img=mask_img).fit()
    return WindowSweep(path, starts, maps, masker, metadata)


def _read_metadata(path):
    """``sweep.json`` of the folder ``path``, checked: ``(metadata, starts, maps_shape,
    maps_file, mask_file)``."""
    metadata_file = path / "sweep.json"
    if not metadata_file.is_file():
        raise ValueError(f"{path} is not a window sweep folder: it has no sweep.json.")
    if metadata_file.is_symlink():
        raise ValueError(
            f"{metadata_file} is a symbolic link: a sweep's files must be regular files of its "
            "own folder (copy the file there, or write the sweep again with write_window_sweep)."
        )
    try:
        metadata = json.loads(metadata_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{metadata_file} is not valid JSON ({error}).") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{metadata_file} does not describe a window sweep.")
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise ValueError(
            f"{metadata_file} is not a version-{VERSION} {FORMAT} (format "
            f"{metadata.get('format')!r}, version {metadata.get('version')!r})."
        )
    try:
        names = [metadata["maps"]["file"], metadata["mask"]]
        starts = np.asarray(metadata["starts"], dtype=int)
        recorded_shape = [int(n) for n in metadata["maps"]["shape"]]
        settings = {key: metadata[key] for key in _SETTINGS}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{metadata_file} is incomplete or damaged ({type(error).__name__}: {error}); "
            "write the sweep again with write_window_sweep."
        ) from None
    try:
        _check_settings(settings)
        maps_file, mask_file = (_file_in_folder(path, name) for name in names)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{metadata_file}: {error}; write the sweep again with write_window_sweep."
        ) from None
    return metadata, starts, recorded_shape, maps_file, mask_file


def _read_mask(file):
    """The sweep's mask image and its number of voxels (a damaged file is named)."""
    try:
        mask_img = load_img(file)
        n_voxels = int(np.count_nonzero(np.asanyarray(mask_img.dataobj)))
    except (OSError, EOFError, zlib.error, ImageFileError, ValueError) as error:
        raise ValueError(
            f"{file}: cannot read the mask, the file may be damaged or truncated ({error}); "
            "write the sweep again with write_window_sweep."
        ) from None
    return mask_img, n_voxels


def check_method_name(name):
    """The estimator class name a sweep records: it names the states' files, so no path."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"method {name!r} is not the class name of an estimator (such as 'STCADecomposition')"
        )
    return name


#: What ``sweep.json`` records of the estimator and windows, checked by :func:`_check_settings`.
_SETTINGS = ("method", "window_length", "stride", "threshold")


def _check_settings(metadata):
    """The method, window and threshold ``sweep.json`` records (ValueError naming the key)."""
    check_method_name(metadata["method"])
    for key in ("window_length", "stride"):
        value = metadata[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    check_fbn_threshold(metadata["threshold"])


def _open_maps(file):
    """Memory-map ``maps.npy`` once its header says float32 and its size matches the header.

    The header is read before anything else, so an array of Python objects is refused
    without being unpickled, and a truncated file is named as such.
    """
    try:
        with open(file, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"unsupported .npy format version {version}")
            read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
            shape, _, dtype = read_header(stream)
            offset = stream.tell()
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(
            f"{file} is not a readable .npy array ({error}): write the sweep again with "
            "write_window_sweep."
        ) from None
    if dtype != np.dtype("<f4"):
        kind = "Python objects (not read: unpickling can run code)" if dtype.hasobject else dtype
        raise ValueError(
            f"{file} holds {kind}, not float32 maps: write the sweep again with "
            "write_window_sweep."
        )
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = file.stat().st_size
    if size != expected:
        state = "truncated" if size < expected else "longer than its header says"
        raise ValueError(
            f"{file} is {state} ({size} bytes, {expected} expected for maps of shape "
            f"{shape}): write the sweep again with write_window_sweep."
        )
    return np.load(file, mmap_mode="r", allow_pickle=False)


def _file_in_folder(folder, name):
    """``folder / name`` for a plain file name of ``sweep.json``; never a path outside it."""
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a file name inside the sweep folder")
    file = folder / name
    if file.is_symlink():
        raise ValueError(
            f"{file} is a symbolic link: a sweep's files must be regular files of its own "
            "folder (copy the file there)"
        )
    if not file.is_file():
        raise ValueError(f"{name!r} is missing from the sweep folder")
    return file
