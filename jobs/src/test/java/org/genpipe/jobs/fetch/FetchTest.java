package org.genpipe.jobs.fetch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;
import org.genpipe.common.io.BadInputException;
import org.genpipe.jobs.Cli;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** fetch against a loopback HTTP mirror that serves fixture files (nothing here touches the internet). */
class FetchTest {
  @TempDir Path dir;
  HttpServer server;
  final Map<String, byte[]> files = new ConcurrentHashMap<>();
  final AtomicInteger rangeRequests = new AtomicInteger();

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", ex -> {
      String name = ex.getRequestURI().getPath().substring(1);
      byte[] body = files.get(name);
      if (body == null) {
        ex.sendResponseHeaders(404, -1);
        ex.close();
        return;
      }
      String range = ex.getRequestHeaders().getFirst("Range");
      int from = 0;
      if (range != null) {
        rangeRequests.incrementAndGet();
        from = Integer.parseInt(range.replaceAll("bytes=(\\d+)-", "$1"));
        ex.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + (body.length - 1) + "/" + body.length);
        ex.sendResponseHeaders(206, body.length - from);
      } else {
        ex.sendResponseHeaders(200, body.length);
      }
      try (OutputStream out = ex.getResponseBody()) {
        out.write(body, from, body.length - from);
      } catch (IOException ignored) {
        // the client saw a short body
      }
      ex.close();
    });
    server.start();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  String mirror() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/";
  }

  static String md5(byte[] b) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(b));
  }

  @Test
  void downloadsVerifiesAndSkipsWhatIsPresent() throws Exception {
    byte[] data = new byte[300_000];
    new java.util.Random(1).nextBytes(data);
    files.put("a.bin", data);
    RemoteFile f = new RemoteFile("a.bin", "http://official.invalid/a.bin", md5(data), false);
    Fetcher fetcher = new Fetcher(Duration.ofSeconds(5), 3, false);
    Fetcher.Fetched got = fetcher.fetch(f, mirror(), dir);
    assertThat(got.downloaded()).isTrue();
    assertThat(Files.readAllBytes(dir.resolve("a.bin"))).isEqualTo(data);
    assertThat(fetcher.fetch(f, mirror(), dir).downloaded()).isFalse();
  }

  @Test
  void resumesAnInterruptedDownloadWithARangeRequest() throws Exception {
    byte[] data = new byte[500_000];
    new java.util.Random(2).nextBytes(data);
    files.put("b.bin", data);
    Files.write(dir.resolve("b.bin.part"), Arrays.copyOf(data, 123_456));
    Fetcher.Fetched got = new Fetcher(Duration.ofSeconds(5), 3, false)
        .fetch(new RemoteFile("b.bin", "http://official.invalid/b.bin", md5(data), false), mirror(), dir);
    assertThat(rangeRequests.get()).isEqualTo(1);
    assertThat(Files.readAllBytes(got.file())).isEqualTo(data);
    assertThat(dir.resolve("b.bin.part")).doesNotExist();
  }

  @Test
  void checksumMismatchIsAnErrorAndNothingIsKept() throws Exception {
    files.put("d.bin", "served bytes".getBytes());
    RemoteFile f = new RemoteFile("d.bin", "http://official.invalid/d.bin", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", false);
    assertThatThrownBy(() -> new Fetcher(Duration.ofSeconds(5), 1, false).fetch(f, mirror(), dir))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("d.bin: MD5 " + md5("served bytes".getBytes()) + " does not match the published 8d4fb7e6c68d591d4c3dfef9ec88bf0d");
    assertThat(dir.resolve("d.bin")).doesNotExist();
    assertThat(dir.resolve("d.bin.part")).doesNotExist();
  }

  @Test
  void missingFileOnTheMirrorIsAnError() {
    RemoteFile f = new RemoteFile("nope.bin", "http://official.invalid/nope.bin", null, false);
    assertThatThrownBy(() -> new Fetcher(Duration.ofSeconds(5), 1, false).fetch(f, mirror(), dir))
        .hasMessageContaining("nope.bin: HTTP 404");
  }

  @Test
  void cliFetchesFashionMnistFromAMirrorAndReportsTheChecksumMismatch() throws Exception {
    // fixture files are not the real data set, so the published checksums cannot match
    for (RemoteFile f : DatasetSources.forName("fashion-mnist").files()) {
      files.put(f.name(), ("fixture " + f.name()).getBytes());
    }
    int code = Cli.execute("fetch", "fashion-mnist", "--dest", dir.toString(), "--mirror", mirror(), "--attempts", "1");
    assertThat(code).isEqualTo(2);
    assertThat(dir.resolve("fashion-mnist/train-images-idx3-ubyte.gz")).doesNotExist();
  }

  @Test
  void untarsSafely() throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (TarArchiveOutputStream tar = new TarArchiveOutputStream(new GzipCompressorOutputStream(bytes))) {
      for (String name : List.of("cityscapes/train/1.jpg", "../evil.txt")) {
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setSize(3);
        tar.putArchiveEntry(e);
        tar.write(new byte[] {1, 2, 3});
        tar.closeArchiveEntry();
      }
    }
    Path archive = dir.resolve("x.tar.gz");
    Files.write(archive, bytes.toByteArray());
    Path dest = dir.resolve("out");
    assertThatThrownBy(() -> Fetcher.untar(archive, dest)).hasMessageContaining("../evil.txt points outside");
    assertThat(dest.resolve("cityscapes/train/1.jpg")).exists();
    assertThat(dir.resolve("evil.txt")).doesNotExist();
  }
}
