"""The shared docstring pieces are filled in, and the same text reaches every estimator."""

import pytest

from nilearn_stca import STCADecomposition
from nilearn_stca._utils.docs import DOCDICT, fill_doc
from nilearn_stca.baselines import ICADecomposition, SDLDecomposition

ESTIMATORS = (STCADecomposition, ICADecomposition, SDLDecomposition)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_docstrings_have_no_placeholder_left(cls):
    for doc in (cls.__doc__, cls.fit.__doc__):
        assert "%(" not in doc


@pytest.mark.parametrize("key", ["mask", "window_length", "masker_settings", "target_grid"])
def test_shared_pieces_reach_every_estimator(key):
    first_line = DOCDICT[key].splitlines()[0]
    for cls in ESTIMATORS:
        assert f"    {first_line}\n" in cls.__doc__, cls


def test_fill_doc_indents_whole_lines_and_leaves_percent_signs():
    def f():
        """Top 5% of voxels.

        Parameters
        ----------
        %(window_stride)s
        """

    fill_doc(f)
    assert "Top 5% of voxels." in f.__doc__
    assert "        window_stride : int, default=1\n            Scans between" in f.__doc__

    def g():
        """%(no_such_piece)s"""

    with pytest.raises(KeyError, match="no_such_piece"):
        fill_doc(g)
