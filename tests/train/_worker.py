"""Run as a script: one MultiWorkerMirroredStrategy worker of a 2-process run on 127.0.0.1.

Usage: _worker.py TASK_INDEX PORT0 PORT1 DATA_DIR RUN_DIR. Prints the final history as JSON.
"""

import json
import os
import sys

task, port0, port1, data_dir, run_dir = sys.argv[1:6]
os.environ["TF_CONFIG"] = json.dumps(
    {"cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]}, "task": {"type": "worker", "index": int(task)}}
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from revisp_tf.train.train_lib import train  # noqa: E402
from tests.train.conftest import tiny_config  # noqa: E402

cfg = tiny_config(data_dir, "runtime.strategy=multi_worker", "optim.phases=[{epochs: 1, learning_rate: 0.001, loss: l2}]")
result = train(cfg, run_dir, verbose=0)
print("HISTORY " + json.dumps(result.history), flush=True)
