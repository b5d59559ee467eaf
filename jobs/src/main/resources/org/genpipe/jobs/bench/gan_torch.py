# Reference timing for `pipeline bench-gan`: DCGAN or AC-GAN of MISSION.md in PyTorch (CPU), with the
# architecture, loss, optimizers and batch size of this project's models (org.genpipe.models.gan).
# One step = D's update on real and G(z) (detached), then G's update on the same z. Prints one JSON line.
import sys

import timing
import torch
from torch import nn

model_name = sys.argv[1]
threads, batch, width, latent, warmup, steps = (int(a) for a in sys.argv[2:8])
torch.set_num_threads(threads)
torch.manual_seed(0)
classes = 10

def init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)

if model_name == "dcgan":
    w = width
    G = nn.Sequential(
        nn.Linear(latent, 4 * w * 16), nn.Unflatten(1, (4 * w, 4, 4)), nn.BatchNorm2d(4 * w), nn.ReLU(),
        nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
        nn.ConvTranspose2d(w, 3, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(16 * 4 * w, 1))
    g_in = latent
else:
    G = nn.Sequential(
        nn.Linear(latent + classes, 384 * 16), nn.ReLU(), nn.Unflatten(1, (384, 4, 4)),
        nn.ConvTranspose2d(384, 192, 5, 2, 2, 1, bias=False), nn.BatchNorm2d(192), nn.ReLU(),
        nn.ConvTranspose2d(192, 96, 5, 2, 2, 1, bias=False), nn.BatchNorm2d(96), nn.ReLU(),
        nn.ConvTranspose2d(96, 3, 5, 2, 2, 1), nn.Tanh())
    layers = []
    chans = [3, 16, 32, 64, 128, 256, 512]
    strides = [2, 1, 2, 1, 2, 1]
    for i in range(6):
        layers.append(nn.Conv2d(chans[i], chans[i + 1], 3, strides[i], 1, bias=(i == 0)))
        if i > 0:
            layers.append(nn.BatchNorm2d(chans[i + 1]))
        layers += [nn.LeakyReLU(0.2), nn.Dropout(0.5)]
    D = nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * 4 * 512, 1 + classes))
    g_in = latent + classes

G.apply(init)
D.apply(init)
opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
ce = nn.CrossEntropyLoss()
real = torch.rand(batch, 3, 32, 32) * 2 - 1
labels = torch.randint(0, classes, (batch,))
ones = torch.ones(batch, 1)
zeros = torch.zeros(batch, 1)

def step():
    z = torch.randn(batch, latent)
    fake_labels = torch.randint(0, classes, (batch,))
    if model_name != "dcgan":
        z = torch.cat([z, nn.functional.one_hot(fake_labels, classes).float()], 1)
    fake = G(z)
    out_r, out_f = D(real), D(fake.detach())
    d_loss = bce(out_r[:, :1], ones) + bce(out_f[:, :1], zeros)
    if model_name != "dcgan":
        d_loss = d_loss + ce(out_r[:, 1:], labels) + ce(out_f[:, 1:], fake_labels)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    out = D(fake)
    g_loss = bce(out[:, :1], ones)
    if model_name != "dcgan":
        g_loss = g_loss + ce(out[:, 1:], fake_labels)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

timing.report(step, warmup, steps, threads)
