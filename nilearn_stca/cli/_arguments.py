"""The command's parser class and the argument types: each checks one value and says why
it is refused, in one line."""

import argparse
import os
import tempfile
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """Errors as one line (``nilearn-stca: error: ...``) and exit status 2."""

    def error(self, message):
        self.exit(2, f"nilearn-stca: error: {message}\n")


def _writable_out_dir(value):
    """An output folder that exists, or can be created, and is writable."""
    path = Path(value).resolve()
    try:
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{value}: exists and is not a folder")
        ancestor = next(p for p in (path, *path.parents) if p.exists())
    except OSError as error:  # e.g. a parent that may not be listed
        raise argparse.ArgumentTypeError(f"{value}: {error.strerror or error}") from None
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: {ancestor} is a file, not a folder")
    if ancestor == path:
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"{value}: not writable")
        return path
    # os.access answers yes to root where nothing can be created (/sys, some mounts): only
    # creating something there tells.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nilearn-stca-probe-", dir=ancestor))
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"{value}: cannot create a folder in {ancestor} ({error.strerror or error})"
        ) from None
    return path


def _integer(value):
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None


def _integer_at_least(minimum, unit=""):
    """An argparse type: an integer of at least ``minimum`` (``unit`` names it in errors)."""

    def parse(value):
        number = _integer(value)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}{unit}, got {value}")
        return number

    return parse


_positive_int = _integer_at_least(1)
_window_length = _integer_at_least(2, " scans")
_at_least_two = _integer_at_least(2)


def _n_jobs(value):
    number = _integer(value)
    if number == 0 or number < -1:
        raise argparse.ArgumentTypeError(f"must be >= 1, or -1 for all CPUs, got {value}")
    return number


def _existing_file(value):
    if Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"{value}: is a folder, not a file")
    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return value


def _nifti_header(value):
    """The image of an existing NIfTI file, of which only the header is read."""
    import nibabel as nib

    _existing_file(value)
    try:
        return nib.load(value)
    except Exception as error:  # nibabel raises several types for unreadable files
        raise argparse.ArgumentTypeError(f"{value}: not a NIfTI image ({error})") from None


def _func_file(value):
    """An existing NIfTI file holding a 4D series (only its header is read)."""
    if Path(value).is_dir():
        raise argparse.ArgumentTypeError(
            f"{value}: is a folder; give the 4D NIfTI file of each run (e.g. its *_bold.nii.gz)"
        )
    img = _nifti_header(value)
    if len(img.shape) != 4:
        raise argparse.ArgumentTypeError(
            f"{value}: a {len(img.shape)}D image of shape {img.shape}; give 4D fMRI runs"
        )
    return value


def _mask_file(value):
    """An existing NIfTI file holding one 3D volume (only its header is read)."""
    shape = _nifti_header(value).shape
    if len(shape) != 3 and not (len(shape) == 4 and shape[3] == 1):
        raise argparse.ArgumentTypeError(
            f"{value}: a {len(shape)}D image of shape {shape}; give a 3D brain mask"
        )
    return value


def _templates(value):
    """``smith2009``, or a NIfTI file of 4D network maps or a 3D label atlas."""
    if value == "smith2009":
        return value
    if not value.endswith((".nii", ".nii.gz")):
        raise argparse.ArgumentTypeError(
            f"{value}: use 'smith2009' or a NIfTI file (.nii, .nii.gz) of networks"
        )
    shape = _nifti_header(value).shape
    if len(shape) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f"{value}: a {len(shape)}D image of shape {shape}; give 4D maps or a 3D atlas"
        )
    return value


def _json_object(value):
    import json

    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {value!r}")
    return parsed


def _nipype_plugin(value):
    """The name of one of nipype's execution plugins (``MultiProc``, ``Linear``, ``SLURM``...)."""
    from nipype.pipeline import plugins

    names = sorted(
        name.removesuffix("Plugin")
        for name in dir(plugins)
        if name.endswith("Plugin") and name != "Plugin"
    )
    if value not in names:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a nipype plugin; choose among {', '.join(names)}"
        )
    return value


def _positive_float(value):
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return number


def _sweep_dir(value):
    """A folder written by ``write_window_sweep`` (only its ``sweep.json`` is looked for)."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no such folder")
    if not (path / "sweep.json").is_file():
        raise argparse.ArgumentTypeError(
            f"{value}: not a window sweep folder (no sweep.json); write one with "
            "write_window_sweep"
        )
    return path
