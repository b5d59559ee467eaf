package org.genpipe.common.records;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.spark.sql.Row;
import org.genpipe.common.io.BadInputException;

/**
 * Reads records back: from shard files on any Hadoop file system (a local file list, or the files a
 * training worker was given), or from Spark rows of {@code spark.read().parquet(shardsDir)}.
 * Streams; never holds more than one row group.
 */
public final class ShardReader {
  private ShardReader() {}

  /** All records of the given shard files, in file order then row order. */
  public static Iterator<ImageRecord> read(List<Path> shards, Configuration conf) {
    return new Iterator<>() {
      private int next;
      private ParquetReader<Group> reader;
      private ImageRecord pending;
      private Path current;

      @Override
      public boolean hasNext() {
        try {
          while (pending == null) {
            if (reader == null) {
              if (next >= shards.size()) {
                return false;
              }
              current = shards.get(next++);
              reader = ParquetReader.builder(new GroupReadSupport(), current).withConf(conf).build();
            }
            Group g = reader.read();
            if (g == null) {
              reader.close();
              reader = null;
            } else {
              pending = fromGroup(g, current);
            }
          }
          return true;
        } catch (IOException | RuntimeException e) {
          closeQuietly();
          if (e instanceof BadInputException b) {
            throw b;
          }
          throw new BadInputException("cannot read record shard " + current + ": " + e.getMessage(), e);
        }
      }

      @Override
      public ImageRecord next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        ImageRecord r = pending;
        pending = null;
        return r;
      }

      private void closeQuietly() {
        try {
          if (reader != null) {
            reader.close();
          }
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        } finally {
          reader = null;
        }
      }
    };
  }

  static ImageRecord fromGroup(Group g, Path file) {
    try {
      return new ImageRecord(
          g.getString(RecordSchema.ID, 0),
          g.getString(RecordSchema.SPLIT, 0),
          g.getFieldRepetitionCount(RecordSchema.LABEL) > 0 ? g.getInteger(RecordSchema.LABEL, 0) : null,
          g.getFieldRepetitionCount(RecordSchema.TEXT) > 0 ? g.getString(RecordSchema.TEXT, 0) : null,
          g.getInteger(RecordSchema.HEIGHT, 0),
          g.getInteger(RecordSchema.WIDTH, 0),
          g.getInteger(RecordSchema.CHANNELS, 0),
          g.getBinary(RecordSchema.IMAGE, 0).getBytes(),
          g.getFieldRepetitionCount(RecordSchema.LABEL_MAP) > 0
              ? g.getBinary(RecordSchema.LABEL_MAP, 0).getBytes()
              : null);
    } catch (RuntimeException e) {
      throw new BadInputException(
          file + ": a row does not match record schema v" + RecordSchema.VERSION + ": " + e.getMessage(), e);
    }
  }

  /** A Spark row of the record schema as a record. */
  public static ImageRecord fromRow(Row row) {
    int labelIdx = row.fieldIndex(RecordSchema.LABEL);
    int textIdx = row.fieldIndex(RecordSchema.TEXT);
    int mapIdx = row.fieldIndex(RecordSchema.LABEL_MAP);
    return new ImageRecord(
        row.getString(row.fieldIndex(RecordSchema.ID)),
        row.getString(row.fieldIndex(RecordSchema.SPLIT)),
        row.isNullAt(labelIdx) ? null : row.getInt(labelIdx),
        row.isNullAt(textIdx) ? null : row.getString(textIdx),
        row.getInt(row.fieldIndex(RecordSchema.HEIGHT)),
        row.getInt(row.fieldIndex(RecordSchema.WIDTH)),
        row.getInt(row.fieldIndex(RecordSchema.CHANNELS)),
        (byte[]) row.get(row.fieldIndex(RecordSchema.IMAGE)),
        row.isNullAt(mapIdx) ? null : (byte[]) row.get(mapIdx));
  }
}
