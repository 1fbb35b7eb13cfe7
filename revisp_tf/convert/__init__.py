"""Whole datasets: `revisp-tf convert` (an Apache Beam pipeline, `pipeline`) and RAW on the fly in tf.data (`tfdata`).

`pipeline`, `handler`, `inputs` and `store` need Apache Beam (the `beam` extra); `tfrecord`
(the output's feature spec and reader) and `tfdata` need only TensorFlow.
"""

import importlib.util
import logging

MAX_EXIT_STATUS = 100  # `convert` exits with the number of inputs that failed, up to this

BEAM_MISSING = "revisp-tf convert needs Apache Beam: pip install 'revisp-tf[beam]' (in a checkout: pip install -e '.[beam]')"


def require_beam() -> None:
    """Imports Apache Beam quietly; FileNotFoundError naming the extra when it is missing (as for a missing tool)."""
    if importlib.util.find_spec("apache_beam") is None:
        raise FileNotFoundError(BEAM_MISSING)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its import warns about Google Cloud clients that only its GCP extra brings
    try:
        import apache_beam  # noqa: F401
    finally:
        logging.disable(previous)
