"""``seam report --plots DIR``: FID histogram per method config, ACC vs ASR before/after scatter."""
from __future__ import annotations

from pathlib import Path

from pipeline.report import query

_ROWS_SQL = """
SELECT method_config, acc_before, asr_before, acc_after, asr_after, fid FROM results
WHERE status = 'ok' ORDER BY method_config, round, model_id
"""


def write_plots(root: str | Path, out_dir: str | Path) -> list[Path]:
    """One PNG pair per method config; returns the files written (none when there are no ok rows)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display (servers, ray jobs)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[dict]] = {}
    for rec in query(root, _ROWS_SQL).records():
        groups.setdefault(rec["method_config"], []).append(rec)
    written = []
    for name, recs in groups.items():
        fids = [r["fid"] for r in recs if r["fid"] is not None]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.hist(fids, bins=20, range=(min([-0.1, *fids]), max([1.05, *fids])), color="tab:blue")
        ax.set(title=f"FID, {name} ({len(fids)} poisoned models)", xlabel="FID = (ACC_after - ASR_after) / ACC_before",
               ylabel="models")
        written.append(_save(fig, out_dir / f"fid_{name}.png", plt))

        fig, ax = plt.subplots(figsize=(5, 4.5))
        for phase, colour in (("before", "tab:red"), ("after", "tab:green")):
            pts = [(r[f"acc_{phase}"], r[f"asr_{phase}"]) for r in recs if r[f"asr_{phase}"] is not None]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, c=colour, label=f"{phase} repair")
        ax.set(title=f"ACC vs ASR, {name}", xlabel="ACC (clean)", ylabel="ASR (triggered)", xlim=(0, 1.02),
               ylim=(-0.02, 1.02))
        ax.legend(loc="best")
        written.append(_save(fig, out_dir / f"acc_asr_{name}.png", plt))
    return written


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
