import numpy as np

from nilearn_stca.windows import subject_windows, window_starts


def test_window_starts():
    np.testing.assert_array_equal(window_starts(60, 40), np.arange(21))
    np.testing.assert_array_equal(window_starts(60, 40, 7), [0, 7, 14])
    assert window_starts(39, 40).size == 0
    assert len(window_starts(1200, 40)) == 1161


def test_windows_never_cross_subjects():
    n_scans = [50, 45, 40, 30]
    pairs = subject_windows(n_scans, window_length=40, window_stride=2)
    assert pairs.shape == (6 + 3 + 1 + 0, 2)
    for subject, start in pairs:
        assert start + 40 <= n_scans[subject]
    np.testing.assert_array_equal(pairs[:, 0], [0] * 6 + [1] * 3 + [2])
    assert subject_windows([10], 40).shape == (0, 2)
