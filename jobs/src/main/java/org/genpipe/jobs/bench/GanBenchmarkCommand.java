package org.genpipe.jobs.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.gan.Gan;
import org.genpipe.models.gan.GanLoss;
import org.genpipe.models.gan.GanSettings;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.nn.OptimizerSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "bench-gan",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark a GAN training step (D's update, then G's on the same noise) on 32x32x3 images, here and in",
      "PyTorch CPU (/usr/bin/python3 with Debian's python3-torch, --torch-threads threads) in one run, with the",
      "ratio. Same architecture, non-saturating loss, Adam 2e-4 (0.5, 0.999), N(0, 0.02) weights.",
      "ND4J's threads follow OMP_NUM_THREADS (the launcher sets 1 unless you set it)."
    })
public final class GanBenchmarkCommand implements Callable<Integer> {
  @Option(names = "--model", defaultValue = "dcgan", description = "dcgan or acgan (default ${DEFAULT-VALUE}).")
  String model;

  @Option(names = "--batch", defaultValue = "64", description = "Batch size (default ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--width", defaultValue = "64", description = "DCGAN base channels (default ${DEFAULT-VALUE}).")
  int width;

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

  @Option(names = "--python", defaultValue = "/usr/bin/python3", description = "Python with torch (default ${DEFAULT-VALUE}).")
  String python;

  @Override
  public Integer call() throws Exception {
    if (averagingStudy) {
      AveragingStudy.run(work, frequencies, studySteps);
      return 0;
    }
    if (!List.of("dcgan", "acgan").contains(model)) {
      throw new org.genpipe.common.io.BadInputException("--model " + model + ": expected dcgan or acgan");
    }
    System.out.printf("%s step (D then G), batch %d%s, latent 100; OMP_NUM_THREADS=%s%n", model, batch,
        "dcgan".equals(model) ? ", width " + width : "", System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)"));
    AlternatingBlocks.Best best;
    try (Timed timed = new Timed()) {
      best = AlternatingBlocks.run(repeats, torchThreads, block -> timed.stepMillis(block == 0 ? warmup : 0),
          block -> PythonReference.run(python, "gan_torch.py", "ms_per_step", "python3-torch",
              PythonReference.TORCH_ENV, model, String.valueOf(torchThreads), String.valueOf(batch),
              String.valueOf(width), "100", String.valueOf(Math.max(3, warmup / 4)), String.valueOf(steps)));
    }
    best.print(repeats, "%.1f", "target <= 1: no slower");
    return 0;
  }

  /** One model and batch, timed in blocks (the warm-up only before the first). */
  private final class Timed implements AutoCloseable {
    private final Gan gan;
    private final AlternatingBlocks.StepTimer timer;

    Timed() {
      OptimizerSettings adam = OptimizerSettings.adam(2e-4, 0.5, 0.999);
      GanSettings s = new GanSettings(100, width, GanLoss.NON_SATURATING, 0, 0, 1, null, "batch", List.of(), 0, 0, 0.02,
          adam, adam);
      gan = (Gan) new Gan.Factory(model, s, new ImageShape(32, 32, 3), 10, 0).create();
      var images = org.nd4j.linalg.ops.transforms.Transforms.tanh(Noise.gaussian(1, batch, 3, 32, 32), false);
      int[] labels = new int[batch];
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < batch; i++) {
        ids.add("b" + i);
        labels[i] = i % 10;
      }
      timer = new AlternatingBlocks.StepTimer(gan,
          new Minibatch(images, null, org.nd4j.linalg.factory.Nd4j.createFromArray(labels), null, ids));
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
