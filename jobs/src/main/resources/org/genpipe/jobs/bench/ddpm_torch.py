# Reference timing for `pipeline bench-ddpm`: this project's text-conditioned DDPM U-Net
# (org.genpipe.models.ddpm.Ddpm) in PyTorch (CPU), layer for layer: sinusoidal time embedding through
# a 2-layer SiLU MLP; a text encoder (one-hot characters times an embedding, position embeddings, one
# pre-LayerNorm transformer block with single-head attention and a SiLU MLP) whose mean is added to the
# time embedding; per level ResBlocks (GroupNorm, SiLU, 3x3 conv, per-channel embedding shift), self-
# and cross-attention (single head) at the lowest levels and in the middle; stride-2 conv down, nearest
# x2 + conv up, skip concatenations. Mode "train": one step = noise, forward, MSE on eps, backward,
# Adam. Mode "sample": DDIM with classifier-free guidance (one forward of 2N per step), images/s.
# Prints one JSON line.
import json
import math
import sys
import time

import timing
import torch
import torch.nn.functional as F
from torch import nn

(mode, threads, batch, height, width_px, w, mults, groups, text_width, length, vocab, warmup,
 steps) = sys.argv[1:14]
threads, batch, height, width_px, w, groups, text_width, length, vocab, warmup, steps = (
    int(a) for a in (threads, batch, height, width_px, w, groups, text_width, length, vocab, warmup, steps))
mults = [int(m) for m in mults.split(",")]
torch.set_num_threads(threads)
torch.manual_seed(0)
time_width = 2 * ((w + 1) // 2)
emb_width = 4 * w


def group_count(c):
    g = min(groups, c)
    while c % g:
        g -= 1
    return g


class Attention(nn.Module):
    def __init__(self, cq, ckv, dim):
        super().__init__()
        self.q, self.k, self.v, self.o = nn.Linear(cq, dim), nn.Linear(ckv, dim), nn.Linear(ckv, dim), nn.Linear(dim, cq)
        self.scale = 1 / math.sqrt(dim)

    def forward(self, q, kv):
        a = torch.softmax(self.q(q) @ self.k(kv).transpose(1, 2) * self.scale, 2)
        return self.o(a @ self.v(kv))


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(group_count(cin), cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.emb = nn.Linear(emb_width, cout)
        self.n2, self.c2 = nn.GroupNorm(group_count(cout), cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.c1(F.silu(self.n1(x))) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm, self.self_attn = nn.GroupNorm(group_count(c), c), Attention(c, c, c)
        self.cross_norm, self.cross = nn.LayerNorm(c), Attention(c, text_width, c)

    def forward(self, x, tokens):
        n, c, h, wd = x.shape
        seq = x.reshape(n, c, h * wd).permute(0, 2, 1)
        normed = self.norm(x).reshape(n, c, h * wd).permute(0, 2, 1)
        out = seq + self.self_attn(normed, normed)
        out = out + self.cross(self.cross_norm(out), tokens)
        return out.permute(0, 2, 1).reshape(n, c, h, wd)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.t1, self.t2 = nn.Linear(time_width, emb_width), nn.Linear(emb_width, emb_width)
        self.embed = nn.Parameter(torch.randn(vocab, text_width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, length, text_width) * 0.02)
        self.tn1, self.tattn = nn.LayerNorm(text_width), Attention(text_width, text_width, text_width)
        self.tn2 = nn.LayerNorm(text_width)
        self.mlp = nn.Sequential(nn.Linear(text_width, 2 * text_width), nn.SiLU(), nn.Linear(2 * text_width, text_width))
        self.pool = nn.Linear(text_width, emb_width)
        self.inc = nn.Conv2d(1, w, 3, 1, 1)
        levels = len(mults)
        attended = lambda l: l >= levels - 1
        self.down, ch, skips = nn.ModuleList(), w, [w]
        for l, m in enumerate(mults):
            out = w * m
            blocks = nn.ModuleList([ResBlock(ch, out), AttnBlock(out) if attended(l) else nn.Identity()])
            ch = out
            skips.append(ch)
            down = nn.Conv2d(ch, ch, 3, 2, 1) if l < levels - 1 else None
            if down is not None:
                skips.append(ch)
            self.down.append(nn.ModuleList([blocks, down if down is not None else nn.Identity()]))
        self.mid1, self.mid_attn, self.mid2 = ResBlock(ch, ch), AttnBlock(ch), ResBlock(ch, ch)
        self.up = nn.ModuleList()
        for l in reversed(range(levels)):
            out = w * mults[l]
            blocks = nn.ModuleList()
            for _ in range(2):
                sc = skips.pop()
                blocks.append(nn.ModuleList([ResBlock(ch + sc, out), AttnBlock(out) if attended(l) else nn.Identity()]))
                ch = out
            self.up.append(nn.ModuleList([blocks, nn.Conv2d(ch, ch, 3, 1, 1) if l > 0 else nn.Identity()]))
        self.out_norm, self.outc = nn.GroupNorm(group_count(ch), ch), nn.Conv2d(ch, 1, 3, 1, 1)
        self.levels = levels

    def forward(self, x, t_features, text):
        emb = self.t2(F.silu(self.t1(t_features)))
        tok = text @ self.embed + self.pos
        n1 = self.tn1(tok)
        tok = tok + self.tattn(n1, n1)
        tok = tok + self.mlp(self.tn2(tok))
        emb = F.silu(emb + self.pool(tok.mean(1)))
        a = self.inc(x)
        hs = [a]
        for l, (blocks, down) in enumerate(self.down):
            a = blocks[0](a, emb)
            a = blocks[1](a, tok) if isinstance(blocks[1], AttnBlock) else a
            hs.append(a)
            if l < self.levels - 1:
                a = down(a)
                hs.append(a)
        a = self.mid2(self.mid_attn(self.mid1(a, emb), tok), emb)
        for i, (blocks, up) in enumerate(self.up):
            l = self.levels - 1 - i
            for res, attn in blocks:
                a = res(torch.cat([a, hs.pop()], 1), emb)
                a = attn(a, tok) if isinstance(attn, AttnBlock) else a
            if l > 0:
                a = up(F.interpolate(a, scale_factor=2, mode="nearest"))
        return self.outc(F.silu(self.out_norm(a)))


def sinusoid(t):
    half = time_width // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half) / half)
    a = t[:, None].float() * f[None]
    return torch.cat([a.sin(), a.cos()], 1)


model = UNet()
betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
alpha_bar = torch.cumprod(1 - betas, 0)
text = F.one_hot(torch.randint(2, vocab, (batch, length)), vocab).float()
if mode == "train":
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x0 = torch.rand(batch, 1, height, width_px) * 2 - 1

    def step():
        t = torch.randint(0, 1000, (batch,))
        eps = torch.randn_like(x0)
        ab = alpha_bar[t].float()[:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = F.mse_loss(model(xt, sinusoid(t), text), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()

    timing.report(step, warmup, steps, threads)
else:
    null = torch.zeros(batch, length, vocab)
    null[:, :, 1] = 1
    both = torch.cat([text, null])
    ts = [round(i * 999 / (steps - 1)) for i in range(steps)][::-1]

    @torch.no_grad()
    def sample():
        x = torch.randn(batch, 1, height, width_px)
        for i, t in enumerate(ts):
            ab = alpha_bar[t].item()
            ab_prev = alpha_bar[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
            e = model(torch.cat([x, x]), sinusoid(torch.full((2 * batch,), t)), both)
            eps = e[batch:] + 2.0 * (e[:batch] - e[batch:])
            x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
            x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
        return x

    for _ in range(warmup):
        sample()
    t0 = time.perf_counter()
    sample()
    seconds = time.perf_counter() - t0
    print(json.dumps({"torch": torch.__version__, "threads": threads, "ms_per_step": seconds * 1000,
                      "images_per_second": batch / seconds}))
