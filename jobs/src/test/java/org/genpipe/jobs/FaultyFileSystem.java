package org.genpipe.jobs;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

/**
 * A fault-injecting Hadoop file system (scheme {@code faulty:}, the local disk underneath): after
 * {@link #allowedCreates} files whose path contains {@link #failUnder} were created, every further
 * one fails part-way through its write with "No space left on device", as a full disk does. A mock
 * only because a disk cannot be filled on demand here; register it with
 * {@code fs.faulty.impl=org.genpipe.jobs.FaultyFileSystem}.
 */
public final class FaultyFileSystem extends RawLocalFileSystem {
  public static final String SCHEME = "faulty";
  public static volatile String failUnder = null;
  public static volatile int allowedCreates = Integer.MAX_VALUE;
  public static final AtomicInteger CREATED = new AtomicInteger();
  public static final AtomicInteger FAILED = new AtomicInteger();

  /** Arms the fault: {@code allowed} more creates under {@code under} succeed, the rest fail. */
  public static void failAfter(String under, int allowed) {
    CREATED.set(0);
    FAILED.set(0);
    allowedCreates = allowed;
    failUnder = under;
  }

  public static void heal() {
    failUnder = null;
  }

  public static void register(Configuration conf) {
    conf.set("fs." + SCHEME + ".impl", FaultyFileSystem.class.getName());
    conf.setBoolean("fs." + SCHEME + ".impl.disable.cache", true);
  }

  @Override
  public URI getUri() {
    return URI.create(SCHEME + ":///");
  }

  @Override
  public String getScheme() {
    return SCHEME;
  }

  @Override
  public void initialize(URI uri, Configuration conf) throws IOException {
    super.initialize(getUri(), conf);
  }

  @Override
  public FSDataOutputStream create(Path f, boolean overwrite, int bufferSize, short replication, long blockSize,
      Progressable progress) throws IOException {
    FSDataOutputStream real = super.create(f, overwrite, bufferSize, replication, blockSize, progress);
    String under = failUnder;
    if (under == null || !f.toString().contains(under) || CREATED.incrementAndGet() <= allowedCreates) {
      return real;
    }
    FAILED.incrementAndGet();
    return new FSDataOutputStream(new DiskFull(real), null);
  }

  @Override
  public FSDataOutputStream create(Path f, FsPermission permission, boolean overwrite, int bufferSize,
      short replication, long blockSize, Progressable progress) throws IOException {
    return create(f, overwrite, bufferSize, replication, blockSize, progress);
  }

  /** Takes the first 64 bytes, then fails as a full disk does. */
  private static final class DiskFull extends FilterOutputStream {
    private long written;

    DiskFull(OutputStream out) {
      super(out);
    }

    @Override
    public void write(int b) throws IOException {
      check(1);
      out.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      check(len);
      out.write(b, off, len);
    }

    private void check(int len) throws IOException {
      written += len;
      if (written > 64) {
        throw new IOException("No space left on device");
      }
    }
  }
}
