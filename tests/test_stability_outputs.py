"""write_stability and plot_stability: the written table, maps, figure and record."""

import errno
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from nilearn.image import load_img
from nilearn.masking import apply_mask

from nilearn_stca.baselines import ICADecomposition
from nilearn_stca.evaluation.stability import stability, write_stability
from nilearn_stca.evaluation.stability_figures import plot_stability


@pytest.fixture(scope="module")
def same_seed(sim):
    """ICA refitted three times with one seed: three copies of each map."""
    estimator = ICADecomposition(n_components=3, n_init=1, mask=sim.mask_img)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on small data
        return stability(estimator, sim.func[0], random_states=[7, 7, 7])


def test_the_written_table_of_one_seed_repeated(same_seed, sim, tmp_path):
    files = write_stability(same_seed, tmp_path / "out", settings={"method": "ica"})
    assert sorted(files) == sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(files) == [
        "desc-centrotypes_components.nii.gz",
        "stability.json",
        "stability.png",
        "stability.tsv",
    ]
    table = pd.read_csv(tmp_path / "out" / "stability.tsv", sep="\t", index_col="cluster")
    # Each cluster holds the same map of every run: identical within, so the index is
    # 1 minus the similarity to the other clusters' maps.
    np.testing.assert_allclose(table.intra_similarity, 1.0, atol=1e-6)
    np.testing.assert_allclose(table.stability_index, 1.0 - table.extra_similarity, atol=1e-6)
    np.testing.assert_array_equal(table.n_runs, [3, 3, 3])
    pd.testing.assert_frame_equal(table, same_seed.table, check_dtype=False)
    maps = apply_mask(
        load_img(tmp_path / "out" / "desc-centrotypes_components.nii.gz"), sim.mask_img
    )
    np.testing.assert_allclose(maps, same_seed.components_)
    record = json.loads((tmp_path / "out" / "stability.json").read_text())
    assert record["settings"] == {"method": "ica"} and record["random_states"] == [7, 7, 7]
    assert record["stability_index"]["max"] == pytest.approx(table.stability_index.max())
    assert (tmp_path / "out" / "stability.png").read_bytes().startswith(b"\x89PNG")


def test_plot_stability_shows_every_cluster_and_the_maps_by_cluster(same_seed):
    figure = plot_stability(same_seed, title="ICA")
    bars, matrix = figure.axes[:2]
    heights = [patch.get_height() for patch in bars.patches]
    np.testing.assert_allclose(heights, same_seed.table.stability_index)
    assert [text.get_text() for text in bars.texts] == ["3/3", "3/3", "3/3"]
    shown = matrix.collections[0].get_array().reshape(9, 9)
    order = np.argsort(same_seed.labels, kind="stable")
    np.testing.assert_allclose(shown, same_seed.similarity[np.ix_(order, order)])
    np.testing.assert_allclose(shown[:3, :3], 1.0, atol=1e-6)  # cluster 0: three copies


def test_another_run_is_refused_and_a_failure_leaves_no_file(same_seed, tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_stability(same_seed, out, settings={"method": "ica"})
    write_stability(same_seed, out, settings={"method": "ica"})  # the same run again
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(ValueError, match="holds another run"):
        write_stability(same_seed, out, settings={"method": "sdl"})
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("nilearn_stca.evaluation.stability_figures.plot_stability", fail)
    with pytest.raises(OSError, match="No space left"):
        write_stability(same_seed, tmp_path / "new")
    assert not (tmp_path / "new").exists()
