"""Quiet defaults for the command's environment (Hugging Face, transformers, Prefect, tqdm).

Hugging Face offline mode is not forced: a run names a Hub model id and, online, it is downloaded once into the
HF cache; with ``HF_HUB_OFFLINE=1`` a cached model resolves without the network (dataswarms_core/models.py).

They are set with ``os.environ.setdefault`` before the heavy imports, so a user's own values win. Child
processes inherit them: the temporary Prefect server (``flows/_server.py``) gets
``PREFECT_SERVER_ANALYTICS_ENABLED`` and the logging settings this way.

Prefect's logs: the flow and its tasks log every stage and iteration at INFO (utilities, parse and judge
failures, timings), and those records must reach the API, so the Prefect UI shows them, while the terminal
keeps only the command's own lines and progress bar. Prefect 3.9 configures logging from its
``prefect/logging/logging.yml``, where any key can be overridden by an environment variable
``PREFECT_LOGGING_<PATH>_<TO>_<KEY>`` (read when Prefect is imported); it has no separate "level sent to the
API" setting. The run loggers ``prefect.flow_runs`` and ``prefect.task_runs`` send to the ``api`` handler and
propagate to the root logger's ``console`` handler, so:

- ``PREFECT_LOGGING_LEVEL=WARNING``: Prefect's other loggers (client, events, server) stay at warnings;
- ``PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL=INFO`` and ``..._TASK_RUNS_LEVEL=INFO``: the run loggers
  pass INFO records (their level defaults to ``NOTSET``, i.e. ``PREFECT_LOGGING_LEVEL``), and the ``api``
  handler (level 0) sends them to the API;
- ``PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=WARNING``: the console handler prints warnings and errors only.
"""

from __future__ import annotations

import os
import warnings

QUIET_DEFAULTS = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",  # flow-run logs reach the API (the UI) ...
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",  # ... but not the terminal
    "DO_NOT_TRACK": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",  # e.g. the GGUF conversion's bar
}


def quiet_environment() -> None:
    """Apply :data:`QUIET_DEFAULTS` where unset, silence library warnings and transformers' progress bars.

    Call it first in a command, before anything imports transformers or Prefect.
    """
    for name, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="(transformers|peft|trl)")
    # Heavy (seconds): imported only once the environment above is in place.
    import transformers

    transformers.utils.logging.disable_progress_bar()
