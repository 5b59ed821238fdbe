"""A self-contained HTML report of a method comparison: summary, tables, figures, versions."""

import base64
import json
import platform
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .._utils.io import atomic_path
from .tables import display_results, is_static

#: Distributions whose versions the report lists (after Python and nilearn_stca).
VERSIONED_PACKAGES = (
    "nilearn",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "torch",
    "nibabel",
    "matplotlib",
    "seaborn",
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f2f2f2; }
figure { margin: 1.5em 0; }
figcaption { font-style: italic; }
img { max-width: 100%; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


def software_versions():
    """Versions of Python, nilearn_stca and its main dependencies.

    Returns
    -------
    versions : dict of str to str
        "not installed" for a missing package.
    """
    from .. import __version__  # here: the package may still be importing this module

    versions = {"python": platform.python_version(), "nilearn_stca": __version__}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _read_figures(figures):
    """Base64 of each figure's PNG, checking them all before anything is written."""
    encoded = {}
    for caption, path in figures.items():
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"Figure {caption!r}: no such file {str(path)!r}.")
        data = path.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            raise ValueError(f"Figure {caption!r}: {str(path)!r} is not a PNG file.")
        encoded[caption] = base64.b64encode(data).decode("ascii")
    return encoded


def _list_items(items):
    rows = "".join(f"<li><b>{escape(str(k))}</b>: {escape(str(v))}</li>" for k, v in items)
    return f"<ul>{rows}</ul>"


def _summary(results):
    data, methods, templates = display_results(results)
    windows = data[~is_static(data)].groupby("method")["window"].nunique()
    return _list_items(
        [
            ("Methods", ", ".join(methods)),
            ("Subjects", data["subject"].nunique()),
            (
                "Windows per method",
                ", ".join(f"{method}: {windows.get(method, 0)}" for method in methods),
            ),
            (f"Templates ({len(templates)})", ", ".join(templates)),
        ]
    )


def _figure(caption, png):
    return (
        f'<figure><img src="data:image/png;base64,{png}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _sections(results, tables, figures, sections, parameters):
    yield "<h2>Summary</h2>" + _summary(results)
    for name, table in tables.items():
        yield f"<h2>{escape(str(name))}</h2>" + table.to_html(border=0)
    if figures:
        yield "<h2>Figures</h2>"
    for caption, png in figures.items():
        yield _figure(caption, png)
    for heading, section in sections.items():
        yield f"<h2>{escape(str(heading))}</h2>"
        yield from (f"<p>{escape(str(note))}</p>" for note in section.get("notes", []))
        for name, table in section.get("tables", {}).items():
            yield f"<h3>{escape(str(name))}</h3>" + table.to_html(border=0)
        yield from (_figure(caption, png) for caption, png in section["figures"].items())
    text = json.dumps(parameters, indent=2, ensure_ascii=False, default=str)
    yield f"<h2>Parameters</h2><pre>{escape(text)}</pre>"
    yield "<h2>Software versions</h2>" + _list_items(software_versions().items())


def write_report(
    output_file,
    results,
    tables=None,
    figures=None,
    parameters=None,
    title="STCA vs ICA vs SDL",
    sections=None,
):
    """Write a comparison report as one self-contained HTML file.

    Parameters
    ----------
    output_file : str or Path
        The HTML file to write (its folder is created). Written atomically: a temporary file
        in the same folder is renamed to it.
    results : pandas.DataFrame
        Tidy results of :func:`nilearn_stca.evaluation.compare`, summarised at the top.
    tables : dict of str to pandas.DataFrame, default=None
        Tables to include, by heading (e.g. a Table 1 of "mean ± sd" strings).
    figures : dict of str to str or Path, default=None
        PNG files to embed (base64), by caption.
    parameters : dict, default=None
        Parameters of the run, shown as JSON (values that are not JSON are shown as str).
    title : str, default="STCA vs ICA vs SDL"
    sections : dict of str to dict, default=None
        More sections after the figures, by heading (e.g. ``"Dynamics"``), each a dict with
        any of ``notes`` (list of str, shown as paragraphs), ``tables`` (as ``tables``) and
        ``figures`` (as ``figures``).

    Returns
    -------
    output_file : Path

    Raises
    ------
    ValueError
        If a figure file is missing or not a PNG; nothing is written then.
    """
    output_file = Path(output_file)
    figures = _read_figures(figures or {})
    sections = {
        heading: {**section, "figures": _read_figures(section.get("figures", {}))}
        for heading, section in (sections or {}).items()
    }
    body = "\n".join(_sections(results, tables or {}, figures, sections, parameters or {}))
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
    output_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output_file) as partial:
        partial.write_text(document, encoding="utf-8")
    return output_file
