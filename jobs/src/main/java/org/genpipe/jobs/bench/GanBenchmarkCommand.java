package org.genpipe.jobs.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.TrainableModel;
import org.genpipe.models.gan.Gan;
import org.genpipe.models.gan.GanLoss;
import org.genpipe.models.gan.GanSettings;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.pix2pix.Pix2Pix;
import org.genpipe.models.pix2pix.Pix2PixSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "bench-gan",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark a GAN training step (D's update, then G's on the same noise or condition) here and in",
      "PyTorch CPU (--python, --torch-threads threads) in one run, with the ratio: DCGAN and AC-GAN on 32x32x3",
      "images, Pix2Pix on --size pairs (U-Net G, 70x70 PatchGAN, lambda 100 L1, no jitter). Same architecture,",
      "non-saturating loss, Adam 2e-4 (0.5, 0.999), N(0, 0.02) weights.",
      "ND4J's threads follow OMP_NUM_THREADS (the launcher sets 1 unless you set it)."
    })
public final class GanBenchmarkCommand implements Callable<Integer> {
  @Option(names = "--model", defaultValue = "dcgan", description = "dcgan, acgan or pix2pix (default ${DEFAULT-VALUE}).")
  String model;

  @Option(names = "--batch", description = "Batch size (default 64; pix2pix 1, as the paper).")
  Integer batch;

  @Option(names = "--width", defaultValue = "64",
      description = "DCGAN base channels; Pix2Pix G's and D's first widths (default ${DEFAULT-VALUE}).")
  int width;

  @Option(names = "--size", defaultValue = "256", description = "Pix2Pix image side: 64, 128 or 256 (default ${DEFAULT-VALUE}).")
  int size;

  @Option(names = "--norm", defaultValue = "batch", description = "Pix2Pix normalisation: batch or instance (default ${DEFAULT-VALUE}).")
  String norm;

  @Option(names = "--warmup", defaultValue = "40",
      description = "Untimed steps first (SameDiff's JIT warm-up; PyTorch gets a quarter; default ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--steps", defaultValue = "20", description = "Timed steps (default ${DEFAULT-VALUE}).")
  int steps;

  @Option(names = "--repeats", defaultValue = "3",
      description = "Timed blocks per side, alternating this project and PyTorch; the best of each is compared "
          + "(default ${DEFAULT-VALUE}).")
  int repeats;

  @Option(names = "--torch-threads", defaultValue = "2", description = "PyTorch threads (default ${DEFAULT-VALUE}).")
  int torchThreads;

  @Option(names = "--averaging-study", description = "Instead: train a small DCGAN on 2 workers with several "
      + "averaging frequencies and report D's losses and the domain FID of each run.")
  boolean averagingStudy;

  @Option(names = "--frequencies", split = ",", defaultValue = "1,10,50",
      description = "Averaging frequencies of the study (default ${DEFAULT-VALUE}).")
  List<Integer> frequencies;

  @Option(names = "--study-steps", defaultValue = "400", description = "Steps per study run (default ${DEFAULT-VALUE}).")
  int studySteps;

  @Option(names = "--work", defaultValue = "data/bench-gan", description = "Study scratch folder (default ${DEFAULT-VALUE}).")
  java.nio.file.Path work;

  @Option(names = "--python", defaultValue = PythonReference.DEFAULT_PYTHON,
      description = "Python with torch (default ${DEFAULT-VALUE}, made by scripts/reference-env).")
  String python;

  @Override
  public Integer call() throws Exception {
    if (averagingStudy) {
      AveragingStudy.run(work, frequencies, studySteps);
      return 0;
    }
    if (!List.of("dcgan", "acgan", Pix2Pix.NAME).contains(model)) {
      throw new org.genpipe.common.io.BadInputException("--model " + model + ": expected dcgan, acgan or pix2pix");
    }
    boolean pix2pix = Pix2Pix.NAME.equals(model);
    int n = batch != null ? batch : pix2pix ? 1 : 64;
    String torchWarmup = String.valueOf(Math.max(3, warmup / 4));
    System.out.printf("%s step (D then G), batch %d%s; OMP_NUM_THREADS=%s%n", model, n, pix2pix
        ? ", " + size + "x" + size + ", widths " + width + ", " + norm + " norm" : ("dcgan".equals(model) ? ", width "
        + width : "") + ", latent 100", System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)"));
    AlternatingBlocks.Best best;
    try (Timed timed = new Timed(n)) {
      best = AlternatingBlocks.run(repeats, torchThreads, block -> timed.stepMillis(block == 0 ? warmup : 0),
          block -> pix2pix
              ? PythonReference.run(python, "pix2pix_torch.py", "ms_per_step", "torch", PythonReference.TORCH_ENV,
                  String.valueOf(torchThreads), String.valueOf(size), String.valueOf(n), String.valueOf(width), norm,
                  torchWarmup, String.valueOf(steps))
              : PythonReference.run(python, "gan_torch.py", "ms_per_step", "torch", PythonReference.TORCH_ENV, model,
                  String.valueOf(torchThreads), String.valueOf(n), String.valueOf(width), "100", torchWarmup,
                  String.valueOf(steps)));
    }
    best.print(repeats, "%.1f", "target <= 1: no slower");
    return 0;
  }

  /** One model and batch, timed in blocks (the warm-up only before the first). */
  private final class Timed implements AutoCloseable {
    private final TrainableModel gan;
    private final AlternatingBlocks.StepTimer timer;

    Timed(int n) {
      OptimizerSettings adam = OptimizerSettings.adam(2e-4, 0.5, 0.999);
      int side = Pix2Pix.NAME.equals(model) ? size : 32;
      if (Pix2Pix.NAME.equals(model)) {
        Pix2PixSettings s = new Pix2PixSettings(size, Pix2PixSettings.LABELS_TO_PHOTO, width, width, "patch70", norm,
            GanLoss.NON_SATURATING, 100, 0.5, false, 0.02, 0, 0, adam, adam);
        gan = new Pix2Pix.Factory(s, new ImageShape(size, size, 3), 0).create();
      } else {
        GanSettings s = new GanSettings(100, width, GanLoss.NON_SATURATING, 0, 0, 1, null, "batch", List.of(), 0, 0,
            0.02, adam, adam);
        gan = new Gan.Factory(model, s, new ImageShape(32, 32, 3), 10, 0).create();
      }
      var images = org.nd4j.linalg.ops.transforms.Transforms.tanh(Noise.gaussian(1, n, 3, side, side), false);
      var maps = org.nd4j.linalg.ops.transforms.Transforms.tanh(Noise.gaussian(2, n, 3, side, side), false);
      int[] labels = new int[n];
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        ids.add("b" + i);
        labels[i] = i % 10;
      }
      timer = new AlternatingBlocks.StepTimer(gan,
          new Minibatch(images, maps, org.nd4j.linalg.factory.Nd4j.createFromArray(labels), null, ids));
    }

    double stepMillis(int untimed) {
      return timer.millis(untimed, steps);
    }

    @Override
    public void close() {
      gan.close();
    }
  }
}
