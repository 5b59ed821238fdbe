import numpy as np
import pytest

from nilearn_stca.evaluation import dice_matrix, iou_matrix, match_components


def test_iou_and_dice_by_hand():
    components = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0]], bool)
    templates = np.array([[1, 0, 0, 0, 0], [0, 1, 1, 1, 0]], bool)
    # component 0 vs template 1: intersection 1, union 4 -> 0.25; Dice 2 * 1 / (2 + 3) = 0.4
    np.testing.assert_allclose(
        iou_matrix(components, templates), [[1 / 2, 1 / 4], [0, 2 / 3], [0, 0]]
    )
    np.testing.assert_allclose(
        dice_matrix(components, templates), [[2 / 3, 2 / 5], [0, 4 / 5], [0, 0]]
    )
    assert iou_matrix(templates, templates)[0, 0] == 1


def test_iou_rejects_mismatched_voxels():
    with pytest.raises(ValueError, match="same number of voxels"):
        iou_matrix(np.ones((2, 5), bool), np.ones((2, 4), bool))


def test_max_vs_hungarian_matching():
    scores = np.array([[0.9, 0.8], [0.1, 0.7], [0.0, 0.0]])
    best = match_components(scores, "max")
    # Max matching lets component 0 serve both templates, as in the paper.
    assert best.component.tolist() == [0, 0]
    np.testing.assert_allclose(best.score, [0.9, 0.8])
    one_to_one = match_components(scores, "hungarian")
    assert one_to_one.component.tolist() == [0, 1]
    np.testing.assert_allclose(one_to_one.score, [0.9, 0.7])
    # More templates than components: the one left over scores 0.
    short = match_components(scores[:1], "hungarian")
    assert short.component.tolist() == [0, -1]
    np.testing.assert_allclose(short.score, [0.9, 0.0])
    with pytest.raises(ValueError, match="strategy='best'"):
        match_components(scores, "best")


@pytest.mark.parametrize("strategy", ["max", "hungarian"])
def test_a_template_nothing_overlaps_has_no_match(strategy):
    scores = np.array([[0.5, 0.0, 0.0], [0.2, 0.0, 0.3]])
    matches = match_components(scores, strategy)
    assert matches.component.tolist()[1] == -1
    assert matches.score.tolist()[1] == 0.0


def test_score_against_truth_recovers_planted_networks_exactly():
    import nibabel as nib

    from nilearn_stca.evaluation.truth import score_against_truth
    from nilearn_stca.maps import zscore_maps

    rng = np.random.RandomState(0)
    truth = np.zeros((3, 6, 6, 6), np.float32)
    truth[0, :2], truth[1, 3:, :2], truth[2, 4:, 4:, 4:] = 1.0, 0.8, 0.6
    truth[0, 2] = 0.3  # below the 0.5 core threshold: not part of network 0
    affine = np.eye(4)
    mask = nib.Nifti1Image(np.ones((6, 6, 6), np.uint8), affine)
    maps_img = nib.Nifti1Image(np.moveaxis(truth, 0, -1), affine)
    cores = truth.reshape(3, -1) >= 0.5
    # Component 1 is network 2, component 3 network 0; network 1 has no component.
    z = zscore_maps(rng.randn(4, 216) * 0.01)
    z[1, cores[2]] = 10
    z[3, cores[0]] = 10
    scores = score_against_truth(z, maps_img, mask, network_names=["a", "b", "c"])
    assert scores.network.tolist() == ["a", "b", "c"]
    assert scores.component.tolist()[::2] == [3, 1]
    np.testing.assert_allclose(scores.iou, [1.0, 0.0, 1.0])
    np.testing.assert_allclose(scores.dice, [1.0, 0.0, 1.0])


def test_score_windows_only_counts_active_networks():
    import nibabel as nib

    from nilearn_stca.evaluation.truth import score_windows_against_truth

    affine = np.eye(4)
    truth = np.zeros((4, 4, 4, 2), np.float32)
    truth[:2, ..., 0] = 1
    truth[3, ..., 1] = 1
    mask = nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), affine)
    cores = truth.reshape(64, 2).T > 0
    perfect = np.where(cores, 5.0, -0.5)  # map k is network k
    amplitudes = np.zeros((30, 2))
    amplitudes[:15, 0] = 1  # network 0 on in the first half, network 1 in the second
    amplitudes[15:, 1] = 1
    windows = [(0, perfect), (5, perfect), (15, perfect[::-1]), (20, np.zeros((2, 64)))]
    scores = score_windows_against_truth(
        iter(windows),
        nib.Nifti1Image(truth, affine),
        mask,
        amplitudes,
        window_length=10,
        network_names=["a", "b"],
    )
    # Window 5 spans scans 5-14: only network 0 is on; window 20: only network 1.
    assert scores.start_scan.tolist() == [0, 5, 15, 20]
    assert scores.network.tolist() == ["a", "a", "b", "b"]
    np.testing.assert_allclose(scores.iou, [1, 1, 1, 0])
    assert scores.component.tolist()[:3] == [0, 0, 0]  # reversed maps in window 15
    np.testing.assert_allclose(scores.correlation, [1, 1, 1, 0])
    assert scores.correlated_component.tolist()[:3] == [0, 0, 0]
