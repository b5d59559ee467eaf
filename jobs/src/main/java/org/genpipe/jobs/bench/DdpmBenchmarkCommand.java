package org.genpipe.jobs.bench;

import java.util.List;
import java.util.concurrent.Callable;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.Condition;
import org.genpipe.models.ddpm.Ddpm;
import org.genpipe.models.ddpm.DdpmSettings;
import org.genpipe.models.ddpm.Sampler;
import org.genpipe.models.nn.OptimizerSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "bench-ddpm",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark the text-conditioned DDPM: the U-Net's training step (noise, forward, MSE, backward, Adam) and DDIM",
      "sampling with classifier-free guidance (images/s), here and in PyTorch CPU running the same network layer for",
      "layer (--python, made by scripts/reference-env; --torch-threads threads), in alternating blocks, best of",
      "each, with the ratio. Default: conf/ddpm-captcha.yaml's network on 32x96 grey images with 5-character",
      "texts over 19 characters. ND4J's threads follow OMP_NUM_THREADS (the launcher sets 1 unless you set it)."
    })
public final class DdpmBenchmarkCommand implements Callable<Integer> {
  private static final String ALPHABET = ReferenceOptions.CAPTCHA_ALPHABET;

  @Option(names = "--batch", defaultValue = "16", description = "Training batch (default ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--height", defaultValue = "32", description = "Image height (default ${DEFAULT-VALUE}).")
  int height;

  @Option(names = "--image-width", defaultValue = "96", description = "Image width (default ${DEFAULT-VALUE}).")
  int imageWidth;

  @Option(names = "--text-length", defaultValue = "5", description = "Characters per text (default ${DEFAULT-VALUE}).")
  int length;

  @Option(names = "--width", defaultValue = "32", description = "U-Net width (default ${DEFAULT-VALUE}).")
  int width;

  @Option(names = "--mults", defaultValue = "1,2,2", split = ",", description = "Channel multiples per level (default 1,2,2).")
  List<Integer> mults;

  @Option(names = "--sample-batch", defaultValue = "16", description = "Images sampled at once (default ${DEFAULT-VALUE}).")
  int sampleBatch;

  @Option(names = "--sample-steps", defaultValue = "50", description = "DDIM steps (default ${DEFAULT-VALUE}).")
  int sampleSteps;

  @Option(names = "--warmup", defaultValue = "3", description = "Untimed training steps first (default ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--steps", defaultValue = "5", description = "Timed training steps per block (default ${DEFAULT-VALUE}).")
  int steps;

  @Mixin
  ReferenceOptions reference;

  @Override
  public Integer call() throws Exception {
    int groups = 8;
    DdpmSettings s = new DdpmSettings("text", ALPHABET, length, width, mults, 1, 1, groups, 64, 1000, "linear", 0.1,
        2.0, "ddim", sampleSteps, 0.0, 0.999, OptimizerSettings.adam(2e-4, 0.9, 0.999));
    System.out.printf("ddpm, %dx%dx1, width %d, levels %s, %d-character texts over %d; OMP_NUM_THREADS=%s%n", height,
        imageWidth, width, mults, length, ALPHABET.length(), System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)"));
    String m = String.join(",", mults.stream().map(String::valueOf).toList());
    try (Ddpm model = new Ddpm(s, new ImageShape(height, imageWidth, 1), 0)) {
      System.out.printf("training step, batch %d%n", batch);
      AlternatingBlocks.StepTimer timer = new AlternatingBlocks.StepTimer(model, batch(batch));
      AlternatingBlocks.Best train = AlternatingBlocks.run(reference.repeats, reference.torchThreads,
          block -> timer.millis(block == 0 ? warmup : 0, steps),
          block -> PythonReference.run(reference.python, "ddpm_torch.py", "ms_per_step", "torch", PythonReference.TORCH_ENV,
              args("train", batch, m, warmup, steps)));
      train.print(reference.repeats, "%.1f", "target <= 1: no slower");

      System.out.printf("DDIM sampling, %d steps, guidance 2 (one forward of %d images per step), %d images; the"
          + " times below are per whole sampling run%n",
          sampleSteps, 2 * sampleBatch, sampleBatch);
      Condition texts = new Condition(null, batch(sampleBatch).texts(), null);
      Sampler ddim = new Sampler("ddim", sampleSteps, 0.0, true);
      model.generate(sampleBatch, 0, texts, new Sampler("ddim", 2, 0.0, true), 2.0); // compiles the plans
      AlternatingBlocks.Best sample = AlternatingBlocks.run(reference.repeats, reference.torchThreads,
          block -> {
            long t = System.nanoTime();
            model.generate(sampleBatch, block, texts, ddim, 2.0);
            return (System.nanoTime() - t) / 1e6;
          },
          block -> PythonReference.run(reference.python, "ddpm_torch.py", "images_per_second", "torch",
              PythonReference.TORCH_ENV, args("sample", sampleBatch, m, block == 0 ? 1 : 0, sampleSteps)));
      sample.print(reference.repeats, "%.0f", "target <= 1: no slower");
      System.out.printf("  images/s: this project %.2f", sampleBatch / (sample.ours() / 1000));
      System.out.println(sample.hasReference() ? String.format(", PyTorch %.2f", sampleBatch / (sample.reference()
          / 1000)) : "");
    }
    return 0;
  }

  private String[] args(String mode, int n, String m, int warm, int count) {
    return new String[] {mode, String.valueOf(reference.torchThreads), String.valueOf(n), String.valueOf(height),
        String.valueOf(imageWidth), String.valueOf(width), m, "8", "64", String.valueOf(length),
        String.valueOf(ALPHABET.length() + 2), String.valueOf(warm), String.valueOf(count)};
  }

  /** Random images in [-1, 1] with random texts. */
  private Minibatch batch(int n) {
    Minibatch b = ReferenceOptions.captchas(n, height, imageWidth, length, false);
    org.nd4j.linalg.ops.transforms.Transforms.min(org.nd4j.linalg.ops.transforms.Transforms.max(b.images().muli(0.5),
        -1.0, false), 1.0, false);
    return b;
  }
}
