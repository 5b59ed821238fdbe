import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from nilearn_stca import STCADecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri

#: The shared nilearn data folder that sits beside a checkout (absent for most users).
SHARED_NILEARN_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nilearn_data"

if "NILEARN_DATA" not in os.environ and SHARED_NILEARN_DATA.is_dir():
    os.environ["NILEARN_DATA"] = str(SHARED_NILEARN_DATA)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per xdist worker (and per notebook kernel it starts): more threads than cores
    # makes PyTorch's OpenMP workers spin against each other and slows the suite several-fold.
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def tiny_run():
    """A 12x12x12 run of 50 scans (4 mm voxels) with a cube mask: shapes and plumbing only."""
    rng = np.random.RandomState(0)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    data = (100 + rng.randn(12, 12, 12, 50)).astype(np.float32)
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[1:11, 2:11, 1:10] = 1
    return nib.Nifti1Image(data, affine), nib.Nifti1Image(mask, affine)


#: STCA settings for the tiny run: 3 maps, windows of 10 scans every 5 (9 windows), a narrow
#: autoencoder. Shapes and plumbing, not recovery.
TINY_STCA = dict(
    n_components=3,
    window_length=10,
    window_stride=5,
    autoencoder_widths=(4, 4, 8, 8),
    device="cpu",
    random_state=0,
)


@pytest.fixture(scope="session")
def sim():
    """Two subjects of 50 scans at 16 mm with 3 procedural networks: the end-to-end data.

    One simulation per test session (and xdist worker) for the comparison, workflow and
    interface tests.
    """
    return simulate_dynamic_rsfmri(
        n_subjects=2, n_scans=50, resolution=16, networks="procedural", n_networks=3, snr=3.0
    )


@pytest.fixture(scope="module")
def fitted(tiny_run):
    """STCA fitted on the tiny run with :data:`TINY_STCA` (one per test module)."""
    img, mask = tiny_run
    return STCADecomposition(mask=mask, **TINY_STCA).fit(img)
