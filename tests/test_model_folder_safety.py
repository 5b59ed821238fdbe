"""Saving and loading a model loses none of the user's files and refuses what it must.

Every case is a row of a table. Data-loss rows checksum (SHA-256) everything under the test's
folder before and after; refusal rows assert the exact error, the path or parameter it names,
and that nothing was written or changed.
"""

import errno
import hashlib
import json
import os
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from nilearn_stca import STCADecomposition
from nilearn_stca.stca._model_folder import MANIFEST, MODEL_FILES, ModelFolderError


def _tree(folder):
    """Every entry under ``folder``, links not followed: its kind, and a file's SHA-256."""
    entries = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            key = path.relative_to(folder).as_posix()
            if path.is_symlink():
                entries[key] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[key] = ("folder",)
            elif path.is_file():
                entries[key] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                entries[key] = ("special",)
    return entries


def _edit_manifest(path, edit):
    manifest = json.loads((path / MANIFEST).read_text())
    edit(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def _rewrite_checksums(path):
    """What someone crafting a folder does after changing a file."""
    _edit_manifest(
        path,
        lambda manifest: manifest["sha256"].update(
            {
                name: hashlib.sha256((path / name).read_bytes()).hexdigest()
                for name in manifest["sha256"]
            }
        ),
    )


def _earlier_model(tmp_path, fitted):
    """A model folder saved before (its loss curve marks it), with the user's files in it."""
    path = fitted.save(tmp_path / "model")
    _edit_manifest(path, lambda manifest: manifest.update(loss_curve=[0.0]))
    (path / "my_notes.txt").write_text("keep me")
    (path / "figures").mkdir()
    (path / "figures" / "loss.png").write_bytes(b"\x89PNG not really")
    (path / "data.csv").symlink_to(tmp_path / "elsewhere.csv")
    return path


# ---------------------------------------------------------------- saving over what is there
def _over_an_earlier_model(tmp_path, fitted):
    return _earlier_model(tmp_path, fitted), [
        "my_notes.txt",
        "figures",
        "figures/loss.png",
        "data.csv",
    ]


def _into_an_empty_folder(tmp_path, fitted):
    (tmp_path / "model").mkdir()
    return tmp_path / "model", []


def _to_a_new_path(tmp_path, fitted):
    return tmp_path / "model", []


SAVES = {
    "over an earlier model folder with the user's files": _over_an_earlier_model,
    "into an empty folder": _into_an_empty_folder,
    "to a new path": _to_a_new_path,
}


@pytest.mark.parametrize("case", SAVES)
def test_saving_replaces_only_the_models_own_files(case, fitted, tmp_path):
    path, users = SAVES[case](tmp_path, fitted)
    before = _tree(tmp_path)
    kept = {key: value for key, value in before.items() if key.startswith("model/")}
    assert sorted(kept) == sorted(
        f"model/{name}" for name in users + (list(MODEL_FILES) if users else [])
    )
    for name in MODEL_FILES:
        kept.pop(f"model/{name}", None)

    assert fitted.save(path) == path

    after = _tree(tmp_path)
    assert {key: after.get(key) for key in kept} == kept  # byte-identical
    created = sorted(set(after) - set(before))
    assert created == sorted({"model", *(f"model/{name}" for name in MODEL_FILES)} - set(before))
    assert STCADecomposition.load(path).loss_curve_ == fitted.loss_curve_  # the new model


# ---------------------------------------------------------------- saves that are refused
NOT_A_MODEL_FOLDER = (
    "{path} exists and is not a model folder (it has no nilearn-stca estimator.json), "
    "and it is not empty: give a new or empty folder for the model (nothing in it is "
    "overwritten)."
)

LINK_FOR_A_PICKLE = (
    "{path} is a symbolic link, not a regular file: give a new file name for the pickle (a "
    "save never replaces a symbolic link, nor writes through one)."
)

NO_SUCH_FOLDER = (
    "{parent} is not an existing folder: create it first, or give another path to save the "
    "model to."
)


def _users_folder(tmp_path, fitted):
    (tmp_path / "my_data").mkdir()
    (tmp_path / "my_data" / "notes.txt").write_text("keep me")
    return tmp_path / "my_data", "folder", NOT_A_MODEL_FOLDER


def _another_tools_manifest(tmp_path, fitted):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / MANIFEST).write_text('{"format": "another-tool"}')
    (tmp_path / "other" / "weights.pt").write_bytes(b"another tool's weights")
    return tmp_path / "other", "folder", NOT_A_MODEL_FOLDER


def _newer_model(tmp_path, fitted):
    path = _earlier_model(tmp_path, fitted)
    _edit_manifest(path, lambda manifest: manifest.update(format_version=2))
    message = (
        "{path} holds a model written by a newer release of nilearn-stca: save to another "
        "path, or upgrade nilearn-stca to replace it."
    )
    return path, "folder", message


def _link_to_a_model(tmp_path, fitted):
    (tmp_path / "link").symlink_to(_earlier_model(tmp_path, fitted))
    message = (
        "{path} is a symbolic link, not a folder: save the model to a new path or a folder (a "
        "save never replaces a symbolic link, nor writes through one)."
    )
    return tmp_path / "link", "folder", message


def _a_file_for_a_folder(tmp_path, fitted):
    (tmp_path / "model").write_text("my file")
    message = (
        "{path} is a file, not a folder: save the model to a new path or a folder (a save "
        "never replaces a file)."
    )
    return tmp_path / "model", "folder", message


def _missing_parent(tmp_path, fitted):
    return tmp_path / "nowhere" / "model", "folder", NO_SUCH_FOLDER


def _named_pipe(tmp_path, fitted):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(tmp_path / "pipe")
    message = (
        "{path} is a named pipe, not a regular file: give a new file name for the pickle (a "
        "save never replaces a named pipe)."
    )
    return tmp_path / "pipe", "pickle", message


def _link_to_a_file(tmp_path, fitted):
    (tmp_path / "mine.txt").write_text("keep me")
    (tmp_path / "stca.pkl").symlink_to(tmp_path / "mine.txt")
    return tmp_path / "stca.pkl", "pickle", LINK_FOR_A_PICKLE


def _broken_link(tmp_path, fitted):
    (tmp_path / "stca.pkl").symlink_to(tmp_path / "nothing_here")
    return tmp_path / "stca.pkl", "pickle", LINK_FOR_A_PICKLE


def _folder_for_a_pickle(tmp_path, fitted):
    (tmp_path / "stca.pkl").mkdir()
    return tmp_path / "stca.pkl", "pickle", "{path} is a folder: give a file name for the pickle."


def _pickle_under_a_file(tmp_path, fitted):
    (tmp_path / "notes.txt").write_text("keep me")
    return tmp_path / "notes.txt" / "stca.pkl", "pickle", NO_SUCH_FOLDER


REFUSED_SAVES = {
    "a non-empty folder of the user's": _users_folder,
    "a folder with another tool's estimator.json": _another_tools_manifest,
    "a model folder of a newer format": _newer_model,
    "a symbolic link to a model folder": _link_to_a_model,
    "a file, for a model folder": _a_file_for_a_folder,
    "a model folder in a missing folder": _missing_parent,
    "a named pipe, for a pickle": _named_pipe,
    "a symbolic link to the user's file, for a pickle": _link_to_a_file,
    "a broken symbolic link, for a pickle": _broken_link,
    "a folder, for a pickle": _folder_for_a_pickle,
    "a pickle under a file": _pickle_under_a_file,
}


@pytest.mark.parametrize("case", REFUSED_SAVES)
def test_saving_refuses_what_is_not_ours_and_changes_nothing(case, fitted, tmp_path):
    path, format, message = REFUSED_SAVES[case](tmp_path, fitted)
    before = _tree(tmp_path)
    with pytest.raises(ValueError) as raised:
        fitted.save(path, format=format)
    assert str(raised.value) == message.format(path=path, parent=path.parent)
    assert _tree(tmp_path) == before


# ---------------------------------------------------------------- a full disk, an interruption
def _fail_when_writing(monkeypatch, owner, attribute, written, name, error):
    """Make ``owner.attribute`` write a part of a file named ``name`` and then raise.

    ``written`` is the position of the argument that is the path, or the file, written to.
    """
    original = getattr(owner, attribute)
    calls = []

    def fail(*args, **kwargs):
        target = args[written]
        path = Path(target.name if hasattr(target, "write") else target)
        if not path.name.endswith(name):  # a temporary name ends with the final one
            return original(*args, **kwargs)
        calls.append(path)
        if hasattr(target, "write"):
            target.write(b"part")
        else:
            with open(path, "wb") as stream:
                stream.write(b"part")
        raise error

    monkeypatch.setattr(owner, attribute, fail)
    return calls


def _earlier_pickle(tmp_path, fitted):
    return fitted.save(tmp_path / "stca.pkl")


FULL = OSError(errno.ENOSPC, "No space left on device")

FAILED_SAVES = {
    "no space for weights.pt": (_earlier_model, Path, "write_bytes", 0, "weights.pt", FULL),
    "no space for mask.nii.gz": (_earlier_model, nib, "save", 1, "mask.nii.gz", FULL),
    "no space for components.nii.gz": (_earlier_model, nib, "save", 1, "components.nii.gz", FULL),
    "no space for estimator.json": (_earlier_model, Path, "write_text", 0, MANIFEST, FULL),
    "no space for the user's file": (_earlier_model, os, "link", 1, "my_notes.txt", FULL),
    "interrupted writing the maps": (
        _earlier_model,
        nib,
        "save",
        1,
        "components.nii.gz",
        KeyboardInterrupt(),
    ),
    "no space for a pickle": (_earlier_pickle, pickle, "dump", 1, "stca.pkl", FULL),
}


@pytest.mark.parametrize("case", FAILED_SAVES)
def test_a_failed_save_leaves_the_earlier_model_and_the_users_files(
    case, fitted, tmp_path, monkeypatch
):
    earlier, owner, attribute, written, name, error = FAILED_SAVES[case]
    path = earlier(tmp_path, fitted)
    before = _tree(tmp_path)
    calls = _fail_when_writing(monkeypatch, owner, attribute, written, name, error)
    with pytest.raises(type(error)) as raised:
        fitted.save(path)
    monkeypatch.undo()
    assert calls  # the failure struck where the row says
    if isinstance(error, OSError):
        assert raised.value.errno == errno.ENOSPC
        assert str(raised.value) == (
            "[Errno 28] No space left on device: the model was not saved, and what was at "
            f"this path is as it was: '{path}'"
        )
    assert _tree(tmp_path) == before  # nothing partial left, nothing changed
    STCADecomposition.load(path, allow_pickle=path.suffix == ".pkl")  # the earlier model


# ---------------------------------------------------------------- loading an edited folder
def _fit_refusal(img, **params):
    """What ``fit`` says of ``params``: a loaded folder is refused with the same words."""
    try:
        STCADecomposition(**params).fit(img)
    except (TypeError, ValueError) as error:
        return str(error)
    raise AssertionError(f"fit accepts {params}")


def _set_params(**params):
    return lambda path: _edit_manifest(path, lambda manifest: manifest["params"].update(params))


def _set_network(**config):
    return lambda path: _edit_manifest(
        path, lambda manifest: manifest["network_config"]["dict"].update(config)
    )


def _both(*edits):
    def edit(path):
        for one in edits:
            one(path)

    return edit


def _maps_for_two_components(path):
    maps = nib.load(path / "components.nii.gz")
    two = nib.Nifti1Image(np.asarray(maps.dataobj)[..., :2], maps.affine)
    nib.save(two, path / "components.nii.gz")
    _rewrite_checksums(path)


def _weights_that_are_not_tensors(path):
    torch.save({"stca.embed.weight": 1}, path / "weights.pt")
    _rewrite_checksums(path)


def _refused_by_fit(**params):
    def message(files, img):
        return f"{files['manifest']} holds a parameter that fit refuses: " + _fit_refusal(
            img, **params
        )

    return message


EDITED = "estimator.json was edited after saving: save the model again."
NETWORK = (
    "window_length=10, n_components=5, autoencoder_widths=(4, 4, 8, 8), decoder='regression', "
    "channel_pooling='mean', coordinate_channels=False, map_activation='sigmoid', "
    "refine_steps=0, refine_sparsity=0.3"
)

REFUSED_LOADS = {
    "n_components 5 with weights for 3": (
        _set_params(n_components=5),
        lambda files, img: (
            f"{files['manifest']} gives n_components=5 but its network_config, "
            f"like weights.pt, has n_components=3. {EDITED}"
        ),
    ),
    "n_components 5 in the network configuration too": (
        _both(_set_params(n_components=5), _set_network(n_components=5)),
        lambda files, img: (
            f"{files['weights']} does not fit the network {files['manifest']} "
            f"describes ({NETWORK}): stca.embed.weight has shape (3, 10, 7, 7, 7), the network's "
            f"is (5, 10, 7, 7, 7). {EDITED}"
        ),
    ),
    "window_length edited": (
        _set_params(window_length=12),
        lambda files, img: (
            f"{files['manifest']} gives window_length=12 but its "
            f"network_config, like weights.pt, has window_length=10. {EDITED}"
        ),
    ),
    "decoder edited": (
        _set_params(decoder="autoencoder"),
        lambda files, img: (
            f"{files['manifest']} gives decoder='autoencoder' but its "
            f"network_config, like weights.pt, has decoder='regression'. {EDITED}"
        ),
    ),
    "network configuration without its decoder": (
        lambda path: _edit_manifest(path, lambda m: m["network_config"]["dict"].pop("decoder")),
        lambda files, img: f"{files['manifest']}: network_config lacks decoder. {EDITED}",
    ),
    "network configuration with a setting no network takes": (
        _set_network(dropout=0.5),
        lambda files, img: (
            f"{files['manifest']}: network_config has dropout, which no network takes. {EDITED}"
        ),
    ),
    "fbn_threshold NaN": (
        _set_params(fbn_threshold=float("nan")),
        _refused_by_fit(fbn_threshold=float("nan")),
    ),
    "fbn_threshold a word": (
        _set_params(fbn_threshold="high"),
        _refused_by_fit(fbn_threshold="high"),
    ),
    "learning_rate 0": (_set_params(learning_rate=0), _refused_by_fit(learning_rate=0)),
    "window_length 1": (_set_params(window_length=1), _refused_by_fit(window_length=1)),
    "an unknown device": (_set_params(device="tpu"), _refused_by_fit(device="tpu")),
    "an unknown parameter": (
        _set_params(colour="red"),
        lambda files, img: (
            f"{files['manifest']} sets colour, which is not a parameter of "
            "STCADecomposition: the file was edited, or a newer release wrote it (upgrade "
            "nilearn-stca)."
        ),
    ),
    "maps for 2 components, checksums rewritten": (
        _maps_for_two_components,
        lambda files, img: (
            f"{files['components']} holds 2 maps but {files['manifest']} gives "
            f"n_components=3. {EDITED}"
        ),
    ),
    "weights that are not tensors, checksums rewritten": (
        _weights_that_are_not_tensors,
        lambda files, img: f"{files['weights']} does not hold a network's weights.",
    ),
    "a format version that is not a number": (
        lambda path: _edit_manifest(path, lambda manifest: manifest.update(format_version="1")),
        lambda files, img: (
            f"{files['manifest']} has no valid format_version ('1'): the folder is damaged."
        ),
    ),
}


@pytest.mark.parametrize("case", REFUSED_LOADS)
def test_an_edited_folder_is_refused_in_one_line_naming_the_file(case, fitted, tiny_run, tmp_path):
    img, _ = tiny_run
    path = fitted.save(tmp_path / "model")
    edit, message = REFUSED_LOADS[case]
    edit(path)
    files = {
        "manifest": path / MANIFEST,
        "weights": path / "weights.pt",
        "components": path / "components.nii.gz",
    }
    before = _tree(tmp_path)
    with pytest.raises(ModelFolderError) as raised:
        STCADecomposition.load(path)
    assert str(raised.value) == message(files, img)
    assert "\n" not in str(raised.value)
    assert _tree(tmp_path) == before


# ---------------------------------------------------------------- paths a folder may not choose
RESET_PATHS = {
    "memory": lambda manifest, cache: manifest["params"].update(memory=cache),
    "masker parameter memory": lambda manifest, cache: manifest["masker"]["params"].update(
        memory=cache
    ),
}


@pytest.mark.parametrize("case", RESET_PATHS)
def test_a_folder_does_not_choose_where_this_machine_writes(case, fitted, tiny_run, tmp_path):
    img, _ = tiny_run
    path = fitted.save(tmp_path / "model")
    cache = str(tmp_path / "cache")
    _edit_manifest(path, lambda manifest: RESET_PATHS[case](manifest, cache))
    before = _tree(tmp_path)
    with pytest.warns(UserWarning) as record:
        loaded = STCADecomposition.load(path)
    assert [(str(w.message), w.filename) for w in record] == [
        (
            f"{path / MANIFEST} sets {case}={cache!r}, ignored: a model folder does not choose "
            "where this machine writes (joblib's cache files are pickles), so memory is None; "
            "set it with set_params(memory=...) to cache.",
            __file__,
        )
    ]
    assert loaded.memory is None and loaded.masker_.memory is None
    loaded.transform(img)
    loaded.score(img)
    assert _tree(tmp_path) == before  # no cache folder, nothing written


# ---------------------------------------------------------------- pickles run code
class _RunsCode:
    ran = False

    def __reduce__(self):
        return (_mark_ran, ())


def _mark_ran():
    _RunsCode.ran = True
    return "ran"


@pytest.mark.parametrize("name", ["model.pkl", "model.pickle", "model"])
def test_a_pickle_is_refused_without_allow_pickle_and_runs_nothing(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_RunsCode()))
    before = _tree(tmp_path)
    with pytest.raises(ValueError) as raised:
        STCADecomposition.load(path)
    assert str(raised.value) == (
        f"{path} is not a model folder, so it would be read as a pickle, and loading a pickle "
        "runs code stored in it: pass allow_pickle=True only for a pickle you wrote or trust. "
        "Prefer the model folder format (save to a path not ending in .pkl), which loads "
        "without running code."
    )
    assert not _RunsCode.ran
    assert _tree(tmp_path) == before


def test_allow_pickle_reads_your_own_pickle(fitted, tmp_path):
    path = fitted.save(tmp_path / "stca.pkl")
    loaded = STCADecomposition.load(path, allow_pickle=True)
    np.testing.assert_array_equal(loaded.components_, fitted.components_)
    with pytest.raises(FileNotFoundError, match="No saved model here"):
        STCADecomposition.load(tmp_path / "nothing.pkl", allow_pickle=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_model_saved_for_cuda_loads_on_a_machine_without(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    _set_params(device="cuda:1")(path)
    loaded = STCADecomposition.load(path)
    assert loaded.device == "cuda:1"
    assert next(loaded.network_.parameters()).device.type == "cpu"
