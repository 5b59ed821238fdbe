"""The simulator: ``simulate_dynamic_rsfmri`` and its steps, one subject's run at a time.

The steps draw from their own generators, seeded in a fixed order, so that a seed gives the
same run and subject i the same data whatever the number of subjects.
"""

import numbers

import nibabel as nib
import numpy as np
from nibabel.affines import voxel_sizes
from nilearn.glm.first_level import spm_hrf
from sklearn.utils import Bunch, check_random_state

from ._images import load_grid, unmask_maps, unmask_timeseries
from ._networks import CORE_THRESHOLD, network_maps
from ._parameters import check_simulation_parameters
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

_BASELINE = 100.0  # the signal's mean in every voxel
_MAX_SEED = np.iinfo(np.int32).max


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
    networks = check_simulation_parameters(
        n_subjects, n_scans, networks, n_networks, resolution, t_r, snr, n_states
    )
    rng = check_random_state(random_state)
    # One seed per independent part, so that subject i is the same whatever
    # n_subjects and whatever the source of the maps.
    maps_seed, *subject_seeds = rng.randint(_MAX_SEED, size=n_subjects + 1)
    planted = _plant_networks(mask_img, resolution, networks, n_networks, maps_seed)
    state_networks = _plant_states(n_states, len(planted.maps), rng)
    hrf = spm_hrf(t_r, oversampling=1)
    subjects = [
        _simulate_subject(seed, n_scans, t_r, hrf, snr, planted, state_networks)
        for seed in subject_seeds
    ]
    description = _describe(n_subjects, n_scans, t_r, snr, random_state, n_states, planted)
    return _assemble_result(subjects, planted, state_networks, t_r, description)


def _plant_networks(mask_img, resolution, networks, n_networks, maps_seed):
    """The output grid and the maps planted on it.

    Returns
    -------
    planted : :obj:`sklearn.utils.Bunch`
        ``mask`` and ``affine`` (the grid), ``maps`` (n_networks, n_voxels),
        ``network_names``, ``source`` (the maps' source actually used) and
        ``core_voxels`` (where a map reaches ``CORE_THRESHOLD``: where snr holds).
    """
    mask, affine = load_grid(mask_img, resolution)
    maps, network_names, source = network_maps(
        networks, n_networks, mask, affine, np.random.default_rng(maps_seed)
    )
    return Bunch(
        mask=mask,
        affine=affine,
        maps=maps,
        network_names=network_names,
        source=source,
        core_voxels=maps.max(axis=0) >= CORE_THRESHOLD,
    )


def _plant_states(n_states, n_networks, rng):
    """In the state mode, the networks each state holds, (n_states, n_networks); else None."""
    if n_states is None:
        return None
    # Drawn after every other seed, so that the default mode's draws do not change.
    states_rng = np.random.default_rng(rng.randint(_MAX_SEED))
    return draw_state_networks(n_states, n_networks, states_rng)


def _simulate_subject(seed, n_scans, t_r, hrf, snr, planted, state_networks):
    """One subject's run: its time courses, envelopes (and states), noise and image."""
    rng = np.random.default_rng(seed)
    timecourses = network_timecourses(n_scans, len(planted.maps), t_r, hrf, rng)
    amplitudes, sequence = _envelopes(n_scans, len(planted.maps), state_networks, rng)
    masked_data = smooth_ar1_noise(n_scans, planted.mask, rng)
    add_network_signal(
        masked_data, amplitudes * timecourses, planted.maps, snr, planted.core_voxels
    )
    masked_data += _BASELINE
    return Bunch(
        func=unmask_timeseries(masked_data, planted.mask, planted.affine, t_r),
        timecourses=timecourses,
        amplitudes=amplitudes,
        states=sequence,
    )


def _envelopes(n_scans, n_networks, state_networks, rng):
    """The networks' on/off envelopes (n_scans, n_networks) and the state sequence.

    Each network has its own envelope, and the sequence is None, unless ``state_networks``
    is given: then the networks follow the states of a drawn sequence.
    """
    if state_networks is None:
        envelopes = [on_off_envelope(n_scans, rng) for _ in range(n_networks)]
        return np.column_stack(envelopes), None
    scale = envelope_scale(n_scans)
    sequence = draw_state_sequence(n_scans, len(state_networks), scale, rng)
    kernel = ramp_kernel(int(round(RAMP_SCANS * scale)))
    return state_envelopes(sequence, state_networks, kernel), sequence


def _assemble_result(subjects, planted, state_networks, t_r, description):
    """The simulator's result: see the Returns of ``simulate_dynamic_rsfmri``."""
    in_state_mode = state_networks is not None
    return Bunch(
        func=[subject.func for subject in subjects],
        mask_img=nib.Nifti1Image(planted.mask.astype(np.uint8), planted.affine),
        maps_img=unmask_maps(planted.maps, planted.mask, planted.affine),
        timecourses=[subject.timecourses for subject in subjects],
        amplitudes=[subject.amplitudes for subject in subjects],
        states=[subject.states for subject in subjects] if in_state_mode else None,
        state_networks=state_networks,
        network_names=planted.network_names,
        networks=planted.source,
        t_r=float(t_r),
        description=description,
    )


def _describe(n_subjects, n_scans, t_r, snr, random_state, n_states, planted):
    grid = "x".join(map(str, planted.mask.shape))
    voxel_mm = "x".join(f"{size:g}" for size in voxel_sizes(planted.affine))
    description = (
        f"Simulated resting-state fMRI with {len(planted.maps)} {planted.source} networks "
        f"that switch on and off over time: {n_subjects} subject(s) x {n_scans} scans, "
        f"TR = {t_r} s, {grid} grid of {voxel_mm} mm voxels ({int(planted.mask.sum())} in "
        f"the mask), snr = {snr} (std of network signal / std of noise where a map is >= "
        f"{CORE_THRESHOLD})"
    )
    if random_state is None or isinstance(random_state, numbers.Integral):
        description += f", random_state = {random_state}"
    description += "."
    if n_states is not None:
        description = description.replace(
            "that switch on and off over time", f"that switch together, in {n_states} states"
        )
    return description
