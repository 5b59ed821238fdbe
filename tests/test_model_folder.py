"""The model folder: a fitted STCA saved so that loading it runs no code."""

import json
import pickle

import numpy as np
import pytest
import torch

from nilearn_stca import STCADecomposition
from nilearn_stca.stca._model_folder import MANIFEST, ModelFolderError


def _params_without_mask(est):
    return {k: v for k, v in est.get_params().items() if k != "mask"}


def test_folder_round_trip_gives_equal_outputs(fitted, tiny_run, tmp_path):
    img, _ = tiny_run
    path = fitted.save(tmp_path / "model")
    assert path.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing left beside it
    loaded = STCADecomposition.load(path)
    assert _params_without_mask(loaded) == _params_without_mask(fitted)
    np.testing.assert_array_equal(loaded.components_, fitted.components_)
    assert loaded.loss_curve_ == fitted.loss_curve_ and loaded.n_steps_ == fitted.n_steps_
    assert next(loaded.network_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(
        loaded.window_maps_img(img, 5).get_fdata(), fitted.window_maps_img(img, 5).get_fdata()
    )
    np.testing.assert_allclose(loaded.transform(img)[0], fitted.transform(img)[0], rtol=1e-6)
    assert loaded.score(img) == pytest.approx(fitted.score(img))
    np.testing.assert_array_equal(
        np.asarray(loaded.mask_img_.dataobj), np.asarray(fitted.mask_img_.dataobj)
    )


def test_format_follows_the_suffix_unless_given(fitted, tmp_path):
    assert fitted.save(tmp_path / "a.pkl").is_file()
    assert fitted.save(tmp_path / "b").is_dir()
    assert fitted.save(tmp_path / "c.pkl", format="folder").is_dir()
    assert fitted.save(tmp_path / "d", format="pickle").is_file()
    with pytest.raises(ValueError, match="format must be 'folder', 'pickle' or None"):
        fitted.save(tmp_path / "e", format="zip")
    assert not (tmp_path / "e").exists()


def test_saving_again_replaces_only_a_model_folder(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    (path / "weights.pt").write_bytes(b"old")  # a damaged copy is replaced whole
    fitted.save(path)
    STCADecomposition.load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]

    mine = tmp_path / "my_data"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a model folder"):
        fitted.save(mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_failed_write_leaves_nothing(fitted, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nilearn_stca.stca._model_folder.nib.save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        fitted.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


class _RunsCode:
    ran = False

    def __reduce__(self):
        return (_mark_ran, ())


def _mark_ran():
    _RunsCode.ran = True
    return "ran"


def _rewrite_checksums(path):
    """What an attacker would do: recompute the checksums after changing a file."""
    import hashlib

    manifest = json.loads((path / MANIFEST).read_text())
    for name in manifest["sha256"]:
        manifest["sha256"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_weights_that_would_run_code_are_refused_without_running_it(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    torch.save({"weight": _RunsCode()}, path / "weights.pt")
    _rewrite_checksums(path)
    with pytest.raises(ModelFolderError, match="cannot be read as a model"):
        STCADecomposition.load(path)
    assert not _RunsCode.ran


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda p: (p / "weights.pt").write_bytes((p / "weights.pt").read_bytes()[:100]),
            "weights.pt does not match the checksum",
        ),
        (lambda p: (p / "components.nii.gz").unlink(), "lacks components.nii.gz"),
        (lambda p: (p / MANIFEST).write_text('{"format": "nilearn-stca-mo'), "not valid JSON"),
        (lambda p: (p / MANIFEST).unlink(), "is not a model folder"),
    ],
    ids=["truncated weights", "missing maps", "truncated manifest", "no manifest"],
)
def test_damaged_folders_are_refused_in_one_line(fitted, tmp_path, damage, message):
    path = fitted.save(tmp_path / "model")
    damage(path)
    with pytest.raises(ModelFolderError, match=message) as caught:
        STCADecomposition.load(path)
    assert "\n" not in str(caught.value)


def test_newer_format_and_other_class_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    manifest = json.loads((path / MANIFEST).read_text())
    (path / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ModelFolderError, match="upgrade nilearn-stca"):
        STCADecomposition.load(path)
    (path / MANIFEST).write_text(json.dumps({**manifest, "class": "CanICA"}))
    with pytest.raises(ModelFolderError, match="holds a CanICA"):
        STCADecomposition.load(path)


def test_parameters_that_json_cannot_hold_are_named(fitted, tmp_path):
    est = pickle.loads(pickle.dumps(fitted))
    est.set_params(autoencoder_widths=(16, 16, 32, object()))
    with pytest.raises(ValueError, match="autoencoder_widths=.*format='pickle'"):
        est.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_truncated_pickle_is_one_clear_error(fitted, tmp_path):
    path = fitted.save(tmp_path / "stca.pkl")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated, damaged or not a model"):
        STCADecomposition.load(path, allow_pickle=True)
