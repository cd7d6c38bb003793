#!/usr/bin/env bash
# The GPU checks of the fused kernels in one script (issue 20), for a machine with a CUDA device where graphdiff is
# importable from this checkout (PYTHONPATH=.) and torch, triton, torch_geometric are installed (rdkit is not
# needed). Each part has its own time limit, logs to OUT/log.txt and leaves its results there even when a later part
# fails:
#   1. benchmarks/gpu_attention_sweep.py: launch configurations of the attention kernels (bf16, TF32), OUT/sweep.json;
#   2. the attention micro-benchmarks (N = 256) in bf16 and TF32 with the sweep's fastest configurations and IEEE fp32
#      with the built-in one, every route (`graphdiff bench run kernels --only edge_attention`);
#   3. end to end: DeFoG training graphs/s on SBM, reference vs Triton, fp32 and bf16 autocast;
#   4. the kernel tests on the GPU (outputs and gradients against the reference, real Triton compilation).
# Usage: OUT=folder bash benchmarks/gpu_kernels.sh   (time limits of the parts: about 9 minutes in all)
set -u
OUT=${OUT:-gpu-kernels-out}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd) PYTHONUNBUFFERED=1 SWEEP="$OUT/sweep.json"
unset TRITON_INTERPRET
# `graphdiff bench run kernels --out DIR [--only K ...] [--set k=v ...]` without the CLI (whose parser imports RDKit),
# with the attention launch configurations of the sweep when it left them
kb() { python3 -c "
import json, os, sys, yaml
from graphdiff.bench.kernels import run_kernels
from graphdiff.bench.suites import get_suite
from graphdiff.kernels import attention_triton as at
if os.path.exists(os.environ['SWEEP']):
    for prec, (f, b) in json.load(open(os.environ['SWEEP'])).get('best', {}).items():
        at.CONFIGS[prec] = (f, b)
print('attention configurations:', json.dumps(at.CONFIGS), flush=True)
a = sys.argv[1:]; out = a[0]; only = a[1].split(',') if a[1] else None
sets = {k: yaml.safe_load(v) for k, v in (x.split('=', 1) for x in a[2:])}
run_kernels(get_suite('kernels'), out=out, overrides=sets, only=only, progress=True,
            command='graphdiff bench run kernels --out ' + out + (' --only ' + ' '.join(only) if only else '')
            + ''.join(' --set ' + x for x in a[2:]))" "$@"; }
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch, triton, torch_geometric as g; print('torch', torch.__version__, 'triton', triton.__version__, 'pyg', g.__version__, torch.cuda.get_device_name(0))"
} 2>&1 | tee -a "$OUT/log.txt"
echo "== 1. launch configurations" | tee -a "$OUT/log.txt"
timeout ${T_SWEEP:-170} python3 benchmarks/gpu_attention_sweep.py --out "$SWEEP" 2>&1 | tail -30 | tee -a "$OUT/log.txt"
echo "== 2. attention micro-benchmarks" | tee -a "$OUT/log.txt"
timeout ${T_ATT:-130} bash -c "$(declare -f kb); kb '$OUT/attention' edge_attention 'sizes=[256]' \
  'dtypes=[bfloat16, tf32, float32]' repeats=10" 2>&1 | tail -30 | tee -a "$OUT/log.txt"
echo "== 3. end to end (training graphs/s)" | tee -a "$OUT/log.txt"
timeout ${T_E2E:-110} bash -c "$(declare -f kb); kb '$OUT/e2e' end_to_end e2e_steps=10 'e2e_presets=[defog-sbm]'" \
  2>&1 | tail -20 | tee -a "$OUT/log.txt"
echo "== 4. kernel tests on the GPU" | tee -a "$OUT/log.txt"
timeout ${T_TESTS:-110} python3 -m pytest -q -x -n 4 -p no:cacheprovider tests/kernels 2>&1 | tail -25 \
  | tee -a "$OUT/log.txt"
date -u | tee -a "$OUT/log.txt"
