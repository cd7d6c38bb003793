#!/usr/bin/env bash
# The GPU checks of the fused kernels in one script (issue 20), for a machine with a CUDA device where graphdiff is
# importable from this checkout (PYTHONPATH=.) and torch, triton, torch_geometric are installed (rdkit is not
# needed). Each part has its own time limit, logs to OUT/log.txt and leaves its results there even when a later part fails:
#   1. the kernel tests on the GPU (outputs and gradients against the reference, real Triton compilation);
#   2. `graphdiff bench run kernels --only end_to_end`: DeFoG / DiGress training graphs/s on SBM, reference vs Triton;
#   3. the kernel micro-benchmarks (float32 at N = 64, 256, 512; bfloat16 at N = 256), every route.
# Usage: OUT=folder bash benchmarks/gpu_kernels.sh   (about 9 minutes on an H200)
set -u
OUT=${OUT:-gpu-kernels-out}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd) PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
# `graphdiff bench run kernels --out DIR [--only K ...] [--set k=v ...]` without the CLI (whose parser imports RDKit)
kb() { python3 -c "
import sys, yaml
from graphdiff.bench.kernels import run_kernels
from graphdiff.bench.suites import get_suite
a = sys.argv[1:]; out = a[0]; only = a[1].split(',') if a[1] else None
sets = {k: yaml.safe_load(v) for k, v in (x.split('=', 1) for x in a[2:])}
run_kernels(get_suite('kernels'), out=out, overrides=sets, only=only, progress=True,
            command='graphdiff bench run kernels --out ' + out + (' --only ' + ' '.join(only) if only else '')
            + ''.join(' --set ' + x for x in a[2:]))" "$@"; }
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch, triton, torch_geometric as g; print('torch', torch.__version__, 'triton', triton.__version__, 'pyg', g.__version__, torch.cuda.get_device_name(0))"
} 2>&1 | tee -a "$OUT/log.txt"
echo "== 1. kernel tests on the GPU"
timeout ${T_TESTS:-150} python3 -m pytest -q -x -n 4 -p no:cacheprovider tests/kernels 2>&1 | tail -25 | tee -a "$OUT/log.txt"
echo "== 2. end to end (training graphs/s)"
timeout ${T_E2E:-200} bash -c "$(declare -f kb); kb '$OUT/e2e' end_to_end e2e_steps=10" \
  2>&1 | tail -20 | tee -a "$OUT/log.txt"
echo "== 3. micro-benchmarks"
timeout ${T_FP32:-170} bash -c "$(declare -f kb); kb '$OUT/fp32' edge_attention,message_scatter 'sizes=[64, 256, 512]' \
  'dtypes=[float32]' repeats=10" 2>&1 | tail -30 \
  | tee -a "$OUT/log.txt"
timeout ${T_BF16:-90} bash -c "$(declare -f kb); kb '$OUT/bf16' edge_attention,message_scatter 'sizes=[256]' \
  'dtypes=[bfloat16]' repeats=10" 2>&1 | tail -30 \
  | tee -a "$OUT/log.txt"
date -u
