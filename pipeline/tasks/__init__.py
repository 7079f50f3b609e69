"""Task adapters: how examples of each task become tensors, batches, logits and accuracy."""
from __future__ import annotations

from pipeline.tasks.base import EvalSets, RepairData, Split, TaskAdapter


def adapter_for(task: str) -> TaskAdapter:
    """The adapter of a manifest ``task`` (image / sentiment / ner)."""
    from pipeline.tasks.image import ImageTask
    from pipeline.tasks.ner import NerTask
    from pipeline.tasks.sentiment import SentimentTask

    adapters: dict[str, type] = {"image": ImageTask, "sentiment": SentimentTask, "ner": NerTask}
    if task not in adapters:
        raise NotImplementedError(f"task {task!r} is not supported yet (supported: {', '.join(sorted(adapters))})")
    return adapters[task]()


__all__ = ["EvalSets", "RepairData", "Split", "TaskAdapter", "adapter_for"]
