package org.genpipe.common.records;

import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Types;

/**
 * The one record format for every data set: Parquet files of {@link ImageRecord} rows, readable by
 * Spark, pandas/pyarrow, DuckDB and anything else that reads Parquet. Images are raw uint8 bytes in
 * HWC order; the shape travels in each row and in the manifest.
 */
public final class RecordSchema {
  /** Bumped whenever a column is added, removed or changes meaning. */
  public static final int VERSION = 1;

  public static final String ID = "id";
  public static final String SPLIT = "split";
  public static final String LABEL = "label";
  public static final String TEXT = "text";
  public static final String HEIGHT = "height";
  public static final String WIDTH = "width";
  public static final String CHANNELS = "channels";
  public static final String IMAGE = "image";
  public static final String LABEL_MAP = "label_map";

  /** Folder under the records root that holds the shards; the manifest sits beside it. */
  public static final String SHARDS_DIR = "shards";

  public static final String MANIFEST = "manifest.json";

  public static final MessageType PARQUET =
      Types.buildMessage()
          .required(PrimitiveTypeName.BINARY).as(LogicalTypeAnnotation.stringType()).named(ID)
          .required(PrimitiveTypeName.BINARY).as(LogicalTypeAnnotation.stringType()).named(SPLIT)
          .optional(PrimitiveTypeName.INT32).named(LABEL)
          .optional(PrimitiveTypeName.BINARY).as(LogicalTypeAnnotation.stringType()).named(TEXT)
          .required(PrimitiveTypeName.INT32).named(HEIGHT)
          .required(PrimitiveTypeName.INT32).named(WIDTH)
          .required(PrimitiveTypeName.INT32).named(CHANNELS)
          .required(PrimitiveTypeName.BINARY).named(IMAGE)
          .optional(PrimitiveTypeName.BINARY).named(LABEL_MAP)
          .named("genpipe_record");

  private RecordSchema() {}

  /** Shard file name: split, index and total, e.g. {@code train-00003-of-00015.parquet}. */
  public static String shardName(String split, int index, int total) {
    return String.format("%s-%05d-of-%05d.parquet", split, index, total);
  }
}
