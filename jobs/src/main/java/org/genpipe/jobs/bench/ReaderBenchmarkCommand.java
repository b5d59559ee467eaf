package org.genpipe.jobs.bench;

import java.util.concurrent.Callable;
import org.genpipe.common.records.ImageShape;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.reader.CaptchaReader;
import org.genpipe.models.reader.CaptchaReaderSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "bench-reader",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark the CAPTCHA reader's training step (forward, CTC loss and gradient, backward, Adam) on 32x96",
      "grey images with 5-character texts over 19 characters, here and in PyTorch CPU (--python, made by",
      "scripts/reference-env; --torch-threads threads; torch.nn.CTCLoss) in alternating blocks, best of each, with",
      "the ratio. ND4J's threads follow OMP_NUM_THREADS (the launcher sets 1 unless you set it)."
    })
public final class ReaderBenchmarkCommand implements Callable<Integer> {
  private static final String ALPHABET = ReferenceOptions.CAPTCHA_ALPHABET;
  private static final int LENGTH = 5;

  @Option(names = "--batch", defaultValue = "64", description = "Batch size (default ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--width", defaultValue = "32", description = "First convolution's channels (default ${DEFAULT-VALUE}).")
  int width;

  @Option(names = "--warmup", defaultValue = "30", description = "Untimed steps first (default ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--steps", defaultValue = "30", description = "Timed steps per block (default ${DEFAULT-VALUE}).")
  int steps;

  @Mixin
  ReferenceOptions reference;

  @Override
  public Integer call() throws Exception {
    System.out.printf("captcha-reader step, batch %d, 32x96x1, width %d, %d characters over %d; OMP_NUM_THREADS=%s%n",
        batch, width, LENGTH, ALPHABET.length(), System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)"));
    CaptchaReaderSettings s = new CaptchaReaderSettings(ALPHABET, LENGTH, width, 1, 0, 0, OptimizerSettings.adam(2e-3,
        0.9, 0.999));
    try (CaptchaReader reader = new CaptchaReader(s, new ImageShape(32, 96, 1), 0)) {
      AlternatingBlocks.StepTimer timer = new AlternatingBlocks.StepTimer(reader,
          ReferenceOptions.captchas(batch, 32, 96, LENGTH, true));
      AlternatingBlocks.Best best = AlternatingBlocks.run(reference.repeats, reference.torchThreads,
          block -> timer.millis(block == 0 ? warmup : 0, steps),
          block -> PythonReference.run(reference.python, "reader_torch.py", "ms_per_step", "torch", PythonReference.TORCH_ENV,
              String.valueOf(reference.torchThreads), String.valueOf(batch), String.valueOf(width), "32", "96",
              String.valueOf(ALPHABET.length() + 1), String.valueOf(LENGTH), String.valueOf(Math.max(3, warmup / 2)),
              String.valueOf(steps)));
      best.print(reference.repeats, "%.1f", "target <= 1: no slower");
    }
    return 0;
  }
}
