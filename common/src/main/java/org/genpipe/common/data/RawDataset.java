package org.genpipe.common.data;

import java.io.IOException;
import java.io.Serializable;
import org.apache.hadoop.conf.Configuration;

/**
 * A data set in its official format. The preprocess job calls {@link #inventory} once on the driver
 * (which checks everything that can be checked without reading every byte), cuts each split into
 * shards of consecutive items, and calls {@link #read} for one shard on an executor.
 */
public interface RawDataset extends Serializable {

  /** The registry name, e.g. "fashion-mnist". */
  String name();

  /** Lists and checks the input; a bad input fails here with a message naming the file. */
  Inventory inventory(Configuration conf, BadRecords bad) throws IOException;

  /**
   * Reads items {@code [from, to)} of a split, in order, passing each good record to {@code out}
   * and each bad one to {@code bad}. Reads nothing outside the range except to verify the end of
   * a file when {@code to} is the split's last item.
   */
  void read(
      Inventory inventory,
      Inventory.Split split,
      int from,
      int to,
      Configuration conf,
      RecordSink out,
      BadRecords bad)
      throws IOException;
}
