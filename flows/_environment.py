"""Quiet defaults for the command's environment (Hugging Face, transformers, Prefect, tqdm).

Hugging Face offline mode is not forced: a run names a Hub model id and, online, it is downloaded once into the
HF cache; with ``HF_HUB_OFFLINE=1`` a cached model resolves without the network (dataswarms_core/models.py).

They are set with ``os.environ.setdefault`` before the heavy imports, so a user's own values win. Child
processes inherit them: the temporary Prefect server (``flows/_server.py``) gets
``PREFECT_SERVER_ANALYTICS_ENABLED`` and ``PREFECT_LOGGING_LEVEL`` this way.
"""

from __future__ import annotations

import os
import warnings

QUIET_DEFAULTS = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
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
