"""The torch loops behind ``STCADecomposition``: training over windows, attention maps out.

Works on masked runs (float32 arrays of shape (n_scans, n_voxels)) and a
:class:`~nilearn_stca._grid.BrainBox`; knows nothing of images or maskers.
"""

import numpy as np
import torch
from tqdm.auto import tqdm

from .windows import subject_windows

#: Windows per forward pass when computing attention maps (memory stays bounded by it).
INFERENCE_BATCH_SIZE = 4


def windows_tensor(runs, batch, window_length, box, device):
    """Stack the windows ``(subject, start)`` of ``batch`` into (B, T, X, Y, Z) boxes."""
    vectors = np.stack([runs[subject][start : start + window_length] for subject, start in batch])
    return box.to_box(torch.from_numpy(vectors)).to(device)


def train_network(
    network,
    runs,
    box,
    *,
    window_length,
    window_stride,
    n_epochs,
    batch_size,
    learning_rate,
    rng,
    verbose=0,
):
    """Train ``network`` to reconstruct every window of every run; return the step losses.

    Each epoch visits all windows (never across two runs) in an order drawn from ``rng``,
    ``batch_size`` windows per Adam step. The loss is the mean squared reconstruction error
    over the brain voxels of the box.
    """
    device = next(network.parameters()).device
    pairs = subject_windows([len(run) for run in runs], window_length, window_stride)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    mask = box.mask_tensor(device)
    n_brain = mask.sum()
    steps_per_epoch = -(-len(pairs) // batch_size)
    losses = []
    network.train()
    with tqdm(total=steps_per_epoch * n_epochs, desc="STCA training", disable=not verbose) as bar:
        for _ in range(n_epochs):
            order = rng.permutation(len(pairs))
            for first in range(0, len(order), batch_size):
                batch = pairs[order[first : first + batch_size]]
                windows = windows_tensor(runs, batch, window_length, box, device)
                reconstruction, _ = network(windows, mask)
                squared_error = (reconstruction - windows) ** 2 * mask
                loss = squared_error.sum() / (n_brain * windows.shape[0] * windows.shape[1])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    network.eval()
    return losses


def iter_attention_logits(network, run, starts, window_length, box, verbose=0, desc="windows"):
    """Yield ``(start, SA logits)`` for each window start of one run, as (C, n_voxels) arrays.

    Windows go through the network :data:`INFERENCE_BATCH_SIZE` at a time, without the
    autoencoder; only one batch is held in memory.
    """
    device = next(network.parameters()).device
    mask = box.mask_tensor(device)
    with torch.inference_mode(), tqdm(total=len(starts), desc=desc, disable=not verbose) as bar:
        for first in range(0, len(starts), INFERENCE_BATCH_SIZE):
            batch_starts = starts[first : first + INFERENCE_BATCH_SIZE]
            batch = [(0, start) for start in batch_starts]
            windows = windows_tensor([run], batch, window_length, box, device)
            logits = box.to_vectors(network.attention_logits(windows, mask)).cpu().numpy()
            yield from zip((int(s) for s in batch_starts), logits, strict=True)
            bar.update(len(batch_starts))
