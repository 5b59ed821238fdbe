"""Simulated resting-state fMRI with known, time-varying functional networks.

The data produced here serve as ground truth to evaluate dynamic brain
network decompositions (STCA) and static baselines (ICA, dictionary
learning): the spatial maps, the network time courses and the periods
during which each network is active are all returned with the images.
"""

from ._networks import SMITH2009_RSN10_NAMES
from ._simulate import simulate_dynamic_rsfmri

__all__ = ["SMITH2009_RSN10_NAMES", "simulate_dynamic_rsfmri"]
