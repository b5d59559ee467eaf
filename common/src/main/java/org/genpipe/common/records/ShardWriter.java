package org.genpipe.common.records;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.OutputFile;
import org.apache.parquet.io.PositionOutputStream;
import org.apache.parquet.io.api.Binary;
import org.genpipe.common.io.Storage;

/**
 * Writes one shard: {@link ImageRecord}s to one Parquet file on any Hadoop file system, computing the
 * file's SHA-256 and size while writing (no second read, which matters on S3).
 */
public final class ShardWriter implements AutoCloseable {
  private final Path path;
  private final DigestingOutputFile file;
  private final ParquetWriter<Group> writer;
  private final SimpleGroupFactory groups = new SimpleGroupFactory(RecordSchema.PARQUET);
  /** The records' content, field by field with lengths: the same records give the same digest. */
  private final MessageDigest content = Storage.sha256();
  private long rows;
  private boolean closed;

  public ShardWriter(Path path, Configuration conf) throws IOException {
    this.path = path;
    this.file = new DigestingOutputFile(path.getFileSystem(conf), path);
    this.writer =
        ExampleParquetWriter.builder(file)
            .withConf(conf)
            .withType(RecordSchema.PARQUET)
            .withCompressionCodec(CompressionCodecName.SNAPPY)
            .withWriteMode(ParquetFileWriter.Mode.CREATE)
            .build();
  }

  public void write(ImageRecord r) throws IOException {
    Group g = groups.newGroup();
    g.append(RecordSchema.ID, r.id());
    g.append(RecordSchema.SPLIT, r.split());
    if (r.label() != null) {
      g.append(RecordSchema.LABEL, r.label());
    }
    if (r.text() != null) {
      g.append(RecordSchema.TEXT, r.text());
    }
    g.append(RecordSchema.HEIGHT, r.height());
    g.append(RecordSchema.WIDTH, r.width());
    g.append(RecordSchema.CHANNELS, r.channels());
    g.append(RecordSchema.IMAGE, Binary.fromConstantByteArray(r.image()));
    if (r.labelMap() != null) {
      g.append(RecordSchema.LABEL_MAP, Binary.fromConstantByteArray(r.labelMap()));
    }
    writer.write(g);
    digest(r);
    rows++;
  }

  /**
   * Parquet files of the same records are not byte-identical between JVMs (parquet-mr 1.13 lists a
   * column chunk's encodings in HashSet order, which follows identity hash codes): what identifies
   * the records is this digest of every field of every record, in order.
   */
  private void digest(ImageRecord r) {
    field(r.id().getBytes(StandardCharsets.UTF_8));
    field(r.split().getBytes(StandardCharsets.UTF_8));
    field(r.label() == null ? null : String.valueOf(r.label()).getBytes(StandardCharsets.UTF_8));
    field(r.text() == null ? null : r.text().getBytes(StandardCharsets.UTF_8));
    field((r.height() + "x" + r.width() + "x" + r.channels()).getBytes(StandardCharsets.UTF_8));
    field(r.image());
    field(r.labelMap());
  }

  private void field(byte[] b) {
    long n = b == null ? -1 : b.length;
    for (int i = 0; i < 8; i++) {
      content.update((byte) (n >>> (8 * i)));
    }
    if (b != null) {
      content.update(b);
    }
  }

  public long rows() {
    return rows;
  }

  /** Closes the file; returns its size and checksum. */
  public Written finish() throws IOException {
    close();
    return new Written(path, rows, file.bytes, HexFormat.of().formatHex(file.digest.digest()),
        HexFormat.of().formatHex(content.digest()));
  }

  @Override
  public void close() throws IOException {
    if (!closed) {
      closed = true;
      writer.close();
    }
  }

  /** What was written: path, row count, bytes, the file's SHA-256 and the records' content digest (hex). */
  public record Written(Path path, long rows, long bytes, String sha256, String contentSha256) {}

  private static final class DigestingOutputFile implements OutputFile {
    private final FileSystem fs;
    private final Path path;
    private final MessageDigest digest = Storage.sha256();
    private long bytes;

    DigestingOutputFile(FileSystem fs, Path path) {
      this.fs = fs;
      this.path = path;
    }

    @Override
    public PositionOutputStream create(long blockSizeHint) throws IOException {
      return wrap(fs.create(path, false));
    }

    @Override
    public PositionOutputStream createOrOverwrite(long blockSizeHint) throws IOException {
      return wrap(fs.create(path, true));
    }

    @Override
    public boolean supportsBlockSize() {
      return false;
    }

    @Override
    public long defaultBlockSize() {
      return 0;
    }

    @Override
    public String getPath() {
      return path.toString();
    }

    private PositionOutputStream wrap(FSDataOutputStream out) {
      return new PositionOutputStream() {
        @Override
        public long getPos() {
          return bytes;
        }

        @Override
        public void write(int b) throws IOException {
          out.write(b);
          digest.update((byte) b);
          bytes++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
          out.write(b, off, len);
          digest.update(b, off, len);
          bytes += len;
        }

        @Override
        public void flush() throws IOException {
          out.flush();
        }

        @Override
        public void close() throws IOException {
          out.close();
        }
      };
    }
  }

}
