"""``compare`` refuses what it cannot do safely, before it writes anything (issue 26).

An output folder that holds the user's files, or a ``templates.nii.gz`` it did not write; a
damaged ``comparison.json``; runs given twice, or named alike; a mask reaching outside a
run's field of view; confounds of another length than their run; a folder given as a run;
an unknown nipype plugin. Each case is a row of a table: through the command line (exit 2,
one line naming the file or option) and through the Python API (``match=``). Every file
under the test's folders is checksummed before and after: nothing is changed or created.
"""

import hashlib
import shutil
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_img

from nilearn_stca.cli import main
from nilearn_stca.evaluation import compare, read_results
from nilearn_stca.evaluation._run_checks import voxels_outside
from nilearn_stca.evaluation.bids import subject_labels

FUNC = "sub-{:02d}_task-rest_bold.nii.gz"
SETTINGS = ["--methods", "sdl", "--n-components", "3", "--window-length", "20"]
SETTINGS += ["--no-windows", "--quiet", "--template-threshold", "0.5"]
CROPPED_X = 10  # the cropped run keeps the first 10 of the 14 slices along x


def _snapshot(*folders):
    """Every entry under ``folders``: a file's SHA-256, or ``"folder"``."""
    return {
        path: "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
    }


def _cli(argv, capsys):
    """Run the command line; return (exit status, stderr lines)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in argv])
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on tiny data
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def data(sim, tmp_path_factory):
    """Two runs as BIDS files, the mask and the planted networks as templates."""
    folder = tmp_path_factory.mktemp("data")
    funcs = []
    for i, img in enumerate(sim.func, start=1):
        img.to_filename(folder / FUNC.format(i))
        funcs.append(folder / FUNC.format(i))
    sim.mask_img.to_filename(folder / "mask.nii.gz")
    sim.maps_img.to_filename(folder / "templates.nii.gz")
    return {
        "folder": folder,
        "funcs": funcs,
        "mask": folder / "mask.nii.gz",
        "templates": folder / "templates.nii.gz",
    }


def _argv(data, out, funcs=None, extra=()):
    funcs = data["funcs"] if funcs is None else funcs
    return ["compare", *funcs, "--out", out, "--mask", data["mask"]] + [
        "--templates",
        data["templates"],
        *SETTINGS,
        *extra,
    ]


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """The output folder of a finished ``nilearn-stca compare`` of the two runs."""
    out = tmp_path_factory.mktemp("finished") / "out"
    assert _quiet(main, [str(arg) for arg in _argv(data, out)]) == 0
    return out


# ---------------------------------------------------------------------- the cases' inputs
def _user_files(out):
    """A folder of the user's: tables and an image named as compare's outputs, and more."""
    out.mkdir()
    (out / "results.csv").write_text("subject,score\nme,1\n")
    (out / "results.tsv").write_text("subject\tscore\nme\t1\n")
    (out / "dataset_description.json").write_text('{"Name": "my study"}\n')
    (out / "templates.nii.gz").write_text("my own templates, not gzipped")
    (out / "thesis.tex").write_text("years of work")


def _reversed_templates(finished, out):
    """A copy of a finished comparison whose templates.nii.gz was replaced by other maps."""
    shutil.copytree(finished, out)
    img = nib.load(out / "templates.nii.gz")
    flipped = np.asanyarray(img.dataobj)[::-1].copy()
    nib.Nifti1Image(flipped, img.affine, img.header).to_filename(out / "templates.nii.gz")


def _bad_record(text):
    def write(out):
        out.mkdir()
        (out / "cells").mkdir()
        (out / "comparison.json").write_text(text)

    return write


def _cropped_run(data, tmp_path):
    """Run 2 with a smaller field of view: the slices x >= CROPPED_X are cut off."""
    img = nib.load(data["funcs"][1])
    cropped = nib.Nifti1Image(np.asanyarray(img.dataobj)[:CROPPED_X], img.affine, img.header)
    path = tmp_path / FUNC.format(2)
    cropped.to_filename(path)
    return [data["funcs"][0], path]


def _mask_voxels_cut_off(data):
    """Mask voxels in the slices the cropped run lacks, and all of them (counted here)."""
    mask = np.asanyarray(nib.load(data["mask"]).dataobj) != 0
    return int(mask[CROPPED_X:].sum()), int(mask.sum())


def _short_confounds(data, tmp_path):
    """One confounds file per run; the second has 40 rows for the run's 50 scans."""
    rng = np.random.RandomState(0)
    paths = []
    for i, rows in enumerate((50, 40), start=1):
        path = tmp_path / f"sub-{i:02d}_desc-confounds_timeseries.tsv"
        pd.DataFrame(rng.randn(rows, 2), columns=["a", "b"]).to_csv(path, sep="\t", index=False)
        paths.append(path)
    return paths


def _runs_named_alike(data, tmp_path):
    """``a/sub-01_...``, ``b/sub-01_...`` and ``c/sub-02_...``: three files, two names."""
    paths = []
    for folder, run, name in (("a", 0, 1), ("b", 1, 1), ("c", 0, 2)):
        (tmp_path / folder).mkdir()
        paths.append(tmp_path / folder / FUNC.format(name))
        shutil.copyfile(data["funcs"][run], paths[-1])
    return paths


# ---------------------------------------------------------------------- the command line
def _cli_user_files(data, finished, tmp_path):
    _user_files(tmp_path / "out")
    return _argv(data, tmp_path / "out"), ["--out", "results.csv", "no comparison wrote"]


def _cli_user_files_nipype(data, finished, tmp_path):
    _user_files(tmp_path / "out")
    argv = _argv(data, tmp_path / "out", extra=["--nipype"])
    return argv, ["--out", "templates.nii.gz", "choose a new or empty folder"]


def _cli_reversed_templates(data, finished, tmp_path):
    _reversed_templates(finished, tmp_path / "out")
    message = str(tmp_path / "out" / "templates.nii.gz") + " does not hold the templates"
    return _argv(data, tmp_path / "out"), [message, "move it out of the folder"]


def _cli_corrupt_record(data, finished, tmp_path):
    _bad_record('{"subjects": ["sub-01"')(tmp_path / "out")
    record = str(tmp_path / "out" / "comparison.json")
    return _argv(data, tmp_path / "out"), [record + " is unreadable", "delete the folder"]


def _cli_folder_as_run(data, finished, tmp_path):
    (tmp_path / "sub-03" / "func").mkdir(parents=True)
    funcs = [*data["funcs"], tmp_path / "sub-03"]
    message = f"{tmp_path / 'sub-03'}: is a folder; give the 4D NIfTI file"
    return _argv(data, tmp_path / "out", funcs), ["argument FUNC", message]


def _cli_unknown_plugin(data, finished, tmp_path):
    argv = _argv(data, tmp_path / "out", extra=["--nipype", "--plugin", "Nope"])
    return argv, ["argument --plugin: 'Nope' is not a nipype plugin", "Linear, ", "MultiProc"]


def _cli_plugin_without_nipype(data, finished, tmp_path):
    argv = _argv(data, tmp_path / "out", extra=["--plugin", "Linear", "--n-procs", "2"])
    return argv, ["--plugin, --n-procs: options of the nipype engine", "add --nipype"]


def _cli_short_confounds(data, finished, tmp_path):
    confounds = _short_confounds(data, tmp_path)
    argv = _argv(data, tmp_path / "out", extra=["--confounds", *confounds])
    message = f"--confounds {confounds[1]} has 40 rows for the 50 scans of {data['funcs'][1]}"
    return argv, [message]


def _cli_mask_outside_a_run(data, finished, tmp_path, extra=()):
    outside, total = _mask_voxels_cut_off(data)
    funcs = _cropped_run(data, tmp_path)
    message = f"mask_img has {outside} of its {total} voxels outside the field of view of "
    message += f"imgs[1] ({str(funcs[1])!r})"
    return _argv(data, tmp_path / "out", funcs, extra), [message, "intersect_masks"]


def _cli_mask_outside_a_run_nipype(data, finished, tmp_path):
    return _cli_mask_outside_a_run(data, finished, tmp_path, ["--nipype"])


def _cli_same_file_twice(data, finished, tmp_path):
    funcs = [data["funcs"][0], data["funcs"][1], data["funcs"][0]]
    return _argv(data, tmp_path / "out", funcs), [
        f"imgs[0] and imgs[2] are the same file ({str(data['funcs'][0])!r})",
        "give each run once",
    ]


def _cli_runs_named_alike(data, finished, tmp_path):
    funcs = _runs_named_alike(data, tmp_path)
    message = f"imgs[0] ({str(funcs[0])!r}) and imgs[1] ({str(funcs[1])!r}) have the same BIDS"
    return _argv(data, tmp_path / "out", funcs), [message, "--subjects"]


def _cli_runs_named_alike_nipype(data, finished, tmp_path):
    argv, message = _cli_runs_named_alike(data, finished, tmp_path)
    return [*argv, "--nipype"], message


def _cli_subjects_of_another_length(data, finished, tmp_path):
    argv = _argv(data, tmp_path / "out", extra=["--subjects", "a", "b", "c"])
    return argv, ["subjects has 3 labels for 2 images"]


#: case -> builds its inputs in tmp_path; returns (argv, texts the error line holds).
CLI_CASES = {
    "out holds the user's results and templates": _cli_user_files,
    "out holds the user's results, nipype": _cli_user_files_nipype,
    "our folder with a templates.nii.gz we did not write": _cli_reversed_templates,
    "corrupt comparison.json": _cli_corrupt_record,
    "a folder given as a run": _cli_folder_as_run,
    "unknown nipype plugin": _cli_unknown_plugin,
    "nipype options without --nipype": _cli_plugin_without_nipype,
    "confounds shorter than their run": _cli_short_confounds,
    "mask outside a run's field of view": _cli_mask_outside_a_run,
    "mask outside a run's field of view, nipype": _cli_mask_outside_a_run_nipype,
    "the same file twice": _cli_same_file_twice,
    "runs whose BIDS names are alike": _cli_runs_named_alike,
    "runs whose BIDS names are alike, nipype": _cli_runs_named_alike_nipype,
    "--subjects of another length": _cli_subjects_of_another_length,
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_in_one_line_and_writes_nothing(case, data, finished, tmp_path, capsys):
    argv, messages = CLI_CASES[case](data, finished, tmp_path)
    before = _snapshot(tmp_path, data["folder"], finished)
    status, err = _quiet(_cli, argv, capsys)
    assert status == 2
    assert len(err) == 1 and err[0].startswith("nilearn-stca: error: "), err
    for message in messages:
        assert message in err[0]
    assert "Traceback" not in err[0]
    assert _snapshot(tmp_path, data["folder"], finished) == before


# ---------------------------------------------------------------------- the Python API
def _api_user_files(data, sim, finished, tmp_path):
    _user_files(tmp_path / "out")
    return {}, r"holds files that no comparison wrote \(dataset_description.json, results.csv"


def _api_reversed_templates(data, sim, finished, tmp_path):
    _reversed_templates(finished, tmp_path / "out")
    return {"imgs": data["funcs"]}, r"templates.nii.gz does not hold the templates"


def _api_corrupt_record(data, sim, finished, tmp_path):
    _bad_record("")(tmp_path / "out")
    return {}, r"comparison.json is unreadable \(Expecting value.*delete the folder"


def _api_record_not_an_object(data, sim, finished, tmp_path):
    _bad_record("[1, 2]")(tmp_path / "out")
    return {}, r"comparison.json is not the record of a comparison"


def _api_folder_as_run(data, sim, finished, tmp_path):
    (tmp_path / "sub-03").mkdir()
    imgs = [*data["funcs"], tmp_path / "sub-03"]
    return {"imgs": imgs}, r"imgs\[2\] \('.*sub-03'\) is a folder: give the 4D NIfTI file"


def _api_same_image_twice(data, sim, finished, tmp_path):
    return {"imgs": [sim.func[0], sim.func[0]]}, r"imgs\[0\] and imgs\[1\] are the same image"


def _api_same_file_by_two_paths(data, sim, finished, tmp_path):
    link = tmp_path / "link.nii.gz"
    link.symlink_to(data["funcs"][0])
    return {"imgs": [data["funcs"][0], link]}, r"imgs\[0\] and imgs\[1\] are the same file"


def _api_runs_named_alike(data, sim, finished, tmp_path):
    imgs = _runs_named_alike(data, tmp_path)
    return {"imgs": imgs}, r"imgs\[0\] .* and imgs\[1\] .* have the same BIDS entities \(sub-01\)"


def _api_bids_and_other_names(data, sim, finished, tmp_path):
    other = tmp_path / "rest.nii.gz"
    shutil.copyfile(data["funcs"][0], other)
    imgs = [data["funcs"][1], other]
    return {"imgs": imgs}, r"imgs\[1\] \('.*rest.nii.gz'\) has no BIDS sub-<label>.*subjects="


def _api_short_confounds_array(data, sim, finished, tmp_path):
    confounds = [np.zeros((50, 2)), np.zeros((40, 2))]
    message = r"confounds\[1\] has 40 rows for the 50 scans of imgs\[1\] \('.*sub-02"
    return {"imgs": data["funcs"], "confounds": confounds}, message


def _api_short_confounds_file(data, sim, finished, tmp_path):
    confounds = [str(path) for path in _short_confounds(data, tmp_path)]
    message = r"confounds\[1\] \('.*sub-02_desc-confounds_timeseries.tsv'\) has 40 rows"
    return {"imgs": data["funcs"], "confounds": confounds}, message


def _api_mask_outside_a_run(data, sim, finished, tmp_path):
    outside, total = _mask_voxels_cut_off(data)
    message = rf"mask_img has {outside} of its {total} voxels outside the field of view of "
    return {"imgs": _cropped_run(data, tmp_path)}, message + r"imgs\[1\]"


def _api_more_maps_than_voxels(data, sim, finished, tmp_path):
    return {"n_components": 100000}, r"n_components=100000 .*voxels"


#: case -> builds its inputs in tmp_path; returns (compare's arguments, match=).
API_CASES = {
    "out_dir holds the user's files": _api_user_files,
    "our folder with a templates.nii.gz we did not write": _api_reversed_templates,
    "empty comparison.json": _api_corrupt_record,
    "comparison.json that is not an object": _api_record_not_an_object,
    "a folder given as a run": _api_folder_as_run,
    "the same image twice": _api_same_image_twice,
    "the same file by two paths": _api_same_file_by_two_paths,
    "runs whose BIDS names are alike": _api_runs_named_alike,
    "BIDS and other names": _api_bids_and_other_names,
    "confounds array shorter than its run": _api_short_confounds_array,
    "confounds file shorter than its run": _api_short_confounds_file,
    "mask outside a run's field of view": _api_mask_outside_a_run,
    "more maps than the mask's voxels": _api_more_maps_than_voxels,
}


@pytest.mark.parametrize("case", API_CASES)
def test_compare_refuses_and_writes_nothing(case, data, sim, finished, tmp_path):
    arguments, match = API_CASES[case](data, sim, finished, tmp_path)
    imgs = arguments.pop("imgs", sim.func)
    before = _snapshot(tmp_path, data["folder"], finished)
    with pytest.raises(ValueError, match=match):
        _quiet(
            compare,
            imgs,
            methods=("sdl",),
            templates=data["templates"],
            template_threshold=0.5,
            mask_img=data["mask"],
            window_length=20,
            windows=False,
            out_dir=tmp_path / "out",
            verbose=0,
            **{"n_components": 3, **arguments},
        )
    assert _snapshot(tmp_path, data["folder"], finished) == before


# ---------------------------------------------------------------------- what still works
def test_a_rerun_into_its_own_folder_reuses_its_templates(data, finished, tmp_path, capsys):
    out = shutil.copytree(finished, tmp_path / "out")
    templates = (out / "templates.nii.gz").read_bytes()
    assert _quiet(main, [str(arg) for arg in _argv(data, out)]) == 0
    capsys.readouterr()
    assert (out / "templates.nii.gz").read_bytes() == templates


def test_fixed_confounds_are_accepted_after_the_refusal(data, tmp_path, capsys):
    confounds = _short_confounds(data, tmp_path)
    argv = _argv(data, tmp_path / "out", extra=["--confounds", *confounds])
    assert _quiet(_cli, argv, capsys)[0] == 2
    table = pd.read_csv(confounds[0], sep="\t")
    table.to_csv(confounds[1], sep="\t", index=False)  # now 50 rows, as the run has scans
    assert _quiet(main, [str(arg) for arg in argv]) == 0
    capsys.readouterr()
    assert set(read_results(tmp_path / "out" / "results.csv").subject) == {"sub-01", "sub-02"}


def test_cli_subjects_label_runs_whose_names_are_alike(data, tmp_path, capsys):
    funcs = _runs_named_alike(data, tmp_path)
    out = tmp_path / "out"
    argv = _argv(data, out, funcs, ["--subjects", "siteA01", "siteB01", "siteC02"])
    assert _quiet(main, [str(arg) for arg in argv]) == 0
    capsys.readouterr()
    results = read_results(out / "results.csv").drop_duplicates("subject")
    assert list(results.subject) == ["siteA01", "siteB01", "siteC02"]
    assert list(results["sub"]) == ["01", "01", "02"]  # the entities of each file, kept


@pytest.mark.parametrize(
    ("names", "labels"),
    [
        (
            ["sub-01_task-rest_bold", "sub-01_task-motor_bold"],
            ["sub-01_task-rest", "sub-01_task-motor"],
        ),
        (["sub-01_ses-1_run-1_bold", "sub-01_ses-2_run-1_bold"], ["sub-01_ses-1", "sub-01_ses-2"]),
        (["sub-02_bold", "sub-10_bold"], ["sub-02", "sub-10"]),
        (["rest", "motor"], ["sub-01", "sub-02"]),  # no BIDS names: numbered in order
    ],
)
def test_labels_keep_the_entities_that_tell_runs_apart(names, labels, tmp_path):
    assert subject_labels([str(tmp_path / f"{name}.nii.gz") for name in names]) == labels


@pytest.mark.parametrize(
    ("shift", "zoom"), [(0, 1), (1, 1), (0.5, 1), (0.3, 1.3), (-2.7, 0.7), (2, 2)]
)
def test_voxels_outside_are_those_resampling_fills_with_zeros(shift, zoom):
    run_affine = np.diag([4.0 * zoom, 4.0 * zoom, 4.0 * zoom, 1.0])
    run_affine[:3, 3] = 4 * shift
    run = nib.Nifti1Image(np.full((10, 9, 8), 5, np.float32), run_affine)
    mask = nib.Nifti1Image(np.ones((12, 12, 12), np.uint8), np.diag([4.0, 4.0, 4.0, 1.0]))
    resampled = resample_img(
        run,
        target_affine=mask.affine,
        target_shape=mask.shape,
        force_resample=True,
        copy_header=True,
    )
    zeros = int((resampled.get_fdata() == 0).sum())
    assert voxels_outside(mask, run) == (zeros, 12**3)
    assert zeros > 0  # the mask reaches beyond every run here


@pytest.mark.parametrize(
    ("entries", "nipype", "refused"),
    [
        ([], False, False),
        ([".lock", ".partial-0123abcd-comparison.json"], False, False),  # a crash's leftovers
        ([".lock", "results.csv"], False, True),
        (["work/inputs", "work/comparison_wf"], True, False),  # an interrupted nipype run
        (["work/inputs", "work/comparison_wf"], False, True),
        (["work/inputs", "work/chapter1"], True, True),
    ],
)
def test_only_a_new_empty_or_own_folder_is_written(entries, nipype, refused, data, tmp_path):
    from nilearn_stca.cli import build_parser
    from nilearn_stca.cli._compare import _check_out_and_options

    out = tmp_path / "out"
    out.mkdir()
    for entry in entries:
        if entry.startswith("work/"):
            (out / entry).mkdir(parents=True)
        else:
            (out / entry).write_text("")
    args = build_parser().parse_args(
        ["compare", str(data["funcs"][0]), "--out", str(out), *(["--nipype"] if nipype else [])]
    )
    if refused:
        with pytest.raises(ValueError, match=r"--out=.* holds files that no comparison wrote"):
            _check_out_and_options(args)
    else:
        _check_out_and_options(args)


def test_cli_takes_every_nipype_plugin_by_name(data):
    from nilearn_stca.cli import build_parser

    for plugin in ("Linear", "MultiProc", "SLURM"):
        argv = ["compare", str(data["funcs"][0]), "--out", "o", "--nipype", "--plugin", plugin]
        assert build_parser().parse_args(argv).plugin == plugin
