# Reference for `pipeline bench-train`'s averaging part: the same beta-VAE under PyTorch
# DistributedDataParallel (gloo backend), 2 processes x 1 thread on this machine, an allreduce of the
# gradients every step (synchronous data-parallel, what averagingFrequency 1 is). Times, per process,
# alternating blocks of steps with the allreduce (DDP) and without it (no_sync: the same two processes
# computing side by side), and one process alone; prints one JSON line (rank 0).
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from beta_vae_torch import VAE, loss


def timed(step, steps):
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) * 1000 / steps


def alone(batch, latent, warmup, steps, repeats):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = VAE(latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, 28, 28)

    def step():
        value = loss(model, x)
        opt.zero_grad()
        value.backward()
        opt.step()

    timed(step, warmup)
    return min(timed(step, steps) for _ in range(repeats))


def worker(rank, port, batch, latent, warmup, steps, repeats, out):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(VAE(latent))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(1 + rank)
    x = torch.rand(batch, 1, 28, 28)

    def step():
        value = loss(model, x)
        opt.zero_grad()
        value.backward()
        opt.step()

    def local_step():
        with model.no_sync():
            step()

    timed(step, warmup)
    ddp, local = [], []
    for _ in range(repeats):
        dist.barrier()
        local.append(timed(local_step, steps))
        dist.barrier()
        ddp.append(timed(step, steps))
    # each side's best block, the slower rank's (the allreduce waits for it)
    t = torch.tensor([min(local), min(ddp)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if rank == 0:
        out.put((t[0].item(), t[1].item()))
    dist.barrier()
    dist.destroy_process_group()


def main():
    batch, latent, warmup, steps, repeats = (int(a) for a in sys.argv[1:6])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, port, batch, latent, warmup, steps, repeats, out)) for r in range(2)]
    for p in procs:
        p.start()
    local, ddp = out.get(timeout=600)
    for p in procs:
        p.join()
        if p.exitcode != 0:
            sys.exit("a DDP process exited with %d" % p.exitcode)
    print(json.dumps({"torch": torch.__version__, "alone_ms_per_step": alone(batch, latent, warmup, steps, repeats),
                      "no_sync_ms_per_step": local, "ddp_ms_per_step": ddp}))


if __name__ == "__main__":
    main()
