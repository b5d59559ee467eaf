package org.genpipe.common.testing;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.data.BadRecords;
import org.genpipe.common.data.Inventory;
import org.genpipe.common.data.OnBadRecord;
import org.genpipe.common.data.RawDataset;
import org.genpipe.common.records.ImageRecord;

/** Reads a whole raw data set on one thread, split by split, as the preprocess job would. */
public final class ReadAll {
  private ReadAll() {}

  public static Map<String, List<ImageRecord>> read(RawDataset ds, BadRecords bad) throws IOException {
    Configuration conf = new Configuration();
    Inventory inv = ds.inventory(conf, bad);
    Map<String, List<ImageRecord>> out = new LinkedHashMap<>();
    for (Inventory.Split s : inv.splits()) {
      List<ImageRecord> records = new ArrayList<>();
      ds.read(inv, s, 0, s.count(), conf, (i, r) -> records.add(r), bad);
      out.put(s.name(), records);
    }
    return out;
  }

  public static Map<String, List<ImageRecord>> read(RawDataset ds) throws IOException {
    return read(ds, new BadRecords(OnBadRecord.FAIL));
  }
}
