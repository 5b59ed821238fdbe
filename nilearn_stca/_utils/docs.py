"""Docstring pieces shared by the three estimators, filled in by :func:`fill_doc`.

As nilearn does with its documentation templates: a docstring line that is only
``%(name)s`` is replaced by the entry ``name`` of :data:`DOCDICT`, indented as that line.
Only whole lines are replaced, so docstrings need no ``%`` escaping.
"""

import re

DOCDICT = {
    "mask": """\
mask : Niimg-like, NiftiMasker or MultiNiftiMasker, default=None
    3D brain mask, or a masker (used as given, its own parameters kept). If None, a mask
    is computed from the data with ``mask_strategy``. A mask of several volumes, or on
    another grid than the data unless ``target_affine`` and ``target_shape`` are set, is
    refused.""",
    "standardize_whole_run": """\
standardize : {"zscore_sample", "psc", True, False, None}, default="zscore_sample"
    Per-voxel standardisation, see :func:`nilearn.signal.clean`. The default is nilearn's
    ``True`` in the spelling nilearn 0.14 asks for (it deprecates booleans): z-score with
    the sample sd. Before nilearn 0.13, ``True`` meant ``"zscore"`` (population sd); the
    explicit spelling gives the same numbers on every nilearn release ``setup.cfg`` allows.""",
    "target_grid": """\
target_affine, target_shape : default=None
    Resample the data (and mask) to this grid.""",
    "masker_settings": """\
mask_strategy : str, default="epi"
    How nilearn computes the mask when ``mask`` is None.
mask_args : dict, default=None
memory : str or joblib.Memory, default=None
memory_level : int, default=0""",
    "window_length": """\
window_length : int, default=40
    Scans per sliding window (>= 2; the paper's T=40).""",
    "window_stride": """\
window_stride : int, default=1
    Scans between consecutive window starts (>= 1).""",
    "fit_parameters": """\
Parameters
----------
imgs : Niimg-like or list of Niimg-like
    One 4D run per subject, each at least ``window_length`` scans long, all on one grid
    (or resampled to ``target_affine`` / ``target_shape``). Windows never cross two runs.
y : None
    Ignored, for scikit-learn compatibility.
confounds : list of (CSV path, ndarray, DataFrame or None), default=None
    One entry per image, passed to :func:`nilearn.signal.clean`.""",
    "decomposition_attributes": """\
components_img_ : Nifti1Image
    ``components_`` as a 4D image.
maps_masker_ : NiftiMapsMasker
    Masker on the non-empty maps of ``components_img_``, used by :meth:`transform` and
    :meth:`inverse_transform`.
n_elements_ : int
    Number of maps, i.e. of columns of :meth:`transform` (as in nilearn).""",
}


def _fbn_threshold(name):
    return f"""\
{name} : float, default=3.6
    z threshold that turns maps into FBNs (:meth:`fbns_img`); the paper's 3.6."""


DOCDICT["threshold"] = _fbn_threshold("threshold")
DOCDICT["fbn_threshold"] = _fbn_threshold("fbn_threshold")

_PLACEHOLDER = re.compile(r"(?P<indent>[ ]*)%\((?P<key>\w+)\)s")


def fill_doc(obj):
    """Replace each docstring line ``%(name)s`` of ``obj`` by ``DOCDICT[name]``, indented."""
    lines = []
    for line in obj.__doc__.splitlines():
        match = _PLACEHOLDER.fullmatch(line)
        if match is None:
            lines.append(line)
            continue
        indent = match["indent"]
        lines.extend(
            indent + piece if piece else piece for piece in DOCDICT[match["key"]].splitlines()
        )
    obj.__doc__ = "\n".join(lines)
    return obj
