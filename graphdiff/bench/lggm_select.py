"""Checkpoint selection on validation graphs for ``graphdiff bench run lggm`` (``--set lggm.select_every=S``).

With a fixed ``K`` the two arms of the protocol are compared where ``K`` happens to leave them: a fine-tune that
has already drifted from a good base, or a from-scratch run that has started to fit its few graphs too closely,
is scored as it is. With ``select_every = S`` each arm is instead scored every ``S`` steps (and after its last
step) on the held-out domain's **validation** split, by the mean SPECTRE MMD^2 over the protocol's four statistics
of graphs sampled at the validation graphs' node counts, and the weights with the lowest figure are the ones the
test split then scores (early stopping, the same rule for both arms). The fine-tuned arm also has its starting
point as a candidate (step 0: the pre-trained base, so a fine-tune that only hurts on validation falls back to it;
not with ``finetune.condition_transfer``, whose start is not the base); the from-scratch arm's untrained network is
not one. No test graph takes part in the choice. The weights scored are the ones the arm samples with (its EMA copy
under ``sample.use_ema``; a LoRA fine-tune's adapters merged into a copy).

Sampling inside a training run uses the model being trained (its EMA copy when it keeps one) through a pipeline
built around it, at the protocol's sampling seed; torch's and numpy's global random states are restored afterwards,
so the training's random stream is the same with or without selection. The minutes spent sampling are part of the
arm's wall time.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from .lggm_report import STATS, mean_mmd


class ValidationSelection:
    """Keeps the best weights of one training run by the mean MMD^2 of its samples against validation graphs.

    Args:
        every: score every ``every`` optimizer steps (and at the last step, ``last``).
        last: the run's last step (``K``).
        sample: ``sample(pipe) -> list[networkx.Graph]`` (the protocol's sampler, at the validation sizes).
        reference: the validation graphs (networkx).

    The figure is :func:`~graphdiff.bench.lggm_report.mean_mmd`, the mean of the protocol's statistics.
    """

    def __init__(self, every: int, last: int, sample, reference):
        self.every, self.last, self.sample, self.reference = int(every), int(last), sample, reference
        self.scores: dict[int, float | None] = {}
        self.seconds = 0.0
        self.best_step: int | None = None
        self._best_value: float | None = None
        self._best_state = None

    def consider(self, pipe, step: int) -> float | None:
        """Score ``pipe``'s current weights as the candidate of ``step``; keep them (a LoRA model's merged into a
        copy, so that they load into the merged model the arm ends with) if they are the best so far."""
        from ..finetune import merge_lora
        from ..metrics.mmd import graph_mmd

        t = time.perf_counter()
        was_training = pipe.denoiser.training
        pipe.denoiser.eval()
        np_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                graphs = self.sample(pipe)
        finally:
            np.random.set_state(np_state)
            pipe.denoiser.train(was_training)
        mmd = graph_mmd(graphs, self.reference, protocol="spectre", stats=STATS, bootstrap=0)
        value = mean_mmd({s: v["mmd2"] for s, v in mmd["stats"].items()})
        self.scores[int(step)] = None if value is None else round(value, 6)
        if value is not None and (self._best_value is None or value < self._best_value):
            self.best_step, self._best_value = int(step), value
            self._best_state = merge_lora(copy.deepcopy(pipe.denoiser)).state_dict()  # a copy, LoRA merged
        self.seconds += time.perf_counter() - t
        print(f"    validation at step {step}: mean MMD^2 {value if value is None else round(value, 4)}"
              f" (best: step {self.best_step})", flush=True)
        return value

    def __call__(self, trainer, event: str, info: dict) -> None:
        """The trainer callback: a candidate every ``every`` steps and at the last step."""
        if event != "step" or not (trainer.step % self.every == 0 or trainer.step == self.last):
            return
        from ..config import RunConfig
        from ..pipeline import GraphDiffusionPipeline

        cfg = RunConfig.from_dict({k: v for k, v in trainer.run_config.items() if k not in ("step", "epoch")})
        ema = trainer.ema_model if cfg.sample.use_ema else None
        module = ema if ema is not None else trainer.model
        self.consider(GraphDiffusionPipeline(trainer.process, module, cfg), trainer.step)

    def apply(self, pipe) -> None:
        """Load the best candidate's weights into ``pipe`` (the merged model the arm ended with)."""
        if self._best_state is None:
            return
        pipe.denoiser.load_state_dict(self._best_state)
        pipe.denoiser.eval()

    def record(self) -> dict:
        """What the results row keeps: the rule, every candidate's figure and the step chosen."""
        return {"every": self.every, "split": "val", "val_graphs": len(self.reference), "statistic": "mean MMD^2",
                "scores": {str(k): v for k, v in sorted(self.scores.items())}, "chosen_step": self.best_step,
                "seconds": round(self.seconds, 1)}
