#!/usr/bin/env bash
# One short GPU check (run on a machine with an NVIDIA GPU, from the repository root):
#  1. torch sees the GPU; 2. a Ray actor with num_gpus=1 gets CUDA_VISIBLE_DEVICES (when ray is installed);
#  3. a tiny synthetic round is built; 4. SEAM repairs every model on CUDA and on CPU (same seed), so
#     the metrics can be compared and the speed-up read off. Results land in $OUT (or ./gpu-check-out).
set -uo pipefail
OUT="${OUT:-$PWD/gpu-check-out}"; mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
SEAM="python3 -m cli"
nvidia-smi -L
python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
try:
    import os, ray
except ImportError:
    print("ray: not installed on this machine, actor pinning not checked here")
else:
    ray.init(address="local", num_cpus=4, include_dashboard=False)
    @ray.remote(num_gpus=1)
    class Probe:
        def info(self):
            import torch
            return dict(cvd=os.environ.get("CUDA_VISIBLE_DEVICES"), gpu_ids=ray.get_gpu_ids(), n=torch.cuda.device_count())
    print("ray actor:", ray.get(Probe.remote().info.remote()))
    ray.shutdown()
PY
ROUND=/tmp/gpu-tiny
time $SEAM make-round "$ROUND" --task image --preset tiny --seed 0 || exit 1
$SEAM scan "$ROUND" --json > "$OUT/scan.json"
for dev in cuda cpu; do
  for m in "$ROUND"/id-*; do
    $SEAM repair "$m" --device "$dev" --json >> "$OUT/repair-$dev.jsonl" || true
  done
done
python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
for dev in ("cuda", "cpu"):
    for line in (out / f"repair-{dev}.jsonl").read_text().splitlines():
        r = json.loads(line)
        print(dev, r["model_id"], r["status"], r["device"], "acc %.3f->%s" % (r["acc_before"] or 0, r["acc_after"]),
              "asr", r["asr_before"], "->", r["asr_after"], "fid", r["fid"], "repair_s", r["seconds_repair"],
              "wall_s", round(r["seconds_wall"], 2), "peak_mb", round(r["peak_memory_mb"] or 0), r.get("error") or "")
PY
