"""Two-process DDP training on CPU (gloo), launched by test_distributed.py through torchrun.

Usage: python -m torch.distributed.run --nproc_per_node 2 --master_port PORT ddp_script.py OUT DATA_ROOT

Each rank writes ``OUT/rank{r}.json`` with the sha256 of its final parameters, its steps and its share sizes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from toys import RUN_CONFIG, NoiseProcess, load_train_set, make_denoiser, params_digest, resume_config  # noqa: E402

from graphdiff.train import Trainer, cleanup, init_from_env  # noqa: E402


class CountingProcess(NoiseProcess):
    """Records how many graphs each call sees on this rank."""

    def __init__(self):
        self.sizes = []

    def loss(self, denoiser, batch, *, generator=None):
        self.sizes.append(batch.batch_size)
        return super().loss(denoiser, batch, generator=generator)


def main() -> None:
    out, data_root = Path(sys.argv[1]), sys.argv[2]
    info = init_from_env("cpu")
    process = CountingProcess()
    # rank-dependent initialisation: DDP must broadcast rank 0's weights
    model = make_denoiser(dropout=0.1, seed=info.rank)
    # lr_horizon "budget": the rate reads the clock, and rank 0's must decide it, or the ranks' weights drift apart
    cfg = resume_config(batch_size=8, grad_accum=2, max_steps=6, ckpt_every=3, log_every=2, lr_schedule="cosine",
                        lr_horizon="budget", max_minutes=0.5)
    trainer = Trainer(process, model, load_train_set(data_root), cfg, out, run_config=RUN_CONFIG, progress=False)
    summary = trainer.fit()
    record = {"rank": info.rank, "world_size": info.world_size, "steps": summary["steps"],
              "params": params_digest(trainer.model), "ema": params_digest(trainer.ema_model),
              "sizes": process.sizes}
    (out / f"rank{info.rank}.json").write_text(json.dumps(record))
    cleanup()


if __name__ == "__main__":
    main()
