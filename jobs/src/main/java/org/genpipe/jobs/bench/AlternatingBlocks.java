package org.genpipe.jobs.bench;

import org.genpipe.common.records.Minibatch;
import org.genpipe.models.TrainableModel;

/**
 * Times this project and its PyTorch reference in alternating blocks and keeps the best block of
 * each: this machine's speed drifts by 5-20% between runs of a few seconds, so one block per side
 * compares the drift as much as the code.
 */
final class AlternatingBlocks {
  /** One timed block of this project: ms per step; {@code block} counts from 0. */
  interface Ours {
    double millis(int block) throws Exception;
  }

  /** One run of the reference script: its JSON result line, or null when it cannot run. */
  interface Reference {
    String run(int block) throws Exception;
  }

  /** The best block of each side; {@code reference} is NaN when PyTorch could not run. */
  record Best(double ours, double reference, String torchVersion) {
    boolean hasReference() {
      return torchVersion != null;
    }

    double ratio() {
      return ours / reference;
    }

    /** "best of N: this project X ms/step, PyTorch Y ms/step, ratio this/PyTorch R (target)". */
    void print(int repeats, String millis, String target) {
      System.out.printf("  best of %d: this project " + millis + " ms/step", repeats, ours);
      if (hasReference()) {
        System.out.printf(", PyTorch " + millis + " ms/step, ratio this/PyTorch %.2f (%s)%n", reference, ratio(), target);
      } else {
        System.out.println();
      }
    }
  }

  private AlternatingBlocks() {}

  /** A model's training step on one fixed batch, timed in blocks; steps are numbered on across blocks. */
  static final class StepTimer {
    private final TrainableModel model;
    private final Minibatch batch;
    private long step;

    StepTimer(TrainableModel model, Minibatch batch) {
      this.model = model;
      this.batch = batch;
    }

    /** Runs {@code untimed} steps, then {@code timed} timed ones: ms per step. */
    double millis(int untimed, int timed) {
      for (int i = 0; i < untimed; i++) {
        model.trainStep(batch, step, step);
        step++;
      }
      long t = System.nanoTime();
      for (int i = 0; i < timed; i++) {
        model.trainStep(batch, step, step);
        step++;
      }
      return (System.nanoTime() - t) / 1e6 / timed;
    }
  }

  static Best run(int repeats, int torchThreads, Ours ours, Reference reference) throws Exception {
    double best = Double.MAX_VALUE;
    double ref = Double.MAX_VALUE;
    String torchVersion = null;
    String backend = org.nd4j.linalg.factory.Nd4j.getBackend().getClass().getSimpleName();
    for (int r = 0; r < repeats; r++) {
      double ms = ours.millis(r);
      best = Math.min(best, ms);
      System.out.printf("  [%d/%d] this project (SameDiff, ND4J %s): %.2f ms/step%n", r + 1, repeats, backend, ms);
      String json = reference.run(r);
      if (json != null) {
        double t = PythonReference.number(json, "ms_per_step");
        ref = Math.min(ref, t);
        torchVersion = json.replaceAll(".*\"torch\": \"([^\"]+)\".*", "$1");
        System.out.printf("  [%d/%d] PyTorch CPU %s, %d threads: %.2f ms/step%n", r + 1, repeats, torchVersion,
            torchThreads, t);
      }
    }
    // with -Dgenpipe.profile=true (PIPELINE_JAVA_OPTS): where this project's time went, by op type
    String profile = org.genpipe.models.nn.GraphPlan.profileReport();
    if (!profile.isEmpty()) {
      System.out.print("  this project's compiled plans by op type (all blocks, warm-up included):\n" + profile);
    }
    return new Best(best, torchVersion == null ? Double.NaN : ref, torchVersion);
  }
}
