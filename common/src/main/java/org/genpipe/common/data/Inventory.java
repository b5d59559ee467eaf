package org.genpipe.common.data;

import java.io.Serializable;
import java.util.List;
import org.genpipe.common.records.ImageShape;

/**
 * What a raw data set holds, found and checked on the driver before any record is written: its
 * splits with their item counts (and item files where items are files), the source files to
 * checksum, class names, and the shape of the records it will produce.
 *
 * @param splits in output order
 * @param sourceFiles every input file the records derive from (checksummed into the manifest)
 * @param classes class names by label index; empty where there are no classes
 * @param shape shape of the images in the records
 * @param pairs whether records carry a label map beside the image
 */
public record Inventory(
    List<Split> splits,
    List<String> sourceFiles,
    List<String> classes,
    ImageShape shape,
    boolean pairs)
    implements Serializable {

  /**
   * @param name "train", "test" or "val"
   * @param count items in the split
   * @param files the split's input files: one per item, in item order, for folder data sets;
   *     otherwise the files that hold the whole split
   */
  public record Split(String name, int count, List<String> files) implements Serializable {}

  public Split split(String name) {
    return splits.stream()
        .filter(s -> s.name().equals(name))
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no split " + name));
  }
}
