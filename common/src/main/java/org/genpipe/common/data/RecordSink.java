package org.genpipe.common.data;

import org.genpipe.common.records.ImageRecord;

/** Receives the records a {@link RawDataset} reads, with the split item index each came from. */
@FunctionalInterface
public interface RecordSink {
  void accept(int item, ImageRecord record);
}
