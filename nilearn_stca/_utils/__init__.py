"""Helpers shared by the package's subpackages: input checks, safe writes, output folders.

- :mod:`~nilearn_stca._utils.checks`: input checks shared by the estimators and steps;
- :mod:`~nilearn_stca._utils.mask_grid`: the one rule for a given mask (its voxels, its grid);
- :mod:`~nilearn_stca._utils.docs`: the docstring pieces the estimators share;
- :mod:`~nilearn_stca._utils.lazy`: names loaded on first use, to keep torch out of light
  imports;
- :mod:`~nilearn_stca._utils.io`: atomic writes;
- :mod:`~nilearn_stca._utils.ownership`: who owns an output folder, its lock, the record of
  the files written there, staging and moving in, and what a stopped writer left.
"""
