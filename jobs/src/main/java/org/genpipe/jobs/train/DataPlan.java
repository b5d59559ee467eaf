package org.genpipe.jobs.train;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.Manifest;

/**
 * Which records each worker trains on: the split's records in manifest order, cut into
 * {@code workers} contiguous slices of equal size (+-1). The plan depends only on the manifest and
 * the worker count, so a retried or resumed task reads exactly the same records.
 */
public record DataPlan(List<List<Slice>> workers, long[] counts) implements Serializable {

  /** Rows [from, to) of one shard file. */
  public record Slice(String path, long from, long to) implements Serializable {}

  public static DataPlan of(Manifest manifest, Path recordsDir, String split, int workers, int batchSize) {
    List<Manifest.Shard> shards = manifest.shards().stream().filter(s -> s.split().equals(split)).toList();
    long total = shards.stream().mapToLong(Manifest.Shard::rows).sum();
    if (total == 0) {
      throw new BadInputException(recordsDir + ": split '" + split + "' has no records; the manifest has "
          + manifest.counts().keySet());
    }
    long per = total / workers;
    if (per < batchSize) {
      throw new BadInputException(recordsDir + ": split '" + split + "' has " + total + " records: "
          + workers + " workers get " + per + " each, fewer than batchSizePerWorker=" + batchSize);
    }
    List<List<Slice>> plan = new ArrayList<>();
    long[] counts = new long[workers];
    for (int w = 0; w < workers; w++) {
      long start = total * w / workers;
      long end = total * (w + 1) / workers;
      counts[w] = end - start;
      List<Slice> slices = new ArrayList<>();
      long offset = 0;
      for (Manifest.Shard s : shards) {
        long sFrom = Math.max(start, offset);
        long sTo = Math.min(end, offset + s.rows());
        if (sFrom < sTo) {
          slices.add(new Slice(new Path(recordsDir, s.file()).toString(), sFrom - offset, sTo - offset));
        }
        offset += s.rows();
      }
      plan.add(slices);
    }
    return new DataPlan(plan, counts);
  }

  /** Batches per epoch of the smallest worker (drop-last batching). */
  public long batchesPerEpoch(int batchSize) {
    long min = Long.MAX_VALUE;
    for (long c : counts) {
      min = Math.min(min, c / batchSize);
    }
    return min;
  }
}
