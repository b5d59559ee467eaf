package org.genpipe.jobs.config;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;

/**
 * Config section {@code train}: what to train on and how the parameter averaging runs. The averaging
 * keys mean what they mean in DL4J's ParameterAveragingTrainingMaster.
 *
 * @param records records folder written by preprocess
 * @param split the split trained on
 * @param evalSplit held-out split for report pictures (reconstructions, latent map)
 * @param output run folder: checkpoints, sample grids, loss plot, final model
 * @param workers parallel model replicas (Spark partitions), each on its own slice of the data
 * @param batchSizePerWorker examples per step on each worker
 * @param averagingFrequency local steps between two averagings
 * @param steps total steps per worker (0: use epochs)
 * @param epochs passes over each worker's slice, when steps is 0
 * @param shuffle reshuffle each worker's slice every epoch (seeded)
 * @param checkpointEvery rounds between checkpoints (one is always written at the end)
 * @param sampleEvery steps between fixed-noise sample grids (0: only at the end)
 * @param keepCheckpoints how many recent checkpoints to keep (the final one always stays)
 * @param monitor with each sample grid, log mode-collapse warning signs judged by the domain
 *     classifier of the evaluation job (trained once on the records and cached): sample diversity and
 *     the class distribution of samples
 * @param averaging how the workers' states meet: {@code mode: rounds} (each round a Spark job: the
 *     driver sends the state out and sums what comes back), {@code barrier} (one Spark barrier stage
 *     per checkpoint interval; the workers keep their replicas and average among themselves over TCP;
 *     rounds with a warning where a barrier stage cannot run) or {@code auto} (barrier where it can
 *     run, else rounds, said at INFO); {@code sharedMemory}: in barrier stages, workers on one host
 *     move their states through shared memory (/dev/shm, checked between them; else TCP)
 */
public record TrainSettings(
    String records,
    String split,
    String evalSplit,
    String output,
    int workers,
    int batchSizePerWorker,
    int averagingFrequency,
    long steps,
    int epochs,
    boolean shuffle,
    int checkpointEvery,
    int sampleEvery,
    int keepCheckpoints,
    boolean monitor,
    Averaging averaging)
    implements Serializable {

  /** {@code train.averaging}. */
  public record Averaging(String mode, boolean sharedMemory) implements Serializable {
    public static final java.util.List<String> MODES = java.util.List.of("auto", "barrier", "rounds");

    public Averaging {
      check(mode != null && MODES.contains(mode), "mode",
          "'" + mode + "' is not a mode; allowed: " + String.join(", ", MODES));
    }

    /** Whether barrier stages are asked for (where they can run: {@code auto}; or always: {@code barrier}). */
    public boolean barrier() {
      return !"rounds".equals(mode);
    }

    /** Whether a run that cannot use barrier stages warns (the user asked for them) rather than informs. */
    public boolean barrierRequired() {
      return "barrier".equals(mode);
    }
  }

  public TrainSettings {
    check(records != null && !records.isBlank(), "records", "missing: the records folder written by preprocess");
    check(split != null && !split.isBlank(), "split", "missing");
    check(output != null && !output.isBlank(), "output", "missing: the run folder");
    check(workers >= 1, "workers", "must be >= 1, got " + workers);
    check(batchSizePerWorker >= 1, "batchSizePerWorker", "must be >= 1, got " + batchSizePerWorker);
    check(averagingFrequency >= 1, "averagingFrequency", "must be >= 1, got " + averagingFrequency);
    check(steps >= 0, "steps", "must be >= 0, got " + steps);
    check(steps > 0 || epochs >= 1, "epochs", "must be >= 1 when steps is 0, got " + epochs);
    check(checkpointEvery >= 1, "checkpointEvery", "must be >= 1 round, got " + checkpointEvery);
    check(sampleEvery >= 0, "sampleEvery", "must be >= 0, got " + sampleEvery);
    check(keepCheckpoints >= 1, "keepCheckpoints", "must be >= 1, got " + keepCheckpoints);
    check(averaging != null, "averaging", "section missing");
  }
}
