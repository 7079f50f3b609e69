#!/usr/bin/env bash
# Submit a whole-round repair to a running Ray cluster (head dashboard on :8265).
# Round data and the result root must be on storage every node mounts at the same path
# (NFS, a PVC, ...): the job's working directory is a temp folder, so give absolute paths.
#
#   RAY_HEAD=http://ray-head.example:8265 ROUND=/data/trojai/round4-train RESULTS=/data/seam-results \
#       docker/submit-example.sh
#
# Ray >= 2.52 enables token authentication by default: export RAY_AUTH_TOKEN (or
# RAY_AUTH_TOKEN_PATH) with the cluster's token, or RAY_AUTH_MODE=disabled on a trusted loopback setup.
set -euo pipefail
: "${RAY_HEAD:=http://127.0.0.1:8265}"
: "${ROUND:?absolute path of the TrojAI round directory or manifest}"
: "${RESULTS:?absolute path of the result root}"
SUBMISSION_ID="seam-$(basename "$ROUND")-$(date +%Y%m%d-%H%M%S)"

# The image already contains the package (docker/Dockerfile), so no --working-dir is needed.
# `ray job submit` waits and exits 1 if the run exits non-zero (some models failed, exit 1 of
# `seam run`); read the summary with `ray job logs $SUBMISSION_ID`, or run `seam status $RESULTS`.
ray job submit --address "$RAY_HEAD" --submission-id "$SUBMISSION_ID" -- \
    seam run "$ROUND" --results "$RESULTS" --method seam --timeout-s 3600 --max-attempts 2 --save-models --json

# Rerunning the same command resumes: models with a row are skipped; add --retry-failed to rerun
# error/crashed/timeout rows. Then:
#   seam status "$RESULTS"; seam report "$RESULTS" --format markdown --plots "$RESULTS/plots"
