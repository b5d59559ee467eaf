package org.genpipe.jobs.train;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.models.nn.Noise;

/**
 * One worker's slice of the records, held in memory (compact uint8) for the whole run, and its
 * minibatches: batch {@code k} of epoch {@code e} is a pure function of (seed, worker, e, k), so a
 * retried round or a resumed run draws exactly the same examples.
 */
public final class WorkerData {
  private final int worker;
  private final List<ImageRecord> records;
  private final long seed;
  private final boolean shuffle;
  private long permutationEpoch = -1;
  private int[] permutation;

  public WorkerData(int worker, List<ImageRecord> records, long seed, boolean shuffle) {
    this.worker = worker;
    this.records = records;
    this.seed = seed;
    this.shuffle = shuffle;
  }

  /** Reads a worker's slices of the shard files. */
  public static WorkerData load(int worker, List<DataPlan.Slice> slices, Configuration conf, long seed, boolean shuffle) {
    List<ImageRecord> records = new ArrayList<>();
    for (DataPlan.Slice s : slices) {
      Iterator<ImageRecord> it = ShardReader.read(List.of(new Path(s.path())), conf);
      long row = 0;
      while (it.hasNext() && row < s.to()) {
        ImageRecord r = it.next();
        if (row >= s.from()) {
          records.add(r);
        }
        row++;
      }
      if (row < s.to()) {
        throw new IllegalStateException(s.path() + " has " + row + " rows; the manifest says at least " + s.to());
      }
    }
    return new WorkerData(worker, records, seed, shuffle);
  }

  public int size() {
    return records.size();
  }

  /** The batch of local step {@code step} (drop-last batching, reshuffled each epoch). */
  public Minibatch batch(long step, int batchSize, PixelRange range) {
    return Minibatch.of(batchRecords(step, batchSize), range);
  }

  /** The records of local step {@code step}'s batch. */
  public List<ImageRecord> batchRecords(long step, int batchSize) {
    long perEpoch = records.size() / batchSize;
    long epoch = step / perEpoch;
    int k = (int) (step % perEpoch);
    int[] order = order(epoch);
    List<ImageRecord> batch = new ArrayList<>(batchSize);
    for (int i = 0; i < batchSize; i++) {
      batch.add(records.get(order[k * batchSize + i]));
    }
    return batch;
  }

  private int[] order(long epoch) {
    if (epoch != permutationEpoch) {
      int n = records.size();
      int[] p = new int[n];
      for (int i = 0; i < n; i++) {
        p[i] = i;
      }
      if (shuffle) {
        SplittableRandom r = new SplittableRandom(Noise.mix(seed, worker, epoch));
        for (int i = n - 1; i > 0; i--) {
          int j = r.nextInt(i + 1);
          int t = p[i];
          p[i] = p[j];
          p[j] = t;
        }
      }
      permutation = p;
      permutationEpoch = epoch;
    }
    return permutation;
  }
}
