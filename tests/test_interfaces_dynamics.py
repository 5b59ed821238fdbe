"""The States and Stability nodes, and the workflow's states step, against the library."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nilearn.image import load_img

from nilearn_stca.baselines import ICADecomposition
from nilearn_stca.evaluation.stability import stability
from nilearn_stca.interfaces import Stability, States
from nilearn_stca.interfaces.workflows import init_comparison_wf
from nilearn_stca.states import write_states
from nilearn_stca.windows.sweep import write_window_sweep

ICA = {"n_components": 3, "n_init": 1, "window_length": 10, "window_stride": 5}


@pytest.fixture(scope="module")
def files(sim, tmp_path_factory):
    """The two simulated runs and their mask as files, and each run's ICA window sweep."""
    folder = tmp_path_factory.mktemp("dynamics_nodes")
    runs = [str(folder / f"sub-0{i + 1}_bold.nii.gz") for i in range(2)]
    for img, path in zip(sim.func, runs, strict=True):
        img.to_filename(path)
    mask = str(folder / "mask.nii.gz")
    sim.mask_img.to_filename(mask)
    sweeps = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on tiny data
        for i, run in enumerate(runs):
            estimator = ICADecomposition(mask=mask, random_state=0, **ICA)
            sweeps[f"sub-0{i + 1}"] = str(folder / f"sweep-{i + 1}")
            write_window_sweep(estimator, run, sweeps[f"sub-0{i + 1}"], fit=True)
    return {"runs": runs, "mask": mask, "sweeps": sweeps}


def _run(interface, folder):
    folder.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return interface.run(cwd=str(folder)).outputs


@pytest.mark.parametrize("features", ["maps", "presence"])
def test_states_node_writes_what_write_states_writes(files, sim, features, tmp_path):
    # At 16 mm few voxels reach z = 3.6: a lower threshold makes the windows differ.
    options = {"n_states": 2, "t_r": 2.0, "features": features, "threshold": 1.0}
    if features == "presence":
        options.update(templates=str(tmp_path / "maps.nii.gz"), template_threshold=0.5)
        sim.maps_img.to_filename(options["templates"])
    node = States(
        windows_dirs=list(files["sweeps"].values()), subjects=list(files["sweeps"]), **options
    )
    outputs = _run(node, tmp_path / "node")
    assert Path(outputs.out_dir) == tmp_path / "node" / "states"
    expected = write_states(files["sweeps"], tmp_path / "direct", **options)
    assert len(set(expected.sequences["state"])) == 2
    for name, table in [
        ("sequences_file", expected.sequences),
        ("metrics_file", expected.metrics),
        ("transitions_file", expected.transitions),
    ]:
        written = pd.read_csv(getattr(outputs, name), sep="\t")
        pd.testing.assert_frame_equal(written, table, check_dtype=False)
    metrics = pd.read_csv(outputs.metrics_file, sep="\t")
    assert set(metrics["subject"]) == {"sub-01", "sub-02"}
    np.testing.assert_allclose(metrics.groupby("subject")["temporal_fraction"].sum(), 1.0)
    # 50 scans, windows of 10 every 5 scans: 9 windows per subject.
    assert len(pd.read_csv(outputs.sequences_file, sep="\t")) == 18


def test_states_node_refuses_labels_that_do_not_match(files, tmp_path):
    node = States(windows_dirs=list(files["sweeps"].values()), subjects=["sub-01"], n_states=2)
    with pytest.raises(ValueError, match="one label per sweep"):
        _run(node, tmp_path)
    assert not (tmp_path / "states").exists()


def test_states_node_keeps_its_output_in_its_folder(files, tmp_path):
    node = States(windows_dirs=list(files["sweeps"].values()), n_states=2, out_dir="../outside")
    with pytest.raises(ValueError, match="inside the node's working folder"):
        _run(node, tmp_path / "node")
    assert not (tmp_path / "outside").exists()


def test_stability_node_gives_the_librarys_clusters(files, tmp_path):
    params = {"n_components": 3, "n_init": 1}
    node = Stability(
        in_files=files["runs"][:1],
        method="ica",
        method_params=params,
        mask_file=files["mask"],
        n_runs=3,
        random_state=1,
    )
    outputs = _run(node, tmp_path)
    mask_img = load_img(files["mask"])
    estimator = ICADecomposition(
        mask=files["mask"],
        target_affine=mask_img.affine,
        target_shape=mask_img.shape[:3],
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stability(estimator, files["runs"][:1], n_runs=3, random_state=1)
    table = pd.read_csv(outputs.table_file, sep="\t", index_col="cluster")
    pd.testing.assert_frame_equal(table, expected.table, check_dtype=False)
    np.testing.assert_allclose(
        load_img(outputs.centrotypes_file).get_fdata(),
        expected.components_img_.get_fdata(),
        atol=1e-6,
    )


def test_stability_node_refuses_a_seed_in_method_params(files, tmp_path):
    node = Stability(
        in_files=files["runs"][:1], method="ica", method_params={"random_state": 3}, n_runs=2
    )
    with pytest.raises(ValueError, match="node's random_state"):
        _run(node, tmp_path)
    assert not (tmp_path / "stability").exists()


def test_workflow_states_step_per_method(files, sim, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    sim.maps_img.to_filename(folder / "maps.nii.gz")
    wf = init_comparison_wf(
        files["runs"],
        methods=("ica",),
        templates=str(folder / "maps.nii.gz"),
        template_threshold=0.5,
        mask_file=files["mask"],
        method_params={"ica": {"n_init": 1}},
        n_components=3,
        window_length=10,
        window_stride=5,
        out_dir=tmp_path / "out",
        base_dir=tmp_path / "work",
        states=True,
        n_states=2,
        state_features="presence",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wf.run()
    states_dir = tmp_path / "out" / "states" / "ica"
    metrics = pd.read_csv(states_dir / "states_metrics.tsv", sep="\t")
    assert set(metrics["subject"]) == {"sub-01", "sub-02"}
    assert set(metrics["method"]) == {"ica"}
    np.testing.assert_allclose(metrics.groupby("subject")["temporal_fraction"].sum(), 1.0)
    sequences = pd.read_csv(states_dir / "states_sequences.tsv", sep="\t")
    assert sorted(sequences["window"].unique()) == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    assert (tmp_path / "out" / "report.html").is_file()


def test_workflow_states_need_windows(files):
    with pytest.raises(ValueError, match="keep windows=True"):
        init_comparison_wf(files["runs"], windows=False, states=True)
