# Reference timing for `pipeline bench-gan --model pix2pix`: this project's Pix2Pix
# (org.genpipe.models.pix2pix.Pix2Pix) in PyTorch (CPU): the U-Net generator with log2(size) levels,
# widths w * min(2^k, 8), dropout 0.5 on the three innermost decoder blocks, and the 70x70 PatchGAN on
# (condition, image); no bias before batch norm; non-saturating loss, D's loss halved, lambda 100 L1;
# Adam 2e-4 (0.5, 0.999); N(0, 0.02) weights. One step = D's update on (x, y) and (x, G(x)) detached,
# then G's update. No jitter (it is data loading in both). Prints one JSON line.
import math, sys

import timing
import torch
from torch import nn

threads, size, batch, width = (int(a) for a in sys.argv[1:5])
norm_name = sys.argv[5]
warmup, steps = int(sys.argv[6]), int(sys.argv[7])
torch.set_num_threads(threads)
torch.manual_seed(0)
batch_norm = norm_name == "batch"


def norm(ch):
    return nn.BatchNorm2d(ch) if batch_norm else nn.InstanceNorm2d(ch)


class UNet(nn.Module):
    def __init__(self, size, w, c=3):
        super().__init__()
        self.levels = int(math.log2(size))
        widths = [w * min(2 ** k, 8) for k in range(self.levels)]
        self.downs = nn.ModuleList([nn.Conv2d(c, widths[0], 4, 2, 1)])
        self.down_norms = nn.ModuleList([nn.Identity()])
        for k in range(1, self.levels):
            normed = k < self.levels - 1
            self.downs.append(nn.Conv2d(widths[k - 1], widths[k], 4, 2, 1, bias=not (normed and batch_norm)))
            self.down_norms.append(norm(widths[k]) if normed else nn.Identity())
        self.ups = nn.ModuleList()
        self.up_norms = nn.ModuleList()
        self.drops = nn.ModuleList()
        for k in range(self.levels - 1, 0, -1):
            in_ch = widths[k] if k == self.levels - 1 else 2 * widths[k]
            self.ups.append(nn.ConvTranspose2d(in_ch, widths[k - 1], 4, 2, 1, bias=not batch_norm))
            self.up_norms.append(norm(widths[k - 1]))
            self.drops.append(nn.Dropout(0.5) if self.levels - 1 - k < 3 else nn.Identity())
        self.out = nn.ConvTranspose2d(2 * widths[0], c, 4, 2, 1)

    def forward(self, x):
        e = [self.downs[0](x)]
        for k in range(1, self.levels):
            e.append(self.down_norms[k](self.downs[k](nn.functional.leaky_relu(e[-1], 0.2))))
        u = None
        for i, k in enumerate(range(self.levels - 1, 0, -1)):
            h = e[k] if u is None else torch.cat([e[k], u], 1)
            u = self.drops[i](self.up_norms[i](self.ups[i](torch.relu(h))))
        return torch.tanh(self.out(torch.relu(torch.cat([e[0], u], 1))))


def patch_gan(w, c=3, n=3):
    layers = [nn.Conv2d(2 * c, w, 4, 2, 1), nn.LeakyReLU(0.2)]
    for k in range(1, n + 1):
        layers += [nn.Conv2d(w * min(2 ** (k - 1), 8), w * min(2 ** k, 8), 4, 2 if k < n else 1, 1,
                             bias=not batch_norm), norm(w * min(2 ** k, 8)), nn.LeakyReLU(0.2)]
    layers.append(nn.Conv2d(w * min(2 ** n, 8), 1, 4, 1, 1))
    return nn.Sequential(*layers)


def init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


G, D = UNet(size, width), patch_gan(width)
G.apply(init)
D.apply(init)
opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
x = torch.rand(batch, 3, size, size) * 2 - 1
y = torch.rand(batch, 3, size, size) * 2 - 1


def step():
    fake = G(x)
    out_r, out_f = D(torch.cat([x, y], 1)), D(torch.cat([x, fake.detach()], 1))
    d_loss = 0.5 * (bce(out_r, torch.ones_like(out_r)) + bce(out_f, torch.zeros_like(out_f)))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    out = D(torch.cat([x, fake], 1))
    g_loss = bce(out, torch.ones_like(out)) + 100 * (fake - y).abs().mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()


timing.report(step, warmup, steps, threads)
