"""STCA on a CUDA device gives the CPU's numbers (skipped where no CUDA device is present).

CI machines have no GPU; these run where one is (``python -m pytest tests/test_cuda.py``).
cuDNN may use TF32 for float32 convolutions, so CUDA and CPU agree to about 1e-3, not to
float32 rounding.
"""

import pickle

import numpy as np
import pytest
import torch
from conftest import TINY_STCA

from nilearn_stca import PAPER_SETTINGS, STCADecomposition

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

#: The configurations checked: the defaults, the paper's network, and every lever at once.
CONFIGS = {
    "defaults": {},
    "paper": {**PAPER_SETTINGS, "n_components": 3},
    "levers": {
        "channel_pooling": "mean_std_max",
        "coordinate_channels": True,
        "map_activation": "softmax",
        "refine_steps": 2,
    },
}


def _fit(tiny_run, device, **params):
    img, mask = tiny_run
    settings = {**TINY_STCA, "device": device, "static_maps": "mean", **params}
    return STCADecomposition(mask=mask, **settings).fit(img)


def test_auto_device_is_cuda(tiny_run):
    est = _fit(tiny_run, "auto")
    assert next(est.network_.parameters()).device.type == "cuda"
    assert est._conv_path() == "direct"


@pytest.mark.parametrize("config", CONFIGS)
def test_cuda_training_and_maps_follow_the_cpu(tiny_run, config):
    img, _ = tiny_run
    cpu = _fit(tiny_run, "cpu", conv_algorithm="direct", **CONFIGS[config])
    cuda = _fit(tiny_run, "cuda", **CONFIGS[config])
    # Same seed, same start: the first loss agrees; later steps drift by TF32 rounding.
    assert cuda.loss_curve_[0] == pytest.approx(cpu.loss_curve_[0], rel=1e-3)
    np.testing.assert_allclose(cuda.loss_curve_, cpu.loss_curve_, rtol=5e-2)
    # With the same weights, the window maps agree. TF32 rounding of the convolutions
    # passes the refinement's least squares and thresholds: up to 0.023 z measured there.
    cuda.network_.load_state_dict(cpu.network_.state_dict())
    tolerance = 2e-2 if cpu.network_.maps_are_logits else 1e-1
    for (start, a), (_, b) in zip(
        cuda.iter_window_maps(img), cpu.iter_window_maps(img), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=tolerance, err_msg=f"window {start}")


def test_fft_path_on_cuda_gives_the_direct_maps(tiny_run):
    img, _ = tiny_run
    direct = _fit(tiny_run, "cuda", **CONFIGS["levers"])
    fft = pickle.loads(pickle.dumps(direct)).set_params(conv_algorithm="fft")
    fft.network_.to("cuda")
    assert fft._conv_path() == "fft"
    for (start, a), (_, b) in zip(
        fft.iter_window_maps(img), direct.iter_window_maps(img), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=2e-2, err_msg=f"window {start}")


def test_cuda_model_loads_on_cpu(tiny_run, tmp_path):
    img, _ = tiny_run
    est = _fit(tiny_run, "cuda")
    path = est.save(tmp_path / "model")
    loaded = STCADecomposition.load(path)
    assert next(loaded.network_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(loaded.components_, est.components_, atol=1e-6)
    maps_cuda = dict(est.iter_window_maps(img))
    for start, maps in loaded.iter_window_maps(img):
        np.testing.assert_allclose(maps, maps_cuda[start], atol=2e-2, err_msg=f"window {start}")
