# %% [markdown]
# # 4. The comparison as a nipype workflow
#
# `nilearn_stca.evaluation.compare` runs every method on every subject in one Python
# process. In a pipeline (fMRIPrep is built on nipype) the same comparison is a nipype
# workflow: one node per subject and method, run in parallel by nipype's execution plugins
# (`MultiProc` on one machine, `SLURM` or `SGE` on a cluster), with every finished node cached
# so that a rerun after a crash only computes what did not finish.
#
# Small by default (the test suite runs this notebook); `NILEARN_STCA_TUTORIAL_FULL=1` runs
# three subjects with the paper's window settings (hours on a CPU).

# %%
import os
import shutil
from pathlib import Path

import pandas as pd

from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation import compare, format_table, read_results, table1
from nilearn_stca.evaluation.truth import TRUTH_THRESHOLD
from nilearn_stca.interfaces import STCA
from nilearn_stca.interfaces.workflows import init_comparison_wf

FULL_SIZE = os.environ.get("NILEARN_STCA_TUTORIAL_FULL") == "1"
data = simulate_dynamic_rsfmri(
    n_subjects=3 if FULL_SIZE else 2,
    n_scans=600 if FULL_SIZE else 60,
    resolution=4 if FULL_SIZE else 16,
    networks="procedural",
    n_networks=5 if FULL_SIZE else 3,
    snr=3.0,
    random_state=0,
)
work = Path("nipype_tutorial")
shutil.rmtree(work, ignore_errors=True)
(work / "data").mkdir(parents=True)
runs = []
for i, img in enumerate(data.func, start=1):
    runs.append(str(work / "data" / f"sub-{i:02d}_task-rest_bold.nii.gz"))
    img.to_filename(runs[-1])
data.maps_img.to_filename(work / "data" / "planted_maps.nii.gz")
data.mask_img.to_filename(work / "data" / "mask.nii.gz")
print(data.description)

# %% [markdown]
# ## One node: STCA as a nipype interface
#
# `STCA`, `ICA` and `SDL` take the same parameters, with the same defaults, as the Python
# classes, plus `in_files`, `mask_file`, `confounds_files`, `windows` and `sweep_stride`.
# They write the static z-maps, the binary FBNs, the z-maps of every sliding window as a
# window sweep (`windows_dir`, the folder `write_window_sweep` writes and
# `load_window_sweep` reads, filled one window at a time) and, for STCA, the fitted model.
# On one run the fit and the sweep are one pass: STCA maps each window once.

# %%
stca = STCA(
    in_files=[runs[0]],
    mask_file=str(work / "data" / "mask.nii.gz"),
    n_components=4,
    autoencoder_widths=(4, 4, 8, 8),
    learning_rate=1e-3,
    window_length=20,
    window_stride=10,
)
print(stca.inputs)

# %% [markdown]
# ## The comparison workflow
#
# `init_comparison_wf` builds the graph: one node prepares the mask and the templates for
# everyone, then for every subject (a nipype iterable) one node per method fits it and writes
# its maps, one node scores them against the templates, and a join node writes the same
# output folder as `compare` (`results.csv`, Table 1, figures, `report.html`).
#
# Here the templates are the planted networks. ICA restarts FastICA once per window
# (`n_init=1`) and only every 20th window is scored, to keep the notebook quick.

# %%
settings = {
    "methods": ("ica", "sdl", "stca"),
    "templates": str(work / "data" / "planted_maps.nii.gz"),
    "template_threshold": TRUTH_THRESHOLD,
    "mask_file": str(work / "data" / "mask.nii.gz"),
    "window_length": 40 if FULL_SIZE else 20,
    "window_stride": 1 if FULL_SIZE else 10,
    "sweep_stride": 10 if FULL_SIZE else 20,
    "method_params": {
        "ica": {"n_init": 10 if FULL_SIZE else 1},
        "stca": {"n_components": 16 if FULL_SIZE else 4, "learning_rate": 1e-3},
    },
}
wf = init_comparison_wf(runs, out_dir=work / "comparison", base_dir=work / "cache", **settings)
wf.config["execution"]["poll_sleep_duration"] = 0.5  # seconds between checks; nodes are tiny
print(sorted(wf.list_node_names()))

# %% [markdown]
# `wf.write_graph()` draws the graph with Graphviz's `dot` program (a system package, e.g.
# `apt install graphviz`); without it, nipype still writes the graph's `.dot` text.

# %%
if shutil.which("dot"):
    print(wf.write_graph(graph2use="colored", format="png"))
else:
    dot_file = work / "cache" / wf.name / "graph.dot"
    try:
        wf.write_graph(graph2use="colored", dotfilename=str(dot_file))
    except OSError:
        pass  # the .dot file is written before nipype calls the missing program
    print(dot_file.read_text())

# %% [markdown]
# ## Run it with MultiProc
#
# Independent nodes run in parallel; `n_procs` caps the processes.

# %%
wf.run(plugin="MultiProc", plugin_args={"n_procs": 2})
results = read_results(work / "comparison" / "results.csv")
print(format_table(table1(results)))
print(sorted(p.name for p in (work / "comparison").iterdir()))

# %% [markdown]
# ## The same table as `compare`
#
# The nodes call the same library functions as `compare`, with the same mask and seeds.

# %%
python = compare(
    runs,
    mask_img=settings["mask_file"],
    **{k: v for k, v in settings.items() if k != "mask_file"},
    verbose=0,
)
columns = ["subject", "method", "window", "template", "component", "iou", "dice"]
key = ["subject", "method", "window", "template"]


def ordered(table):
    return table[columns].sort_values(key, key=lambda c: c.astype(str)).reset_index(drop=True)


pd.testing.assert_frame_equal(ordered(python), ordered(results))
print("compare and the workflow agree on", len(results), "rows")

# %% [markdown]
# ## A rerun reuses every finished node
#
# Nipype keeps each node's results under `base_dir`; running the same workflow again
# recomputes nothing (after a crash, only the nodes that did not finish run).

# %%
stamp = {p: p.stat().st_mtime_ns for p in (work / "cache").rglob("*.nii.gz")}
wf = init_comparison_wf(runs, out_dir=work / "comparison", base_dir=work / "cache", **settings)
wf.config["execution"]["poll_sleep_duration"] = 0.5
wf.run(plugin="MultiProc", plugin_args={"n_procs": 2})
unchanged = all(p.stat().st_mtime_ns == t for p, t in stamp.items())
print(f"{len(stamp)} cached images, all unchanged: {unchanged}")

# %% [markdown]
# ## On a cluster
#
# The same workflow runs on SLURM by changing the plugin (not run here). Each node becomes a
# job; `sbatch_args` are passed to `sbatch`:
#
# ```python
# wf.run(
#     plugin="SLURM",
#     plugin_args={"sbatch_args": "--time=12:00:00 --mem=8G --cpus-per-task=2"},
# )
# ```
#
# From the command line:
#
# ```bash
# nilearn-stca compare sub-*_desc-preproc_bold.nii.gz --out comparison --preset paper \
#     --confounds fmriprep --nipype --plugin SLURM --work-dir /scratch/$USER/stca \
#     --plugin-args '{"sbatch_args": "--time=12:00:00 --mem=8G --cpus-per-task=2"}'
# ```
#
# `--work-dir` must be on a file system that every node of the cluster sees. For SGE, use
# `plugin="SGE"` with `plugin_args={"qsub_args": "..."}`.
