"""The torch loops behind ``STCADecomposition``: training over windows, attention maps out.

Works on masked runs (float32 arrays of shape (n_scans, n_voxels)) and a
:class:`~nilearn_stca.stca._grid.BrainBox`; knows nothing of images or maskers.

Two ways to evaluate the network give the same numbers (to float32 rounding):
``"fft"`` runs the STCA block's convolutions through the FFT on the brain alone
(:mod:`nilearn_stca.stca._spectral`), ``"direct"`` runs the plain
:class:`~nilearn_stca.stca.network.STCANetwork` over the whole box and is kept as the reference.
"""

import contextlib

import numpy as np
import torch
from joblib import effective_n_jobs
from tqdm.auto import tqdm

from ..windows import subject_windows
from ._spectral import SpectralGrid

#: The ways to evaluate the network, fast first.
CONV_ALGORITHMS = ("fft", "direct")

#: ``conv_algorithm`` values the estimator accepts: "auto" picks one per device.
CONV_ALGORITHM_CHOICES = ("auto", *CONV_ALGORITHMS)


def torch_threads_for(n_jobs):
    """PyTorch's intra-op threads for an estimator's ``n_jobs``: None keeps PyTorch's own.

    A positive ``n_jobs`` is that many threads; -1 is every CPU, -2 all but one, as in
    joblib.
    """
    return None if n_jobs is None else effective_n_jobs(n_jobs)


@contextlib.contextmanager
def torch_threads(num_threads):
    """Run with ``num_threads`` PyTorch intra-op threads (None: unchanged), restored after."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_conv_algorithm(choice, device_type):
    """The convolution path for ``choice`` on a device of type ``device_type``.

    "auto" is "fft" on CPU, where it is measured 10 to 20 times faster than direct
    convolutions (``benchmarks/README.md``), and "direct" elsewhere: on CUDA, cuDNN's
    convolutions have not been measured against the FFT path.
    """
    if choice != "auto":
        return choice
    return "fft" if device_type == "cpu" else "direct"


#: Windows per forward pass when computing attention maps (memory stays bounded by it).
INFERENCE_BATCH_SIZE = {"fft": 1, "direct": 4}


def spectral_grid(network, box, device):
    """The FFT grid the ``"fft"`` algorithm evaluates ``network``'s STCA block on."""
    return SpectralGrid(box, radius=network.stca.embed.kernel_size[0] // 2, device=device)


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
    conv_algorithm="fft",
    verbose=0,
):
    """Train ``network`` to reconstruct every window of every run; return the step losses.

    Each epoch visits all windows (never across two runs) in an order drawn from ``rng``,
    ``batch_size`` windows per Adam step. The loss is the mean squared reconstruction error
    over the brain voxels of the box.
    """
    device = next(network.parameters()).device
    if conv_algorithm == "fft":
        grid = spectral_grid(network, box, device)

        def forward(windows):
            return grid.forward(network, windows)
    else:

        def forward(windows):
            return network(windows, mask)

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
                reconstruction, _ = forward(windows)
                squared_error = (reconstruction - windows) ** 2 * mask
                loss = squared_error.sum() / (n_brain * windows.shape[0] * windows.shape[1])
                losses.append(float(loss.detach()))
                if not np.isfinite(losses[-1]):
                    raise ValueError(
                        f"STCA training diverged: the loss became {losses[-1]} at step "
                        f"{len(losses)} of {steps_per_epoch * n_epochs}. Lower learning_rate "
                        f"(now {learning_rate:g}; the paper's is 1e-4)."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    network.eval()
    return losses


def iter_attention_logits(
    network,
    run,
    starts,
    window_length,
    box,
    conv_algorithm="fft",
    verbose=0,
    desc="windows",
    batch_size=None,
    num_threads=None,
):
    """Yield ``(start, FBN maps)`` for each window start of one run, as (C, n_voxels) arrays.

    The FBN maps are the SA logits, or the decoded maps where the network has them
    (:meth:`~nilearn_stca.stca.network.STCANetwork.fbn_maps`).

    Windows go through the network ``batch_size`` at a time (by default
    :data:`INFERENCE_BATCH_SIZE`), without the autoencoder; only one batch is held in memory.
    ``num_threads``: PyTorch's threads while a batch is computed (None: unchanged); the
    caller's code between windows runs with its own.
    """
    device = next(network.parameters()).device
    batch_size = batch_size or INFERENCE_BATCH_SIZE[conv_algorithm]
    if conv_algorithm == "fft":
        grid = spectral_grid(network, box, device)

        def logits(batch):
            windows = np.stack([run[start : start + window_length] for start in batch])
            windows = torch.from_numpy(windows).to(device)
            grids = grid.to_grid(windows)
            sa = grid.to_vectors(grid.attention_logits(network.stca, grids)[1])
            return network.fbn_maps(windows, sa)
    else:
        mask = box.mask_tensor(device)

        def logits(batch):
            windows = windows_tensor([run], [(0, s) for s in batch], window_length, box, device)
            sa = box.to_vectors(network.attention_logits(windows, mask))
            return network.fbn_maps(box.to_vectors(windows), sa)

    with tqdm(total=len(starts), desc=desc, disable=not verbose) as bar:
        for first in range(0, len(starts), batch_size):
            batch_starts = starts[first : first + batch_size]
            # Inference mode is entered per batch, never held across a yield: the caller's
            # code between windows (or after it stops iterating) must run in normal mode.
            with torch_threads(num_threads), torch.inference_mode():
                batch_logits = logits(batch_starts).cpu().numpy()
            yield from zip((int(s) for s in batch_starts), batch_logits, strict=True)
            bar.update(len(batch_starts))
