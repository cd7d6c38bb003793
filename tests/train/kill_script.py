"""Train with the resume config and SIGKILL this process half-way through writing the SECOND checkpoint.

Usage: python kill_script.py OUT DATA_ROOT

The first checkpoint (step 4) is written normally (then ``OUT/written_once`` is touched); during the second one
(step 8) the model file is written, cut to half its size, and the process kills itself.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import safetensors.torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from toys import RUN_CONFIG, NoiseProcess, load_train_set, make_denoiser, resume_config  # noqa: E402

from graphdiff.train import Trainer  # noqa: E402


def main() -> None:
    out, data_root = Path(sys.argv[1]), sys.argv[2]
    real_save = safetensors.torch.save_file
    calls = {"n": 0}

    def save_then_die(tensors, filename, metadata=None):
        calls["n"] += 1
        real_save(tensors, filename, metadata=metadata)
        if calls["n"] == 3:  # 1-2: model and EMA of the first checkpoint; 3: model of the second one
            size = os.path.getsize(filename)
            with open(filename, "r+b") as fh:
                fh.truncate(size // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    safetensors.torch.save_file = save_then_die

    def on_event(trainer, event, info):
        if event == "checkpoint" and info["step"] == 4:
            (out / "written_once").touch()

    trainer = Trainer(NoiseProcess(), make_denoiser(dropout=0.1), load_train_set(data_root),
                      resume_config(max_steps=10), out, run_config=RUN_CONFIG, progress=False, callbacks=[on_event])
    trainer.fit()
    raise SystemExit("not killed: the second checkpoint was never written")


if __name__ == "__main__":
    main()
