"""Where PARD's time goes: the share of the PPGN pair products in a training step and in a sampling forward pass
(issue 20 (c): a fused kernel for them pays at most that share, by Amdahl's law).

    python benchmarks/ppgn_profile.py [--presets pard-qm9 pard-sbm] [--steps 3] [--threads 1] [--set KEY=VALUE ...]
                                      [--root DIR] [--raw-from DIR] [--out DIR]

Each preset is built as ``graphdiff bench run`` builds it on a CPU (the small network of ``CPU_MODELS``, the CPU
batch size, then ``--set``). ``torch.profiler`` records ``--steps`` training steps (after one untimed) and as many
no-grad denoiser calls on a training batch; the pair products (``graphdiff.nn.block_causal.block_causal_matmul``)
run inside a ``record_function`` label, so their forward time is exact. In a training step their backward runs as
autograd's ``BmmBackward0``, which the attention's einsums share, so the table gives the pair products' forward
share and, as an upper bound of their backward, the share of every ``bmm`` and ``BmmBackward0``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import _common

NAME = Path(__file__).stem
LABEL = "ppgn_pair_product"


def main() -> None:
    p = _common.parser(__doc__, NAME, presets=["pard-qm9"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    import graphdiff.nn.ppgn as ppgn

    torch.set_num_threads(args.threads)
    started = _common.machine()
    plain = ppgn.block_causal_matmul

    def labelled(*a, **k):
        with record_function(LABEL):
            return plain(*a, **k)

    ppgn.block_causal_matmul = labelled  # the module-level name the PPGN layers call
    datasets = {"pard-qm9": ["qm9"], "pard-zinc250k": ["zinc250k"], "pard-sbm": ["sbm"], "pard-planar": ["planar"]}
    rows = []
    for preset in args.presets:
        root = _common.data_root(args, datasets.get(preset, []))
        pipe, ds, bs, row = _common.timing_pipeline(preset, args, root)
        den, process = pipe.denoiser, pipe.process
        batch = ds.batch(list(range(min(bs, len(ds)))))
        opt = torch.optim.AdamW(den.parameters(), lr=1e-4)

        def train_step(process=process, den=den, batch=batch, opt=opt):
            loss = process.loss(den, batch).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        def forward(process=process, den=den, batch=batch):
            with torch.no_grad():
                process.loss(den, batch)

        for what, fn in (("training step", train_step), ("forward (no grad)", forward)):
            den.train(what == "training step")
            fn()  # untimed
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(args.steps):
                    fn()
            ev = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in ev)
            pair = sum(e.cpu_time_total for e in ev if e.key == LABEL)
            bmm = sum(e.self_cpu_time_total for e in ev if e.key in ("aten::bmm", "BmmBackward0"))
            top = sorted(ev, key=lambda e: -e.self_cpu_time_total)[:5]
            rows.append({**row, "what": what, "steps": args.steps,
                         "seconds_per_step": round(total / 1e6 / args.steps, 3),
                         "pair_product_forward_share": round(pair / total, 4),
                         "all_bmm_share": round(bmm / total, 4),
                         "top_ops": [(e.key, round(e.self_cpu_time_total / total, 4)) for e in top]})
            print(rows[-1], flush=True)
    ppgn.block_causal_matmul = plain
    md = ["| preset | batch | what | s / step | pair products (forward, with masking) | every bmm's self time | top |",
          "|---|---:|---|---:|---:|---:|---|"]
    md += [f"| {r['preset']} | {r['batch_size']} | {r['what']} | {r['seconds_per_step']} | "
           f"{100 * r['pair_product_forward_share']:.1f}% | {100 * r['all_bmm_share']:.1f}% | "
           f"{r['top_ops'][0][0]} {100 * r['top_ops'][0][1]:.1f}% |" for r in rows]
    _common.write_results(args, NAME, {"rows": rows}, "\n".join(md), started=started)


if __name__ == "__main__":
    sys.exit(_common.run(main))
