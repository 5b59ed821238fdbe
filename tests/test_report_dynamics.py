import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from nilearn_stca.evaluation.state_figures import plot_occupancy  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_occupancy_bars(tmp_path):
    # STCA has three states, ICA two: the bars are grouped by method (ICA first)
    fractions = {
        ("stca", "sub-01"): [0.2, 0.3, 0.5],
        ("stca", "sub-02"): [0.4, 0.1, 0.5],
        ("ica", "sub-01"): [0.25, 0.75],
        ("ica", "sub-02"): [0.75, 0.25],
    }
    metrics = pd.DataFrame(
        [
            {"method": method, "subject": subject, "state": state, "temporal_fraction": value}
            for (method, subject), values in fractions.items()
            for state, value in enumerate(values)
        ]
    )
    output = tmp_path / "occupancy.png"
    figure = plot_occupancy(metrics, title="Occupancy", output_file=output)
    assert output.read_bytes().startswith(PNG_SIGNATURE)
    ax = figure.axes[0]
    assert ax.get_title() == "Occupancy"
    assert [label.get_text() for label in ax.get_xticklabels()] == ["ICA", "STCA"]
    # one container per state; a method's bar for each of its states
    heights = [[bar.get_height() for bar in container] for container in ax.containers]
    np.testing.assert_allclose(heights[0], [0.5, 0.3])
    np.testing.assert_allclose(heights[1], [0.5, 0.2])
    np.testing.assert_allclose(heights[2], [0.5])
    # error bars: mean ± the sample sd over subjects (ICA state 0: 0.5 ± 0.3536)
    sd = np.std([0.25, 0.75], ddof=1)
    spans = [(np.nanmin(line.get_ydata()), np.nanmax(line.get_ydata())) for line in ax.lines]
    assert any(np.allclose(span, [0.5 - sd, 0.5 + sd]) for span in spans)
    assert not any(
        np.allclose(span, [0.5 - sd / np.sqrt(2), 0.5 + sd / np.sqrt(2)]) for span in spans
    )


def test_plot_occupancy_bad_input():
    with pytest.raises(ValueError, match="temporal_fraction"):
        plot_occupancy(pd.DataFrame({"method": ["ica"], "subject": ["s"], "state": [0]}))
    empty = pd.DataFrame(columns=["method", "subject", "state", "temporal_fraction"])
    with pytest.raises(ValueError, match="no rows"):
        plot_occupancy(empty)
