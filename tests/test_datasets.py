import importlib
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from nilearn_stca.datasets import SMITH2009_RSN10_NAMES, _networks, simulate_dynamic_rsfmri

SHARED_NILEARN_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nilearn_data"
SMITH2009_FILE = SHARED_NILEARN_DATA / "smith_2009" / "PNAS_Smith09_rsn10.nii.gz"

# Small enough to keep every test well under a second.
FAST = {"n_scans": 80, "resolution": 8, "networks": "procedural"}


def _masked(data):
    """Return the mask, the maps (n_networks, n_voxels) and signals (n_scans, n_voxels)."""
    mask = data.mask_img.get_fdata() > 0
    maps = data.maps_img.get_fdata()[mask].T
    signals = [img.get_fdata()[mask].T for img in data.func]
    return mask, maps, signals


def _cube_mask(size=12, voxel_mm=4.0):
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -voxel_mm * size / 2
    return nib.Nifti1Image(np.ones((size,) * 3, dtype=np.uint8), affine)


@pytest.fixture
def no_smith_data(tmp_path, monkeypatch):
    """Point every nilearn data directory to an empty folder; forbid the fetcher."""
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NILEARN_SHARED_DATA", raising=False)

    def fail_if_called(*args, **kwargs):
        raise AssertionError("the Smith 2009 fetcher must not be called without its file")

    monkeypatch.setattr(_networks, "fetch_atlas_smith_2009", fail_if_called)


@pytest.fixture
def smith_data(monkeypatch):
    if not SMITH2009_FILE.is_file():
        pytest.skip(f"Smith 2009 maps not found at {SMITH2009_FILE} (offline copy absent)")
    monkeypatch.setenv("NILEARN_DATA", str(SHARED_NILEARN_DATA))
    monkeypatch.delenv("NILEARN_SHARED_DATA", raising=False)


def test_outputs_share_one_grid():
    data = simulate_dynamic_rsfmri(n_subjects=2, t_r=2.0, **FAST)

    assert data.mask_img.shape == (26, 30, 25)
    assert data.mask_img.get_data_dtype() == np.uint8
    assert set(np.unique(data.mask_img.get_fdata())) == {0, 1}
    assert data.maps_img.shape == (26, 30, 25, 10)
    assert data.maps_img.get_data_dtype() == np.float32
    assert len(data.func) == 2
    for img in data.func:
        assert img.shape == (26, 30, 25, 80)
        assert img.get_data_dtype() == np.float32
        assert img.header.get_zooms() == (8.0, 8.0, 8.0, 2.0)
    for img in [data.maps_img, *data.func]:
        np.testing.assert_array_equal(img.affine, data.mask_img.affine)
    for per_subject in (data.timecourses, data.amplitudes):
        assert len(per_subject) == 2
        assert all(array.shape == (80, 10) for array in per_subject)
    assert data.network_names == [f"network_{k}" for k in range(1, 11)]
    assert data.networks == "procedural"
    assert data.t_r == 2.0
    assert "10 procedural networks" in data.description
    assert "snr = 1.0" in data.description


@pytest.mark.parametrize(("resolution", "shape"), [(4, (50, 59, 48)), (8, (26, 30, 25))])
def test_grid_is_the_mni152_brain_mask(resolution, shape):
    data = simulate_dynamic_rsfmri(n_scans=2, resolution=resolution, networks="procedural")

    assert data.func[0].shape == (*shape, 2)
    np.testing.assert_array_equal(np.diag(data.mask_img.affine)[:3], [resolution] * 3)


def test_same_random_state_gives_identical_data():
    first = simulate_dynamic_rsfmri(n_subjects=2, **FAST, random_state=3)
    second = simulate_dynamic_rsfmri(n_subjects=2, **FAST, random_state=np.random.RandomState(3))

    np.testing.assert_array_equal(first.maps_img.get_fdata(), second.maps_img.get_fdata())
    for key in ("timecourses", "amplitudes"):
        for a, b in zip(first[key], second[key], strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(first.func, second.func, strict=True):
        np.testing.assert_array_equal(a.get_fdata(), b.get_fdata())


def test_other_random_state_gives_other_data():
    first = simulate_dynamic_rsfmri(**FAST, random_state=0)
    second = simulate_dynamic_rsfmri(**FAST, random_state=1)

    assert not np.allclose(first.maps_img.get_fdata(), second.maps_img.get_fdata())
    assert not np.allclose(first.timecourses[0], second.timecourses[0])
    assert not np.allclose(first.func[0].get_fdata(), second.func[0].get_fdata())


def test_subjects_share_maps_but_not_time_courses():
    two = simulate_dynamic_rsfmri(n_subjects=2, **FAST)
    one = simulate_dynamic_rsfmri(n_subjects=1, **FAST)

    assert not np.allclose(two.timecourses[0], two.timecourses[1])
    assert not np.allclose(two.amplitudes[0], two.amplitudes[1])
    # adding subjects changes neither the maps nor the first subject
    np.testing.assert_array_equal(one.maps_img.get_fdata(), two.maps_img.get_fdata())
    np.testing.assert_array_equal(one.func[0].get_fdata(), two.func[0].get_fdata())


def _check_maps(data):
    mask = data.mask_img.get_fdata() > 0
    maps = data.maps_img.get_fdata()
    assert np.all(maps[~mask] == 0)
    maps = maps[mask].T
    np.testing.assert_allclose(maps.max(axis=1), 1, rtol=1e-6)
    assert maps.min() == 0
    assert not np.any((maps > 0) & (maps < 0.05))
    return maps


def test_procedural_maps_are_distinct_smooth_networks():
    data = simulate_dynamic_rsfmri(n_scans=2, resolution=4, networks="procedural")
    maps = _check_maps(data)

    # bilateral networks: the MNI grid is symmetric about x = 0
    volumes = data.maps_img.get_fdata()
    for k in range(10):
        flipped = volumes[::-1, :, :, k]
        assert np.corrcoef(volumes[..., k].ravel(), flipped.ravel())[0, 1] > 0.9

    core = maps >= 0.5
    # blobs of 15-25 mm FWHM: tens of 4 mm voxels above half maximum, not single voxels
    assert np.all(core.sum(axis=1) >= 20)
    assert np.all((maps > 0).sum(axis=1) >= 200)
    # networks barely overlap
    assert np.sum(core.sum(axis=0) > 1) <= 0.02 * core.any(axis=0).sum()
    assert np.sum((maps > 0).sum(axis=0) > 1) <= 0.2 * (maps > 0).any(axis=0).sum()


def test_procedural_maps_on_a_tiny_cube_mask():
    data = simulate_dynamic_rsfmri(n_scans=60, networks="procedural", mask_img=_cube_mask())

    assert data.func[0].shape == (12, 12, 12, 60)
    assert data.networks == "procedural"
    maps = _check_maps(data)
    core = maps >= 0.5
    assert np.all(core.sum(axis=1) >= 2)
    assert np.sum(core.sum(axis=0) > 1) <= 0.1 * core.any(axis=0).sum()


def test_timecourses_are_standardized_low_frequency_signals():
    data = simulate_dynamic_rsfmri(n_scans=300, networks="procedural", mask_img=_cube_mask())
    timecourses = data.timecourses[0]

    np.testing.assert_allclose(timecourses.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(timecourses.std(axis=0), 1)
    power = np.abs(np.fft.rfft(timecourses, axis=0)) ** 2
    frequencies = np.fft.rfftfreq(len(timecourses), d=data.t_r)
    assert np.all(power[frequencies <= 0.12].sum(axis=0) >= 0.9 * power.sum(axis=0))


@pytest.mark.parametrize("n_scans", [60, 300, 1200])
def test_amplitudes_switch_networks_on_and_off(n_scans):
    data = simulate_dynamic_rsfmri(
        n_subjects=2, n_scans=n_scans, networks="procedural", mask_img=_cube_mask(6)
    )

    for amplitudes in data.amplitudes:
        assert amplitudes.min() >= 0
        assert amplitudes.max() <= 1
        on_fraction = np.mean(amplitudes > 0.5, axis=0)
        assert np.all((on_fraction >= 0.3) & (on_fraction <= 0.8))
        # every network is fully on and fully off at some point
        assert np.all(amplitudes.max(axis=0) == 1)
        assert np.all(amplitudes.min(axis=0) == 0)
        # networks do not all switch together
        correlation = np.corrcoef(amplitudes.T)[np.triu_indices(10, k=1)]
        assert np.max(np.abs(correlation)) < 0.95
    if n_scans >= 300:
        # ramps of about 10 scans, not steps
        assert np.abs(np.diff(data.amplitudes[0], axis=0)).max() < 0.2


@pytest.mark.parametrize("snr", [0.5, 1.0, 3.0])
def test_measured_snr_matches_requested_snr(snr):
    # Only the signal scale depends on snr: the difference of two runs
    # isolates the signal exactly, hence the noise.
    data = simulate_dynamic_rsfmri(**FAST, snr=snr)
    _, maps, (signals,) = _masked(data)
    _, _, (signals_doubled_snr,) = _masked(simulate_dynamic_rsfmri(**FAST, snr=2 * snr))
    planted = (data.amplitudes[0] * data.timecourses[0]) @ maps
    signal_difference = signals_doubled_snr - signals
    network_signal = planted * np.sum(signal_difference * planted) / np.sum(planted**2)
    noise = signals - 100 - network_signal

    core = maps.max(axis=0) >= 0.5
    measured = np.sqrt(
        np.sum(network_signal[:, core].var(axis=0)) / np.sum(noise[:, core].var(axis=0))
    )
    assert measured == pytest.approx(snr, rel=1e-3)
    # the noise is unrelated to the network signal
    assert abs(np.corrcoef(noise[:, core].ravel(), planted[:, core].ravel())[0, 1]) < 0.1


def test_baseline_inside_the_mask_and_zero_outside():
    data = simulate_dynamic_rsfmri(**FAST)
    mask = data.mask_img.get_fdata() > 0
    func = data.func[0].get_fdata()

    assert np.all(func[~mask] == 0)
    assert func[mask].mean() == pytest.approx(100, abs=0.1)


def test_voxels_follow_their_network():
    data = simulate_dynamic_rsfmri(**FAST, snr=1.0)
    _, maps, (signals,) = _masked(data)
    network_signals = data.amplitudes[0] * data.timecourses[0]
    core = maps.max(axis=0) >= 0.5
    owner = maps[:, core].argmax(axis=0)

    correlation = np.corrcoef(network_signals.T, signals[:, core].T)[:10, 10:]
    assert np.mean(correlation.argmax(axis=0) == owner) >= 0.9
    # averaged over its voxels, each network follows its planted signal
    network_means = np.column_stack(
        [signals[:, core][:, owner == k].mean(axis=1) for k in range(10)]
    )
    correlation = np.corrcoef(network_signals.T, network_means.T)[:10, 10:]
    np.testing.assert_array_equal(correlation.argmax(axis=0), np.arange(10))
    assert np.all(np.diag(correlation) > 0.6)


def test_custom_maps_are_used_as_given():
    reference = simulate_dynamic_rsfmri(n_scans=2, resolution=8, networks="procedural")
    maps_img = nib.Nifti1Image(reference.maps_img.get_fdata()[..., :4], reference.maps_img.affine)

    data = simulate_dynamic_rsfmri(n_scans=20, resolution=8, networks=maps_img)

    assert data.networks == "custom"
    assert data.network_names == ["network_1", "network_2", "network_3", "network_4"]
    np.testing.assert_allclose(data.maps_img.get_fdata(), maps_img.get_fdata(), atol=1e-6)
    assert data.amplitudes[0].shape == (20, 4)


def test_auto_falls_back_to_procedural_without_smith_file(no_smith_data):
    data = simulate_dynamic_rsfmri(n_scans=20, resolution=8, networks="auto")

    assert data.networks == "procedural"
    assert data.network_names[0] == "network_1"


def test_smith2009_without_its_file_raises(no_smith_data):
    with pytest.raises(ValueError, match=r"networks='smith2009'.*NILEARN_DATA"):
        simulate_dynamic_rsfmri(n_scans=20, resolution=8, networks="smith2009")


@pytest.mark.parametrize("networks", ["smith2009", "auto"])
def test_smith2009_maps_from_the_shared_data(smith_data, networks):
    data = simulate_dynamic_rsfmri(n_scans=20, resolution=8, networks=networks)

    assert data.networks == "smith2009"
    assert data.network_names == list(SMITH2009_RSN10_NAMES)
    maps = _check_maps(data)
    assert np.all((maps >= 0.5).sum(axis=1) >= 10)


def test_smith2009_first_networks(smith_data):
    data = simulate_dynamic_rsfmri(n_scans=20, resolution=8, networks="smith2009", n_networks=4)
    all_networks = simulate_dynamic_rsfmri(n_scans=20, resolution=8, networks="smith2009")

    assert data.network_names == list(SMITH2009_RSN10_NAMES[:4])
    np.testing.assert_array_equal(
        data.maps_img.get_fdata(), all_networks.maps_img.get_fdata()[..., :4]
    )


def test_auto_uses_procedural_networks_beyond_smith_ten(smith_data):
    data = simulate_dynamic_rsfmri(n_scans=20, resolution=8, n_networks=12)

    assert data.networks == "procedural"
    assert data.maps_img.shape[-1] == 12


def test_auto_uses_procedural_networks_on_a_small_mask(smith_data):
    data = simulate_dynamic_rsfmri(n_scans=20, mask_img=_cube_mask())

    assert data.networks == "procedural"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_subjects": 0}, "n_subjects"),
        ({"n_subjects": 1.5}, "n_subjects"),
        ({"n_scans": 1}, "n_scans"),
        ({"n_networks": 0}, "n_networks"),
        ({"resolution": 0}, "resolution"),
        ({"resolution": -4}, "resolution"),
        ({"t_r": 0}, "t_r"),
        ({"t_r": -0.72}, "t_r"),
        ({"t_r": 30}, "t_r"),
        ({"snr": 0}, "snr"),
        ({"snr": -1.0}, "snr"),
        ({"snr": np.inf}, "snr"),
        ({"networks": "smith"}, "networks must be one of"),
        ({"networks": "smith2009", "n_networks": 11}, "n_networks must be at most 10"),
    ],
)
def test_invalid_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_dynamic_rsfmri(**{"n_scans": 20, "resolution": 8, **kwargs})


# ---------------------------------------------------------------------- state mode
def test_state_mode_plants_discrete_states():
    from nilearn_stca.datasets._states import DWELL_SCANS

    data = simulate_dynamic_rsfmri(
        n_subjects=2, n_scans=300, resolution=16, networks="procedural", n_states=4
    )
    assert data.state_networks.shape == (4, 10) and data.state_networks.any(axis=1).all()
    assert len({tuple(row) for row in data.state_networks}) == 4  # distinct sets
    assert "in 4 states" in data.description
    for sequence, amplitudes in zip(data.states, data.amplitudes, strict=True):
        assert sequence.shape == (300,) and set(np.unique(sequence)) <= {0, 1, 2, 3}
        switches = np.flatnonzero(np.diff(sequence)) + 1
        dwells = np.diff(switches)  # complete dwells, between two switches
        assert len(switches) >= 2
        assert dwells.min() >= DWELL_SCANS[0] and dwells.max() <= DWELL_SCANS[1]
        # Away from a switch, a network is fully on exactly when its state holds it.
        far = np.ones(300, bool)
        for switch in switches:
            far[max(0, switch - 5) : switch + 5] = False
        np.testing.assert_array_equal(
            amplitudes[far], data.state_networks[sequence[far]].astype(float)
        )
    assert not np.array_equal(data.states[0], data.states[1])


def test_state_mode_leaves_the_default_mode_unchanged():
    kwargs = {"n_scans": 60, "resolution": 16, "networks": "procedural", "random_state": 3}
    default = simulate_dynamic_rsfmri(**kwargs)
    again = simulate_dynamic_rsfmri(**kwargs)
    states = simulate_dynamic_rsfmri(n_states=3, **kwargs)
    assert default.states is None and default.state_networks is None
    np.testing.assert_array_equal(default.func[0].get_fdata(), again.func[0].get_fdata())
    np.testing.assert_array_equal(default.maps_img.get_fdata(), states.maps_img.get_fdata())
    np.testing.assert_array_equal(default.timecourses[0], states.timecourses[0])
    assert not np.array_equal(default.amplitudes[0], states.amplitudes[0])


@pytest.mark.parametrize(
    ("n_states", "error", "match"),
    [
        (1, ValueError, "n_states must be an integer >= 2, got 1"),
        (True, ValueError, "n_states must be an integer >= 2, got True"),
        (40, ValueError, "n_states=40 is more than the 7 distinct non-empty sets of 3"),
    ],
)
def test_state_mode_refuses_bad_numbers_of_states(n_states, error, match):
    with pytest.raises(error, match=match):
        simulate_dynamic_rsfmri(
            n_scans=60, resolution=16, networks="procedural", n_networks=3, n_states=n_states
        )


# ------------------------------------------------------------------ moved modules
@pytest.mark.parametrize("name", ["networks", "signals", "states"])
def test_old_planted_module_paths_warn_and_give_the_moved_module(name, monkeypatch):
    old = f"nilearn_stca.planted_{name}"
    monkeypatch.delitem(sys.modules, old, raising=False)  # import it afresh
    module = importlib.import_module(old)
    moved = importlib.import_module(f"nilearn_stca.datasets._{name}")
    public = [key for key in vars(moved) if not key.startswith("_")]
    assert public
    for key in public:
        with pytest.warns(FutureWarning, match=f"nilearn_stca.datasets._{name}; this alias"):
            assert getattr(module, key) is getattr(moved, key)
