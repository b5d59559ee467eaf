# Reference timing for `pipeline bench-reader`: this project's CAPTCHA reader
# (org.genpipe.models.reader.CaptchaReader) in PyTorch (CPU): six 3x3 convolutions (strides 1, 2, 1,
# 2, 1, 1; widths w, 2w, 2w, 4w, 4w, 4w) without bias, each with batch norm and ReLU, the mean over
# the height, a linear layer per frame, log-softmax; CTC loss (blank 0) summed over the batch and
# divided by its size; Adam. One step = forward, CTC, backward, update. Prints one JSON line.
import sys

import timing
import torch
from torch import nn

threads, batch, width, height, image_width, classes, length, warmup, steps = (int(a) for a in sys.argv[1:10])
torch.set_num_threads(threads)
torch.manual_seed(0)


class Reader(nn.Module):
    def __init__(self, w):
        super().__init__()
        widths = [w, 2 * w, 2 * w, 4 * w, 4 * w, 4 * w]
        strides = [1, 2, 1, 2, 1, 1]
        layers, c = [], 1
        for out, s in zip(widths, strides):
            layers += [nn.Conv2d(c, out, 3, s, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(4 * w, classes)

    def forward(self, x):
        h = self.features(x).mean(2)  # [N, 4w, T]
        return torch.log_softmax(self.out(h.permute(0, 2, 1)), 2)  # [N, T, K]


model = Reader(width)
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
ctc = nn.CTCLoss(blank=0, reduction="sum")
x = torch.rand(batch, 1, height, image_width)
targets = torch.randint(1, classes, (batch, length))
frames = image_width // 4
input_lengths = torch.full((batch,), frames, dtype=torch.long)
target_lengths = torch.full((batch,), length, dtype=torch.long)


def step():
    lp = model(x)
    loss = ctc(lp.permute(1, 0, 2), targets, input_lengths, target_lengths) / batch
    opt.zero_grad()
    loss.backward()
    opt.step()


timing.report(step, warmup, steps, threads)
