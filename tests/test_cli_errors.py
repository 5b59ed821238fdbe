"""Bad input, full disks, permissions and Ctrl-C: one line on stderr, exit 2 (130), no writes."""

import errno
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from nilearn_stca.cli import main

COMPARE = ["--methods", "sdl", "--window-length", "10", "--no-windows", "--quiet"]


def _nifti(path, shape=(10, 10, 10, 50)):
    data = np.random.RandomState(0).rand(*shape).astype(np.float32)
    nib.Nifti1Image(data, np.eye(4)).to_filename(path)
    return str(path)


def _truncated(path):
    _nifti(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # the header is intact, the data cut short
    return str(path)


def _raise(error):
    def raiser(*args, **kwargs):
        raise error

    return raiser


# Each case builds its input in tmp_path and returns (argv, exit status, text in the message).
def _truncated_nii(tmp_path, monkeypatch):
    func = _truncated(tmp_path / "run.nii")
    return ["compare", func, "--out", str(tmp_path / "out"), *COMPARE], 2, "run.nii: cannot read"


def _truncated_nii_gz(tmp_path, monkeypatch):
    func = _truncated(tmp_path / "run.nii.gz")
    argv = ["compare", func, "--out", str(tmp_path / "out"), *COMPARE]
    return argv, 2, "run.nii.gz: cannot read the image data"


def _mask_4d(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    argv = ["compare", func, "--mask", func, "--out", str(tmp_path / "out"), *COMPARE]
    return argv, 2, "argument --mask: " + func + ": a 4D image"


def _templates_not_nifti(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    (tmp_path / "networks.nii.gz").write_text("not an image")
    templates = str(tmp_path / "networks.nii.gz")
    argv = ["compare", func, "--templates", templates, "--out", str(tmp_path / "out")]
    return argv, 2, "argument --templates: " + templates + ": not a NIfTI image"


def _templates_text_file(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    (tmp_path / "networks.txt").write_text("DMN")
    argv = ["compare", func, "--templates", str(tmp_path / "networks.txt")]
    return [*argv, "--out", str(tmp_path / "out")], 2, "use 'smith2009' or a NIfTI file"


def _full_disk(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    error = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("nilearn_stca.evaluation.compare", _raise(error))
    out = tmp_path / "out"
    return (
        ["compare", func, "--out", str(out), *COMPARE],
        2,
        f"No space left on device (writing into --out {out})",
    )


def _permission_denied(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    out = tmp_path / "out"
    error = PermissionError(errno.EACCES, "Permission denied", str(out / "results.csv"))
    monkeypatch.setattr("nilearn_stca.evaluation.compare", _raise(error))
    argv = ["compare", func, "--out", str(out), *COMPARE]
    return argv, 2, f"{out / 'results.csv'}: Permission denied"


def _demo_full_disk(tmp_path, monkeypatch):
    error = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("nilearn_stca.cli.demo.simulate_dynamic_rsfmri", _raise(error))
    return ["demo", "--out", str(tmp_path / "out"), "--quiet"], 2, "No space left on device"


def _out_under_a_file(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    argv = ["compare", func, "--out", str(tmp_path / "run.nii.gz" / "out"), *COMPARE]
    return argv, 2, "run.nii.gz is a file, not a folder"


def _out_under_a_read_only_folder(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    # Even root may not create folders in /sys, where os.access says it may.
    return ["compare", func, "--out", "/sys/nilearn-stca/out"], 2, "cannot create a folder in /sys"


def _compare_interrupted(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    monkeypatch.setattr("nilearn_stca.evaluation.compare", _raise(KeyboardInterrupt()))
    argv = ["compare", func, "--out", str(tmp_path / "out"), *COMPARE]
    return argv, 130, "nilearn-stca: interrupted; rerun the same command to resume"


def _demo_interrupted(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "nilearn_stca.cli.demo.simulate_dynamic_rsfmri", _raise(KeyboardInterrupt())
    )
    return ["demo", "--out", str(tmp_path / "out")], 130, "nilearn-stca: interrupted"


def _demo_into_a_folder_with_a_user_file(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("years of work")
    return ["demo", "--out", str(tmp_path / "out")], 2, "choose an empty or new folder"


def _demo_into_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(tmp_path)
    return ["demo", "--out", "."], 2, f"--out {tmp_path}: a folder with files the demo did not"


CASES = [
    _truncated_nii,
    _truncated_nii_gz,
    _mask_4d,
    _templates_not_nifti,
    _templates_text_file,
    _full_disk,
    _permission_denied,
    _demo_full_disk,
    _out_under_a_file,
    pytest.param(
        _out_under_a_read_only_folder,
        marks=pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys (Linux)"),
    ),
    _compare_interrupted,
    _demo_interrupted,
    _demo_into_a_folder_with_a_user_file,
    _demo_into_the_current_folder,
]


def _snapshot(folder):
    return {path: (path.stat().st_mode, path.stat().st_mtime_ns) for path in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.strip("_"))
def test_cli_error_is_one_line_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    # The demo must refuse before it simulates and trains (cases that test its failures
    # patch this again).
    simulated = AssertionError("simulated")
    monkeypatch.setattr("nilearn_stca.cli.demo.simulate_dynamic_rsfmri", _raise(simulated))
    argv, status, message = case(tmp_path, monkeypatch)
    before = _snapshot(tmp_path), sorted(tmp_path.parent.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("nilearn-stca: error: " if status == 2 else "nilearn-stca: "), err
    assert message in err
    assert "Traceback" not in err
    assert (_snapshot(tmp_path), sorted(tmp_path.parent.iterdir())) == before  # no writes
    assert not Path("/sys/nilearn-stca").exists()


def test_cli_programming_errors_keep_their_traceback(tmp_path, monkeypatch):
    func = _nifti(tmp_path / "run.nii.gz")
    monkeypatch.setattr("nilearn_stca.evaluation.compare", _raise(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        main(["compare", func, "--out", str(tmp_path / "out"), *COMPARE])
