"""The signals of the simulator: network time courses, on/off envelopes, noise.

Used by :func:`~nilearn_stca.datasets.simulate_dynamic_rsfmri`; every function draws from
the generator it is given, in a fixed order, so that a seed gives the same run.
"""

import numpy as np
from nilearn.signal import butterworth
from scipy.ndimage import convolve1d, gaussian_filter
from scipy.signal import lfilter

# Time courses.
_NEURAL_BAND_HZ = (0.01, 0.1)
_MIN_NEURAL_SCANS = 256

# On/off envelopes. Durations are in scans for a run of
# _ENVELOPE_REFERENCE_SCANS scans and shrink proportionally for shorter runs.
_ENVELOPE_REFERENCE_SCANS = 300
_ON_SCANS = (40, 120)
_OFF_SCANS = (30, 90)
RAMP_SCANS = 10
_ON_FRACTION_RANGE = (0.3, 0.8)
_MAX_ENVELOPE_DRAWS = 1000

# Noise.
_NOISE_FWHM_VOXELS = 1.5
_NOISE_AR_COEF = 0.3
_DRIFT_STD = 0.3  # relative to the standard deviation of the AR(1) noise
_CHUNK_VOXELS = 2**23  # noise volumes are generated ~32 MB (float32) at a time


def network_timecourses(n_scans, n_networks, t_r, hrf, rng):
    """Band-limited Gaussian noise convolved with the HRF, standardized."""
    # Simulate a longer signal and keep its end: this avoids the ramp-up
    # of the HRF convolution and lets the filter reach low frequencies.
    n_total = max(n_scans + len(hrf), _MIN_NEURAL_SCANS)
    neural = rng.standard_normal((n_total, n_networks))
    nyquist = 0.5 / t_r
    high_pass, low_pass = _NEURAL_BAND_HZ
    low_pass = low_pass if low_pass < 0.9 * nyquist else None
    high_pass = high_pass if high_pass < 0.5 * nyquist else None
    neural = butterworth(neural, 1 / t_r, low_pass=low_pass, high_pass=high_pass, copy=True)
    bold = lfilter(hrf, [1.0], neural, axis=0)[-n_scans:]
    bold -= bold.mean(axis=0)
    bold /= bold.std(axis=0)
    return bold


def on_off_envelope(n_scans, rng):
    """Smooth on/off envelope in [0, 1], see Notes of simulate_dynamic_rsfmri."""
    scale = envelope_scale(n_scans)
    kernel = ramp_kernel(int(round(RAMP_SCANS * scale)))
    for _ in range(_MAX_ENVELOPE_DRAWS):
        states = _random_on_off_states(n_scans, scale, rng)
        # Convolving the 0/1 states with a normalized half-sine turns each
        # switch into a raised-cosine ramp and keeps values in [0, 1].
        envelope = np.clip(convolve1d(states, kernel, mode="nearest"), 0, 1)
        on_fraction = np.mean(envelope > 0.5)
        if _ON_FRACTION_RANGE[0] <= on_fraction <= _ON_FRACTION_RANGE[1]:
            break
    return envelope


def ramp_kernel(n_ramp_scans):
    """A normalized half-sine of ``n_ramp_scans``: convolved with 0/1 states, a smooth ramp."""
    if n_ramp_scans < 2:
        return np.ones(1)
    kernel = np.sin(np.pi * (np.arange(n_ramp_scans) + 0.5) / n_ramp_scans)
    return kernel / kernel.sum()


def _random_on_off_states(n_scans, scale, rng):
    """Alternate on (1) and off (0) periods, starting at a random phase."""
    states = np.empty(n_scans)
    is_on = rng.random() < 0.5
    start = 0
    while start < n_scans:
        low, high = _ON_SCANS if is_on else _OFF_SCANS
        duration = max(1, int(round(rng.uniform(low, high) * scale)))
        if start == 0:
            duration = rng.integers(1, duration + 1)
        states[start : start + duration] = is_on
        start += duration
        is_on = not is_on
    return states


def smooth_ar1_noise(n_scans, mask, rng):
    """Return spatially smooth AR(1) noise plus drifts, (n_scans, n_voxels).

    The AR(1) part has unit variance over the mask.
    """
    sigma = _NOISE_FWHM_VOXELS / np.sqrt(8 * np.log(2))
    noise = np.empty((n_scans, int(mask.sum())), dtype=np.float32)
    chunk_size = max(1, _CHUNK_VOXELS // mask.size)
    ar_state = np.zeros((1, noise.shape[1]), dtype=np.float32)
    for start in range(0, n_scans, chunk_size):
        volumes = rng.standard_normal(
            (min(chunk_size, n_scans - start), *mask.shape), dtype=np.float32
        )
        volumes = gaussian_filter(volumes, sigma=(0, sigma, sigma, sigma))
        innovations = volumes[:, mask]
        if start == 0:
            # start from the stationary distribution of the AR(1) process
            innovations[0] /= np.sqrt(1 - _NOISE_AR_COEF**2)
        noise[start : start + len(innovations)], ar_state = lfilter(
            [1.0], [1.0, -_NOISE_AR_COEF], innovations, axis=0, zi=ar_state
        )
    noise /= noise.std()

    time = np.linspace(-1, 1, n_scans)
    drift_regressors = np.column_stack([time, np.cos(np.pi * (time + 1) / 2)])
    drift_weights = rng.normal(0, _DRIFT_STD, size=(2, noise.shape[1]))
    noise += (drift_regressors @ drift_weights).astype(np.float32)
    return noise


def add_network_signal(masked_data, network_signals, maps, snr, core_voxels):
    """Add the network signal to the noise in place, scaled to reach snr."""
    core_signal = network_signals @ maps[:, core_voxels]
    signal_std = np.sqrt(np.mean(core_signal.var(axis=0)))
    noise_std = np.sqrt(np.mean(masked_data[:, core_voxels].var(axis=0)))
    scaled_signals = (snr * noise_std / signal_std) * network_signals
    chunk_size = max(1, _CHUNK_VOXELS // masked_data.shape[1])
    for start in range(0, len(masked_data), chunk_size):
        stop = start + chunk_size
        masked_data[start:stop] += (scaled_signals[start:stop] @ maps).astype(np.float32)


def envelope_scale(n_scans):
    """How much the envelopes' durations shrink for a run shorter than the reference."""
    return min(1.0, n_scans / _ENVELOPE_REFERENCE_SCANS)
