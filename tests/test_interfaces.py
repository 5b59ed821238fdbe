import doctest
import os
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from nilearn.image import load_img
from nilearn.masking import apply_mask
from threadpoolctl import threadpool_limits

from nilearn_stca import STCADecomposition, interfaces, load_window_sweep
from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.evaluation import read_results, score_maps
from nilearn_stca.interfaces import (
    ICA,
    SDL,
    STCA,
    EvaluateIoU,
    read_confounds,
    workflows,
)

FAST_PARAMS = {
    "ica": {"n_init": 1},
    "stca": {"n_components": 4, "autoencoder_widths": (4, 4, 8, 8)},
}
WINDOW = {"window_length": 20, "window_stride": 10}
STARTS = [0, 10, 20, 30]  # 50 scans, windows of 20 every 10 scans

INTERFACES = {"stca": (STCA, STCADecomposition), "ica": (ICA, ICADecomposition)}
INTERFACES["sdl"] = (SDL, SDLDecomposition)

#: Estimator parameters each node must take, with the estimator's name and default.
EXPECTED_PARAMS = {
    "stca": [
        "n_epochs",
        "learning_rate",
        "batch_size",
        "autoencoder_widths",
        "decoder",
        "static_maps",
        "device",
    ],
    "ica": ["threshold", "n_init", "do_cca"],
    "sdl": ["alpha", "window_alpha", "n_epochs", "batch_size", "method"],
}
SHARED_PARAMS = [
    "n_components",
    "window_length",
    "window_stride",
    "fbn_threshold",
    "random_state",
    "smoothing_fwhm",
    "standardize",
    "detrend",
    "low_pass",
    "high_pass",
    "t_r",
]


@pytest.fixture(scope="module")
def files(sim, tmp_path_factory):
    """The simulated runs, mask and planted maps as NIfTI files."""
    folder = tmp_path_factory.mktemp("data")
    paths = {"runs": []}
    for i, img in enumerate(sim.func):
        paths["runs"].append(str(folder / f"sub-0{i + 1}_bold.nii.gz"))
        img.to_filename(paths["runs"][-1])
    for name in ("mask", "maps"):
        paths[name] = str(folder / f"{name}.nii.gz")
        sim[f"{name}_img"].to_filename(paths[name])
    return paths


def _run(interface, folder):
    """Run an interface in ``folder`` (nipype writes its outputs in the current folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nilearn's warnings on tiny data
            return interface.run()
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def ran(files, tmp_path_factory):
    """Each method's node run on the first subject: ``{method: (outputs, torch threads)}``."""
    results = {}
    for method, (interface, _) in INTERFACES.items():
        node = interface(
            in_files=files["runs"][:1],
            mask_file=files["mask"],
            random_state=0,
            num_threads=1,
            **WINDOW,
            **FAST_PARAMS.get(method, {}),
        )
        threads = torch.get_num_threads()
        outputs = _run(node, tmp_path_factory.mktemp(method)).outputs
        results[method] = outputs, (threads, torch.get_num_threads())
    return results


# ---------------------------------------------------------------------- specs
@pytest.mark.parametrize("method", INTERFACES)
def test_inputs_and_outputs(method):
    interface, _ = INTERFACES[method]
    inputs = interface.input_spec()
    names = set(inputs.copyable_trait_names())
    data = {"in_files", "mask_file", "confounds_files", "windows", "sweep_stride"}
    assert {*data, "num_threads", *SHARED_PARAMS, *EXPECTED_PARAMS[method]} <= names
    mandatory = {name for name in names if inputs.trait(name).mandatory}
    assert mandatory == {"in_files"}
    assert inputs.windows is True
    outputs = set(interface.output_spec().copyable_trait_names())
    expected = {"components_file", "thresholded_file", "windows_dir", "mask_file", "fit_seconds"}
    assert outputs == (expected | {"model_file", "model_dir"} if method == "stca" else expected)


@pytest.mark.parametrize("method", INTERFACES)
def test_defaults_are_the_estimators(method):
    interface, estimator_class = INTERFACES[method]
    defaults = estimator_class().get_params()
    inputs = interface().inputs
    params = sorted(set(inputs.copyable_trait_names()) & set(defaults))
    if method == "stca":
        params.remove("threshold")  # deprecated on both; nipype moves it to fbn_threshold
    assert set(SHARED_PARAMS + EXPECTED_PARAMS[method]) <= set(params)
    for name in params:
        assert getattr(inputs, name) == defaults[name], name
        assert inputs.trait(name).usedefault, name


def test_fbn_threshold_names():
    assert STCA().inputs.fbn_threshold == ICA().inputs.fbn_threshold == 3.6
    assert SDL().inputs.fbn_threshold == 3.6
    assert ICA().inputs.threshold == "auto"  # CanICA's own


def test_evaluate_iou_spec():
    inputs = EvaluateIoU.input_spec()
    mandatory = {n for n in inputs.copyable_trait_names() if inputs.trait(n).mandatory}
    assert mandatory == {"components_file", "subject", "method"}
    assert (inputs.templates, inputs.template_threshold, inputs.threshold) == (
        "smith2009",
        3.6,
        3.6,
    )
    assert inputs.strategy == "max"
    assert EvaluateIoU.output_spec().copyable_trait_names() == ["out_csv"]


def test_docstring_examples_pass():
    for module in (interfaces, workflows):
        assert doctest.testmod(module).failed == 0


# ---------------------------------------------------------------------- running the nodes
@pytest.mark.parametrize("method", INTERFACES)
def test_node_writes_maps_fbns_and_windows(ran, files, method):
    outputs, (threads_before, threads_after) = ran[method]
    assert threads_after == threads_before  # num_threads is restored after the node
    n_components = 4 if method == "stca" else 20
    components = load_img(outputs.components_file)
    mask = load_img(files["mask"])
    assert components.shape == (*mask.shape, n_components)
    np.testing.assert_allclose(components.affine, mask.affine)
    fbns = load_img(outputs.thresholded_file)
    np.testing.assert_array_equal(fbns.get_fdata() > 0, components.get_fdata() >= 3.6)
    assert outputs.fit_seconds > 0
    sweep = load_window_sweep(outputs.windows_dir)
    assert sweep.starts.tolist() == STARTS
    assert sweep.metadata["method"] == f"{method.upper()}Decomposition"
    assert sweep.window_img(STARTS[1]).shape == components.shape


@pytest.fixture(scope="module")
def ica_maps(files):
    """The ICA node's settings through the Python API: ``[(window, in-memory maps)...]``.

    With one BLAS thread, as the node runs (``num_threads=1``): FastICA's maps depend on the
    number of BLAS threads.
    """
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        est = ICADecomposition(mask=files["mask"], random_state=0, **WINDOW, **FAST_PARAMS["ica"])
        est.fit(files["runs"][:1])
        return [("static", est.components_), *est.iter_window_maps(files["runs"][0])]


def test_node_gives_the_estimators_maps(ran, files, ica_maps):
    outputs, _ = ran["ica"]
    node_maps = [
        ("static", apply_mask(outputs.components_file, files["mask"])),
        *load_window_sweep(outputs.windows_dir),
    ]
    assert [w for w, _ in node_maps] == [w for w, _ in ica_maps]
    for (_, maps), (_, same) in zip(node_maps, ica_maps, strict=True):
        np.testing.assert_array_equal(maps, same)


@pytest.mark.parametrize("output", ["model_file", "model_dir"])
def test_stca_model_loads_with_the_same_maps(ran, output):
    outputs, _ = ran["stca"]
    model = STCADecomposition.load(getattr(outputs, output), allow_pickle=output == "model_file")
    assert model.get_params()["autoencoder_widths"] == (4, 4, 8, 8)
    assert model.get_params()["n_jobs"] == 1  # the node's num_threads
    np.testing.assert_array_equal(
        apply_mask(outputs.components_file, model.mask_img_), model.components_
    )


def _evaluate(outputs, files, tmp_path, **inputs):
    node = EvaluateIoU(
        components_file=outputs.components_file,
        windows_dir=outputs.windows_dir,
        templates=files["maps"],
        template_threshold=0.5,
        subject="sub-01",
        method="ica",
        **inputs,
    )
    return read_results(_run(node, tmp_path).outputs.out_csv)


def test_evaluate_iou_gives_the_rows_of_score_maps(ran, files, sim, ica_maps, tmp_path):
    outputs, _ = ran["ica"]
    table = _evaluate(
        outputs, files, tmp_path, mask_file=outputs.mask_file, fit_seconds=outputs.fit_seconds
    )
    assert list(table.columns) == [
        "subject",
        "method",
        "window",
        "template",
        "component",
        "iou",
        "dice",
        "runtime",
    ]
    truth = apply_mask(sim.maps_img, sim.mask_img) >= 0.5
    expected = pd.concat(
        [score_maps(maps, truth, sim.network_names).assign(window=w) for w, maps in ica_maps],
        ignore_index=True,
    )
    assert expected.iou.max() > 0  # something to compare
    assert list(table.window) == list(expected.window)
    assert list(table.template) == list(expected.template)
    np.testing.assert_array_equal(table.component, expected.component)
    np.testing.assert_allclose(table.iou, expected.iou)
    np.testing.assert_allclose(table.dice, expected.dice)
    assert (table.subject == "sub-01").all() and (table.method == "ica").all()
    static = table.window == "static"
    # Read back from the CSV: equal to the parser's rounding (pandas 3.0.6 misses a last bit).
    np.testing.assert_allclose(table.runtime[static], outputs.fit_seconds, rtol=1e-12)
    assert table.runtime[~static].isna().all()

    # Without mask_file, the support of the maps is the mask: the same rows.
    pd.testing.assert_frame_equal(
        _evaluate(outputs, files, tmp_path / "no_mask").drop(columns="runtime"),
        table.drop(columns="runtime"),
    )


def test_several_runs_write_one_subfolder_per_run(files, tmp_path):
    confounds = []
    for i in range(2):
        path = tmp_path / f"confounds_{i}.tsv"
        signals = np.random.RandomState(i).randn(50, 2)
        pd.DataFrame(signals, columns=["a", "b"]).to_csv(path, sep="\t", index=False)
        confounds.append(str(path))
    node = STCA(
        in_files=files["runs"],
        confounds_files=confounds,
        mask_file=files["mask"],
        random_state=0,
        sweep_stride=20,
        n_components=2,
        autoencoder_widths=(2, 2, 2, 2),
        num_threads=1,
        **WINDOW,
    )
    outputs = _run(node, tmp_path / "node").outputs
    windows_dir = outputs.windows_dir
    assert sorted(os.listdir(windows_dir)) == ["run-01", "run-02"]
    for run in ("run-01", "run-02"):
        assert load_window_sweep(os.path.join(windows_dir, run)).starts.tolist() == [0, 20]
    evaluate = EvaluateIoU(
        components_file=outputs.components_file,
        windows_dir=windows_dir,
        templates=files["maps"],
        subject="sub-01",
        method="stca",
    )
    with pytest.raises(ValueError, match="several runs"):
        _run(evaluate, tmp_path / "evaluate")
    assert nib.load(outputs.components_file).shape[3] == 2


def test_confounds_files_reach_the_estimator(files, tmp_path):
    path = tmp_path / "confounds.csv"
    pd.DataFrame({"a": np.arange(40.0)}).to_csv(path, index=False)  # 40 rows for 50 scans
    node = SDL(in_files=files["runs"][:1], confounds_files=[str(path)], windows=False, **WINDOW)
    with pytest.raises(ValueError, match="incorrect length"):
        _run(node, tmp_path / "node")


def test_confounds_with_missing_values_are_refused(tmp_path):
    path = tmp_path / "desc-confounds_timeseries.tsv"
    path.write_text("csf\tframewise_displacement\n1.0\tn/a\n2.0\t0.1\n")
    with pytest.raises(ValueError, match="missing values"):
        read_confounds(path)
    path.write_text("csf\tframewise_displacement\n1.0\t0.0\n2.0\t0.1\n")
    assert read_confounds(path).to_dict("list") == {
        "csf": [1.0, 2.0],
        "framewise_displacement": [0.0, 0.1],
    }


def test_stca_node_moves_the_deprecated_threshold_to_fbn_threshold():
    with pytest.warns(UserWarning, match="replaced by fbn_threshold"):
        node = STCA(threshold=2.5)
    assert node.inputs.fbn_threshold == 2.5
    assert "threshold" not in node._params
