# Shared by the PyTorch reference scripts: times a training step the same way in each.
import json
import time

import torch


def report(step, warmup, steps, threads):
    """Runs step() warmup times untimed, then steps times timed; prints one JSON line."""
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - t) * 1000 / steps
    print(json.dumps({"torch": torch.__version__, "threads": threads, "ms_per_step": ms}))
