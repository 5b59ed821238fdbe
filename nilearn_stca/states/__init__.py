"""Brain states: group states of window maps, their temporal metrics, and the states step.

Modules, from the sequence of states up to the step that writes a folder:

- :mod:`~nilearn_stca.states.metrics`: occupancy, dwell time and transitions of a state
  sequence (:func:`state_metrics`, :func:`state_metrics_table`);
- :mod:`~nilearn_stca.states.kmeans`: k-means on one feature vector per window, the number
  of states given or chosen by silhouette;
- :mod:`~nilearn_stca.states.presence_states`: states from the templates' presence in each
  window (:func:`presence_table` from compare's table, :func:`fit_states`);
- :mod:`~nilearn_stca.states.template_presence`: that presence scored from a window sweep
  (:func:`sweep_presence`);
- :mod:`~nilearn_stca.states.map_states`: states from the windows' FBN maps, streamed from
  sweeps (:func:`fit_map_states`);
- :mod:`~nilearn_stca.states.planted`: recovered states against the simulator's planted
  ones (:func:`planted_window_states`, :func:`score_states`);
- :mod:`~nilearn_stca.states.sweep_groups` and :mod:`~nilearn_stca.states.outputs`: the
  ``states`` step (:func:`write_states`), which groups sweeps by method and writes the
  tables and figures.

The names below are loaded on first use (PEP 562): :mod:`nilearn_stca.evaluation` imports
the metrics and presence states, while the presence scoring and the step import evaluation,
so this package imports none of its modules itself.
"""

from .._utils.lazy import lazy_attributes

_LAZY = {
    "state_metrics": "metrics",
    "state_metrics_table": "metrics",
    "transition_counts": "metrics",
    "transition_probability": "metrics",
    "presence_table": "presence_states",
    "fit_states": "presence_states",
    "sweep_presence": "template_presence",
    "fit_map_states": "map_states",
    "planted_window_states": "planted",
    "score_states": "planted",
    "STATES_FILE": "outputs",
    "write_states": "outputs",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
