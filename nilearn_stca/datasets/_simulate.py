"""Simulated resting-state fMRI with known, time-varying functional networks.

The data produced here serve as ground truth to evaluate dynamic brain
network decompositions (STCA) and static baselines (ICA, dictionary
learning): the spatial maps, the network time courses and the periods
during which each network is active are all returned with the images.
"""

import numbers

import nibabel as nib
import numpy as np
from nibabel.affines import voxel_sizes
from nilearn.datasets import (
    load_mni152_brain_mask,
)
from nilearn.glm.first_level import spm_hrf
from nilearn.masking import load_mask_img
from sklearn.utils import Bunch, check_random_state

from ._networks import (
    CORE_THRESHOLD,
    SMITH2009_RSN10_NAMES,
    check_networks,
    network_maps,
)
from ._signals import (
    RAMP_SCANS,
    add_network_signal,
    envelope_scale,
    network_timecourses,
    on_off_envelope,
    ramp_kernel,
    smooth_ar1_noise,
)
from ._states import draw_state_networks, draw_state_sequence, state_envelopes

__all__ = ["SMITH2009_RSN10_NAMES", "simulate_dynamic_rsfmri"]


_MAX_T_R = 20.0
_BASELINE = 100.0  # the signal's mean in every voxel


def simulate_dynamic_rsfmri(
    n_subjects=1,
    n_scans=300,
    networks="auto",
    n_networks=10,
    resolution=4,
    t_r=0.72,
    snr=1.0,
    mask_img=None,
    random_state=0,
    n_states=None,
):
    """Simulate resting-state fMRI with known, time-varying networks.

    Each subject's data are the sum of a constant baseline, of a set of
    spatial network maps (shared by all subjects) modulated by their time
    courses, and of structured noise. Each network fades in and out over
    tens of scans, so that the set of active networks changes along the
    run, as in dynamic functional connectivity studies.

    Parameters
    ----------
    n_subjects : :obj:`int`, default=1
        Number of subjects to simulate.

    n_scans : :obj:`int`, default=300
        Number of volumes per subject. Must be at least 2.

    networks : {"auto", "smith2009", "procedural"} or Niimg-like object, \
            default="auto"
        Source of the ground-truth spatial maps:

        - ``"smith2009"``: the 10 resting-state networks of Smith et al.
          (2009) [1]_, read from nilearn's data directory
          (see :func:`nilearn.datasets.get_data_dirs`). They are never
          downloaded here: run
          :func:`nilearn.datasets.fetch_atlas_smith_2009` once with internet
          access, or point the ``NILEARN_DATA`` environment variable to a
          folder containing ``smith_2009/PNAS_Smith09_rsn10.nii.gz``.
        - ``"procedural"``: smooth networks made of 2 or 3 Gaussian blobs
          (a pair symmetric about the mid-sagittal plane of the mask, plus
          sometimes a medial blob), spread over the mask to limit overlap.
          No file is needed.
        - ``"auto"``: ``"smith2009"`` if its file is on disk,
          ``n_networks <= 10`` and the mask holds at least half of each map
          (a whole-brain mask does, a small region of interest does not),
          else ``"procedural"``.
        - a 4D Niimg-like object: one user-supplied map per volume,
          resampled to the output grid.

    n_networks : :obj:`int`, default=10
        Number of networks. With ``"smith2009"`` it must be at most 10 and
        the first ``n_networks`` maps are used. Ignored when ``networks`` is
        an image: all its maps are used.

    resolution : :obj:`int`, default=4
        Voxel size, in mm, of the output grid: that of
        :func:`nilearn.datasets.load_mni152_brain_mask` at this resolution
        (50 x 59 x 48 voxels at 4 mm). Ignored if ``mask_img`` is given.

    t_r : :obj:`float`, default=0.72
        Repetition time, in seconds. At most 20 s, so that the canonical
        HRF (32 s long) spans at least two scans.

    snr : :obj:`float`, default=1.0
        Ratio of the standard deviation of the network signal to that of the
        noise in network voxels. See Notes for the exact definition.

    mask_img : Niimg-like object or None, default=None
        Binary brain mask defining the output grid and the voxels that
        contain signal. If None, the MNI152 brain mask at ``resolution`` is
        used.

    random_state : :obj:`int`, :class:`numpy.random.RandomState` or None, \
            default=0
        Seed or generator controlling all random draws.

    n_states : :obj:`int` or None, default=None
        If given (at least 2), the state mode: the networks switch on and off
        together, as discrete brain states. Each of ``n_states`` states is a
        set of co-active networks (shared by all subjects), and each
        subject's run moves from state to state, dwelling 30 to 90 scans in
        each (shorter for runs under 300 scans); see
        :mod:`nilearn_stca.datasets._states`. If None, each network has its own
        on/off envelope (see Notes).

    Returns
    -------
    data : :obj:`sklearn.utils.Bunch`
        Dictionary-like object with the keys:

        - ``func``: :obj:`list` of 4D :class:`nibabel.nifti1.Nifti1Image`
          (float32), one per subject. Voxels outside the mask are 0.
        - ``mask_img``: 3D :class:`nibabel.nifti1.Nifti1Image` (uint8), the
          brain mask, on the same grid.
        - ``maps_img``: 4D :class:`nibabel.nifti1.Nifti1Image` (float32) of
          shape ``(X, Y, Z, n_networks)``, the ground-truth maps:
          non-negative, each with a maximum of 1, values below 0.05 set to 0
          and zero outside the mask.
        - ``timecourses``: :obj:`list` of :class:`numpy.ndarray` of shape
          ``(n_scans, n_networks)``, one per subject: the network time
          courses before the on/off envelopes are applied (band-limited
          noise convolved with the SPM canonical HRF, standardized to zero
          mean and unit variance).
        - ``amplitudes``: :obj:`list` of :class:`numpy.ndarray` of shape
          ``(n_scans, n_networks)``, one per subject: the on/off envelopes,
          in [0, 1].
        - ``states``: in the state mode, :obj:`list` of :class:`numpy.ndarray`
          of int, shape ``(n_scans,)``, one per subject: the planted state of
          every scan; else None.
        - ``state_networks``: in the state mode, a boolean
          :class:`numpy.ndarray` of shape ``(n_states, n_networks)``: the
          networks each state holds; else None.
        - ``network_names``: :obj:`list` of :obj:`str`.
        - ``networks``: :obj:`str`, the source of the maps actually used:
          ``"smith2009"``, ``"procedural"`` or ``"custom"``.
        - ``t_r``: :obj:`float`, the repetition time in seconds.
        - ``description``: :obj:`str`, a summary of the simulation.

    Notes
    -----
    For subject :math:`s`, voxel :math:`v` in the mask and scan :math:`t`:

    .. math::

        y_s(v, t) = 100 + c_s \\sum_k a_{s,k}(t) x_{s,k}(t) m_k(v)
        + n_s(v, t)

    where :math:`m_k` are the maps (``maps_img``), :math:`x_{s,k}` the time
    courses (``timecourses``), :math:`a_{s,k}` the envelopes
    (``amplitudes``) and :math:`n_s` the noise: Gaussian noise smoothed in
    space (FWHM 1.5 voxels), AR(1) in time (coefficient 0.3), plus a slow
    drift (a random linear trend and half-period cosine per voxel).

    Each envelope alternates "on" (40 to 120 scans) and "off" (30 to 90
    scans) periods of random durations, starts at a random phase and
    switches with raised-cosine ramps of 10 scans; these durations shrink
    proportionally for runs shorter than 300 scans. Envelopes are redrawn
    until the network is on (amplitude > 0.5) during 30 % to 80 % of the
    run, which is always achieved in practice.

    The scale :math:`c_s` is set so that, over the set :math:`V` of voxels
    where at least one map is at least 0.5,

    .. math::

        \\mathrm{snr} = \\sqrt{\\frac{\\sum_{v \\in V}
        \\mathrm{Var}_t[c_s \\sum_k a_{s,k}(t) x_{s,k}(t) m_k(v)]}
        {\\sum_{v \\in V} \\mathrm{Var}_t[n_s(v, t)]}}

    with :math:`\\mathrm{Var}_t` the (biased) variance over the scans of
    the run. This holds exactly for every subject.

    References
    ----------
    .. [1] S. M. Smith, P. T. Fox, K. L. Miller, et al., "Correspondence of
       the brain's functional architecture during activation and rest",
       PNAS 106(31), 13040-13045, 2009.

    Examples
    --------
    >>> from nilearn_stca.datasets import simulate_dynamic_rsfmri
    >>> data = simulate_dynamic_rsfmri(
    ...     n_scans=100, networks="procedural", resolution=8
    ... )
    >>> data.func[0].shape
    (26, 30, 25, 100)
    >>> data.maps_img.shape
    (26, 30, 25, 10)
    """
    _check_positive_int(n_subjects, "n_subjects")
    _check_positive_int(n_scans, "n_scans", minimum=2)
    _check_positive_int(n_networks, "n_networks")
    _check_positive_int(resolution, "resolution")
    _check_positive_number(t_r, "t_r")
    if t_r > _MAX_T_R:
        raise ValueError(
            f"t_r must be at most {_MAX_T_R:g} s, so that the 32 s canonical HRF spans "
            f"at least two scans; got {t_r!r}."
        )
    _check_positive_number(snr, "snr")
    if n_states is not None:
        _check_positive_int(n_states, "n_states", minimum=2)
    networks = check_networks(networks)

    rng = check_random_state(random_state)
    # One seed per independent part, so that subject i is the same whatever
    # n_subjects and whatever the source of the maps.
    maps_seed, *subject_seeds = rng.randint(np.iinfo(np.int32).max, size=n_subjects + 1)

    mask, affine = _load_grid(mask_img, resolution)
    maps, network_names, source = network_maps(
        networks, n_networks, mask, affine, np.random.default_rng(maps_seed)
    )
    core_voxels = maps.max(axis=0) >= CORE_THRESHOLD

    state_networks = None
    if n_states is not None:
        # Drawn after every other seed, so that the default mode's draws do not change.
        states_rng = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
        state_networks = draw_state_networks(n_states, len(maps), states_rng)
    hrf = spm_hrf(t_r, oversampling=1)
    func, timecourses, amplitudes, states = [], [], [], []
    for seed in subject_seeds:
        subject_rng = np.random.default_rng(seed)
        subject_timecourses = network_timecourses(n_scans, len(maps), t_r, hrf, subject_rng)
        if state_networks is None:
            subject_amplitudes = np.column_stack(
                [on_off_envelope(n_scans, subject_rng) for _ in maps]
            )
        else:
            scale = envelope_scale(n_scans)
            sequence = draw_state_sequence(n_scans, n_states, scale, subject_rng)
            kernel = ramp_kernel(int(round(RAMP_SCANS * scale)))
            subject_amplitudes = state_envelopes(sequence, state_networks, kernel)
            states.append(sequence)
        masked_data = smooth_ar1_noise(n_scans, mask, subject_rng)
        add_network_signal(
            masked_data,
            subject_amplitudes * subject_timecourses,
            maps,
            snr,
            core_voxels,
        )
        masked_data += _BASELINE
        func.append(_unmask_timeseries(masked_data, mask, affine, t_r))
        timecourses.append(subject_timecourses)
        amplitudes.append(subject_amplitudes)

    maps_img = _unmask_maps(maps, mask, affine)
    description = _describe(
        n_subjects, n_scans, t_r, snr, random_state, len(maps), source, mask, affine
    )
    if state_networks is not None:
        description = description.replace(
            "that switch on and off over time", f"that switch together, in {n_states} states"
        )
    return Bunch(
        func=func,
        mask_img=nib.Nifti1Image(mask.astype(np.uint8), affine),
        maps_img=maps_img,
        timecourses=timecourses,
        amplitudes=amplitudes,
        states=states if state_networks is not None else None,
        state_networks=state_networks,
        network_names=network_names,
        networks=source,
        t_r=float(t_r),
        description=description,
    )


def _describe(n_subjects, n_scans, t_r, snr, random_state, n_networks, source, mask, affine):
    grid = "x".join(map(str, mask.shape))
    voxel_mm = "x".join(f"{size:g}" for size in voxel_sizes(affine))
    description = (
        f"Simulated resting-state fMRI with {n_networks} {source} networks that switch on "
        f"and off over time: {n_subjects} subject(s) x {n_scans} scans, TR = {t_r} s, "
        f"{grid} grid of {voxel_mm} mm voxels ({int(mask.sum())} in the mask), snr = {snr} "
        f"(std of network signal / std of noise where a map is >= {CORE_THRESHOLD})"
    )
    if random_state is None or isinstance(random_state, numbers.Integral):
        description += f", random_state = {random_state}"
    return description + "."


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _check_positive_number(value, name):
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number, got {value!r}.")


def _load_grid(mask_img, resolution):
    """Return the boolean mask array and the affine of the output grid."""
    if mask_img is None:
        mask_img = load_mni152_brain_mask(resolution=resolution)
    return load_mask_img(mask_img)


def _unmask_timeseries(masked_data, mask, affine, t_r):
    """Return a 4D float32 image, zero outside the mask, with TR in header."""
    data = np.zeros((*mask.shape, len(masked_data)), dtype=np.float32)
    data[mask] = masked_data.T
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms((*voxel_sizes(affine), t_r))
    img.header.set_xyzt_units("mm", "sec")
    return img


def _unmask_maps(maps, mask, affine):
    data = np.zeros((*mask.shape, len(maps)), dtype=np.float32)
    data[mask] = maps.T
    return nib.Nifti1Image(data, affine)
