# Reference timing for `pipeline bench-train`: the beta-VAE of MISSION.md in PyTorch (CPU),
# trained with the same loss, optimizer and batch size. Prints one JSON line.
import sys

import timing
import torch
from torch import nn

class VAE(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.BatchNorm2d(16),
            nn.Conv2d(16, 32, 3, 2, 0), nn.ReLU(),
            nn.Flatten(), nn.Linear(288, 128), nn.ReLU())
        self.mu = nn.Linear(128, latent)
        self.logvar = nn.Linear(128, latent)
        self.dec = nn.Sequential(
            nn.Linear(latent, 128), nn.ReLU(), nn.Linear(128, 288), nn.ReLU(),
            nn.Unflatten(1, (32, 3, 3)),
            nn.ConvTranspose2d(32, 16, 3, 2), nn.ReLU(), nn.BatchNorm2d(16),
            nn.ConvTranspose2d(16, 8, 3, 2, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, 2, 1, 1))

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.dec(z), mu, logvar

def loss(model, x):
    """The beta-VAE's loss (beta 1): reconstruction BCE summed over pixels plus KL, per example."""
    logits, mu, logvar = model(x)
    rec = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    return rec + kl


def main():
    threads, batch, latent, warmup, steps = (int(a) for a in sys.argv[1:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = VAE(latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, 28, 28)

    def step():
        value = loss(model, x)
        opt.zero_grad()
        value.backward()
        opt.step()

    timing.report(step, warmup, steps, threads)


if __name__ == "__main__":
    main()
