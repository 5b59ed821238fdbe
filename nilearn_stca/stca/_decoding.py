"""How a window is rebuilt from spatial maps: least-squares time courses and refinement.

The regression decoder of :class:`~nilearn_stca.stca.network.STCANetwork` rebuilds each
window from its maps with one least-squares time course per map (dual regression's first
stage); the window-adaptive refinement re-estimates the maps from the window as a sparse
nonnegative code on those time courses (its second stage). Plain torch, differentiable.
"""

import torch
from torch.nn import functional as F

#: Ridge added to the maps' Gram matrix, relative to its mean diagonal, so that duplicate or
#: empty maps keep the regression solvable.
REGRESSION_RIDGE = 1e-3

#: Soft-threshold (ISTA) iterations of the sparse nonnegative code in each refinement step.
REFINE_ISTA_ITERATIONS = 5


def least_squares_timecourses(windows, maps):
    """Time courses (B, C, T) that best rebuild ``windows`` (B, T, N) from ``maps`` (B, C, N).

    Lightly ridged least squares (:data:`REGRESSION_RIDGE`), as in the first stage of dual
    regression; differentiable with respect to the maps.
    """
    gram = maps @ maps.transpose(1, 2)
    scale = gram.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-12)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    gram = gram + REGRESSION_RIDGE * scale[:, None, None] * eye
    return torch.linalg.solve(gram, maps @ windows.transpose(1, 2))


def regression_reconstruction(windows, maps):
    """Least-squares reconstruction of ``windows`` from spatial ``maps``.

    Each window is modelled as its maps times one time course per map, the time courses
    fitted by (lightly ridged) least squares, as in the first stage of dual regression. The
    result is differentiable with respect to the maps.

    Parameters
    ----------
    windows : Tensor, shape (B, T, N)
        Voxel time series of each window (voxels last).
    maps : Tensor, shape (B, C, N)
        Nonnegative spatial maps (the attention ``sigmoid(SA)``), zero outside the brain.

    Returns
    -------
    reconstruction : Tensor, shape (B, T, N)
    """
    return least_squares_timecourses(windows, maps).transpose(1, 2) @ maps


def _standardize_over_brain(maps, mask):
    """Each map (B, C, N) minus its brain mean, over its brain sd; zero outside ``mask``."""
    if mask is None:
        mean, sd = maps.mean(dim=2, keepdim=True), maps.std(dim=2, keepdim=True)
        return (maps - mean) / sd.clamp_min(1e-6)
    n_voxels = mask.sum()
    mean = (maps * mask).sum(dim=2, keepdim=True) / n_voxels
    centred = (maps - mean) * mask
    sd = (centred.square().sum(dim=2, keepdim=True) / n_voxels).sqrt()
    return centred / sd.clamp_min(1e-6)


def refine_maps(
    windows, proposals, n_steps, sparsity, mask=None, n_iterations=REFINE_ISTA_ITERATIONS
):
    """Window-adaptive maps: unrolled dual regression with a sparse nonnegative code.

    The first step regresses the window on the proposals, each standardised over the brain
    (dual regression's first stage, with the proposals as spatial regressors), giving one
    time course per map. Every step then scales the time courses to unit norm and codes each
    voxel on them as a nonnegative lasso (the second stage, sparse), by ``n_iterations``
    soft-threshold (ISTA) iterations, from zero in the first step and from the current maps
    after; later steps fit the time courses to the current maps. A voxel's threshold is
    ``sparsity`` times the norm of its time series: with near-orthogonal time courses, a
    voxel keeps a map where its correlation with the map's time course exceeds ``sparsity``.
    Every operation is differentiable, so the attention that proposes is trained through
    the steps.

    Parameters
    ----------
    windows : Tensor, shape (B, T, N)
    proposals : Tensor, shape (B, C, N)
        The attention's maps; only their pattern over the brain matters (they are
        standardised).
    n_steps : int
        Refinement steps (0 returns ``proposals``).
    sparsity : float
        Soft threshold, as a correlation (0 to 1).
    mask : Tensor, broadcastable to (B, C, N), or None
        The brain voxels of the last axis (None: all).

    Returns
    -------
    maps : Tensor, shape (B, C, N)
        Nonnegative and sparse (zero outside the brain).
    """
    if not n_steps:
        return proposals
    threshold = sparsity * windows.norm(dim=1, keepdim=True)
    regressors = _standardize_over_brain(proposals, mask)
    maps = torch.zeros_like(proposals)
    for _ in range(n_steps):
        timecourses = least_squares_timecourses(windows, regressors)
        norms = timecourses.norm(dim=2, keepdim=True).clamp_min(1e-12)
        timecourses = timecourses / norms
        maps = maps * norms
        gram = timecourses @ timecourses.transpose(1, 2)
        # The step of ISTA: one over the largest eigenvalue of the Gram matrix.
        step = 1.0 / torch.linalg.eigvalsh(gram.detach())[:, -1].clamp_min(1e-6)
        step = step[:, None, None]
        projections = timecourses @ windows
        for _ in range(n_iterations):
            maps = F.relu(maps - step * (gram @ maps - projections) - step * threshold)
        regressors = maps
    return maps
