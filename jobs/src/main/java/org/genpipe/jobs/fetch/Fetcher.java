package org.genpipe.jobs.fetch;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;
import org.genpipe.common.io.BadInputException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Downloads files over HTTP(S) into a folder: resumable (a {@code .part} file continues with a Range
 * request), verified against the published MD5 before it takes its final name, unpacked when it is
 * a tarball. A file already present with the right checksum is not downloaded again.
 */
public final class Fetcher {
  private static final Logger LOG = LoggerFactory.getLogger(Fetcher.class);
  private final HttpClient http;
  private final int attempts;
  private final boolean progress;

  public Fetcher(Duration timeout, int attempts, boolean progress) {
    this.http = HttpClient.newBuilder().connectTimeout(timeout).followRedirects(HttpClient.Redirect.NORMAL).build();
    this.attempts = attempts;
    this.progress = progress;
  }

  /** Outcome for one file: where it is, its MD5, and whether it was downloaded now. */
  public record Fetched(Path file, String md5, boolean downloaded, long bytes) {}

  public Fetched fetch(RemoteFile f, String mirror, Path dest) throws IOException {
    Files.createDirectories(dest);
    Path target = dest.resolve(f.name());
    if (Files.isRegularFile(target) && (f.md5() == null || f.md5().equalsIgnoreCase(md5(target)))) {
      LOG.info("{} already present", target);
      return new Fetched(target, md5(target), false, Files.size(target));
    }
    String url = DatasetSources.url(f, mirror);
    Path part = dest.resolve(f.name() + ".part");
    IOException last = null;
    for (int attempt = 1; attempt <= attempts; attempt++) {
      try {
        download(url, part);
        last = null;
        break;
      } catch (IOException e) {
        last = e;
        LOG.warn("download of {} interrupted ({}); attempt {}/{} will resume", url, e.getMessage(), attempt, attempts);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
    }
    if (last != null) {
      throw new BadInputException(
          "cannot download " + url + ": " + last.getMessage() + " (the partial file " + part
              + " is kept; run fetch again to resume)", last);
    }
    String actual = md5(part);
    if (f.md5() != null && !f.md5().equalsIgnoreCase(actual)) {
      Files.delete(part);
      throw new BadInputException(
          url + ": MD5 " + actual + " does not match the published " + f.md5()
              + "; the corrupt download was removed, run fetch again");
    }
    Files.move(part, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return new Fetched(target, actual, true, Files.size(target));
  }

  private void download(String url, Path part) throws IOException, InterruptedException {
    long have = Files.exists(part) ? Files.size(part) : 0;
    HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMinutes(30)).GET();
    if (have > 0) {
      req.header("Range", "bytes=" + have + "-");
    }
    HttpResponse<InputStream> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofInputStream());
    int code = resp.statusCode();
    if (code == 416 && have > 0) {
      resp.body().close();
      return; // the part file is already whole
    }
    boolean append = code == 206;
    if (code != 200 && code != 206) {
      resp.body().close();
      throw new BadInputException(url + ": HTTP " + code + " (expected 200)");
    }
    if (!append) {
      have = 0;
    }
    long length = resp.headers().firstValueAsLong("Content-Length").orElse(-1);
    long total = length < 0 ? -1 : have + length;
    try (InputStream in = resp.body();
        OutputStream out =
            Files.newOutputStream(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
        ProgressBar bar = progress ? bar(part.getFileName().toString().replace(".part", ""), have, total) : null) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        out.write(buf, 0, n);
        if (bar != null) {
          bar.stepBy(n);
        }
      }
    }
    long size = Files.size(part);
    if (total >= 0 && size != total) {
      throw new IOException("connection closed after " + size + " of " + total + " bytes");
    }
  }

  private static ProgressBar bar(String name, long have, long total) {
    return new ProgressBarBuilder()
        .setTaskName(name)
        .setInitialMax(total)
        .startsFrom(have, Duration.ZERO)
        .setUnit(" MB", 1 << 20)
        .setStyle(ProgressBarStyle.ASCII)
        .showSpeed()
        .build();
  }

  /** Unpacks a .tar.gz into {@code dest}, refusing entries that would land outside it. */
  public static void untar(Path tarGz, Path dest) throws IOException {
    Path root = dest.toAbsolutePath().normalize();
    try (InputStream f = Files.newInputStream(tarGz);
        TarArchiveInputStream tar = new TarArchiveInputStream(new GzipCompressorInputStream(f))) {
      for (TarArchiveEntry e; (e = tar.getNextTarEntry()) != null; ) {
        Path out = root.resolve(e.getName()).normalize();
        if (!out.startsWith(root)) {
          throw new BadInputException(tarGz + ": entry " + e.getName() + " points outside " + root);
        }
        if (e.isDirectory()) {
          Files.createDirectories(out);
        } else if (e.isFile()) {
          Files.createDirectories(out.getParent());
          Path tmp = out.resolveSibling("." + out.getFileName() + ".part");
          Files.copy(tar, tmp, StandardCopyOption.REPLACE_EXISTING);
          Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
      }
    } catch (IOException e) {
      throw new BadInputException(tarGz + ": not a readable .tar.gz (" + e.getMessage() + ")", e);
    }
  }

  static String md5(Path file) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("MD5");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] buf = new byte[1 << 16];
    try (InputStream in = Files.newInputStream(file)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
