import json

import numpy as np
import pytest
from nilearn.masking import apply_mask

from nilearn_stca import load_window_sweep, write_window_sweep
from nilearn_stca.baselines import SDLDecomposition


def test_sweep_round_trip(fitted, tiny_run, tmp_path):
    img, mask = tiny_run
    sweep = write_window_sweep(fitted, img, tmp_path / "sweep", stride=3)
    expected = list(fitted.iter_window_maps(img, stride=3))
    assert sweep.starts.tolist() == [start for start, _ in expected] == list(range(0, 41, 3))
    assert sweep.maps.shape == (len(expected), 3, int(mask.get_fdata().sum()))
    assert isinstance(sweep.maps, np.memmap)
    for (start, maps), (read_start, read_maps) in zip(expected, sweep, strict=True):
        assert start == read_start
        np.testing.assert_array_equal(maps, read_maps)
    np.testing.assert_array_equal(apply_mask(sweep.window_img(6), mask), expected[2][1])
    fbns = sweep.fbns_img(6)
    np.testing.assert_array_equal(
        apply_mask(fbns, mask), (expected[2][1] >= fitted.fbn_threshold).astype(np.uint8)
    )
    metadata = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert metadata["method"] == "STCADecomposition"
    assert metadata["stride"] == 3 and metadata["window_length"] == 10
    reread = load_window_sweep(tmp_path / "sweep")
    np.testing.assert_array_equal(reread.maps, sweep.maps)
    with pytest.raises(ValueError, match="No window starts at scan 7"):
        sweep.window_img(7)


def test_sweep_of_a_baseline(tiny_run, tmp_path):
    img, mask = tiny_run
    sdl = SDLDecomposition(mask=mask, n_components=3, window_length=20, random_state=0)
    sdl.fit(img)
    sweep = write_window_sweep(sdl, img, tmp_path / "sdl", stride=15)
    assert sweep.starts.tolist() == [0, 15, 30]
    assert sweep.metadata["threshold"] == sdl.fbn_threshold
    np.testing.assert_array_equal(sweep.maps[1], dict(sdl.iter_window_maps(img, stride=15))[15])


def test_sweep_refuses_an_existing_folder_and_leaves_nothing_on_error(fitted, tiny_run, tmp_path):
    img, _ = tiny_run
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="choose a new folder"):
        write_window_sweep(fitted, img, tmp_path / "taken")
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        write_window_sweep(fitted, img, tmp_path / "bad", stride=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    with pytest.raises(ValueError, match="not a window sweep folder"):
        load_window_sweep(tmp_path / "taken")


def test_sweep_with_fit_is_the_fit_and_the_sweep_in_one_pass(fitted, tiny_run, tmp_path):
    from conftest import TINY_STCA

    from nilearn_stca import STCADecomposition

    img, mask = tiny_run
    estimator = STCADecomposition(mask=mask, **TINY_STCA)
    sweep = write_window_sweep(estimator, img, tmp_path / "one_pass", fit=True)
    expected = write_window_sweep(fitted, img, tmp_path / "two_passes")
    assert sweep.starts.tolist() == expected.starts.tolist() == list(range(0, 41, 5))
    np.testing.assert_array_equal(sweep.maps, expected.maps)
    np.testing.assert_array_equal(estimator.components_, fitted.components_)
    with pytest.raises(FileExistsError, match="choose a new folder"):
        write_window_sweep(STCADecomposition(mask=mask), img, tmp_path / "one_pass", fit=True)
