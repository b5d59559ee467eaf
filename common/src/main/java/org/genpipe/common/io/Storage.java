package org.genpipe.common.io;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * File operations on any Hadoop file system (local paths, {@code hdfs://}, {@code s3a://}): checksums,
 * small files written atomically, and output folders committed by rename. Credentials are taken
 * from Hadoop's configuration and provider chain; this class never prints them.
 */
public final class Storage {
  private Storage() {}

  public static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A path as given by the user: local paths without a scheme become absolute local paths. */
  public static Path path(String location) {
    Path p = new Path(location);
    if (p.toUri().getScheme() == null) {
      // toUri() adds a trailing slash for existing folders; the path must name the folder itself
      String uri = java.nio.file.Path.of(location).toAbsolutePath().normalize().toUri().toString();
      return new Path(uri.length() > "file:///".length() ? uri.replaceAll("/+$", "") : uri);
    }
    return p;
  }

  public static FileSystem fs(Path path, Configuration conf) {
    try {
      return path.getFileSystem(conf);
    } catch (IOException e) {
      throw unreachable(path, e);
    }
  }

  /** SHA-256 (hex) of a file's bytes. */
  public static String sha256(Path path, Configuration conf) throws IOException {
    MessageDigest md = sha256();
    byte[] buf = new byte[1 << 16];
    try (InputStream in = fs(path, conf).open(path)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  public static boolean exists(Path path, Configuration conf) {
    try {
      return fs(path, conf).exists(path);
    } catch (IOException e) {
      throw unreachable(path, e);
    }
  }

  /** Writes a small text file: to a temporary name beside it, then renamed into place. */
  public static void writeAtomically(Path path, String content, Configuration conf)
      throws IOException {
    writeAtomically(path, content.getBytes(StandardCharsets.UTF_8), conf);
  }

  /** Writes a file: to a temporary name beside it, then renamed into place. */
  public static void writeAtomically(Path path, byte[] content, Configuration conf)
      throws IOException {
    FileSystem fs = fs(path, conf);
    Path tmp = new Path(path.getParent(), "." + path.getName() + ".tmp-" + UUID.randomUUID());
    try (OutputStream out = fs.create(tmp, false)) {
      out.write(content);
    }
    if (fs.exists(path)) {
      fs.delete(path, false);
    }
    if (!fs.rename(tmp, path)) {
      fs.delete(tmp, false);
      throw new IOException("could not rename " + tmp + " to " + path);
    }
  }

  public static String readString(Path path, Configuration conf) throws IOException {
    try (InputStream in = fs(path, conf).open(path)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (FileNotFoundException e) {
      throw new BadInputException(path + " does not exist", e);
    }
  }

  /** A fresh temporary folder beside {@code output}, hidden from readers by its leading dot. */
  public static Path stagingDir(Path output) {
    return new Path(
        output.getParent(), "." + output.getName() + ".staging-" + UUID.randomUUID());
  }

  /**
   * Makes {@code staging} visible as {@code output} by rename. An existing output is replaced only
   * when {@code overwrite}: it is moved aside first and deleted only after the new one is in place,
   * so a failure at any point leaves either the old or the new output whole.
   */
  public static void commit(Path staging, Path output, boolean overwrite, Configuration conf)
      throws IOException {
    FileSystem fs = fs(output, conf);
    Path aside = null;
    if (fs.exists(output)) {
      if (!overwrite) {
        throw new BadInputException(output + " already exists; pass --overwrite to replace it");
      }
      aside = new Path(output.getParent(), "." + output.getName() + ".old-" + UUID.randomUUID());
      if (!fs.rename(output, aside)) {
        throw new IOException("could not move the old " + output + " aside to " + aside);
      }
    }
    if (!fs.rename(staging, output)) {
      if (aside != null) {
        fs.rename(aside, output);
      }
      throw new IOException("could not rename " + staging + " to " + output);
    }
    if (aside != null) {
      fs.delete(aside, true);
    }
  }

  /** Deletes a folder and ignores failures (cleanup after an error that is already reported). */
  public static void deleteQuietly(Path path, Configuration conf) {
    try {
      fs(path, conf).delete(path, true);
    } catch (RuntimeException | IOException ignored) {
      // the original error matters more
    }
  }

  /** An error for a storage location that cannot be reached, with the root cause. */
  public static BadInputException unreachable(Path path, Throwable e) {
    return new BadInputException("cannot access " + path + ": " + rootCause(e), e);
  }

  /** The innermost cause of {@code e} as "SimpleName: message", what a user can act on. */
  public static String rootCause(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root.getClass().getSimpleName() + ": " + root.getMessage();
  }
}
