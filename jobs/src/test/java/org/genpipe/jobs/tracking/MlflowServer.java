package org.genpipe.jobs.tracking;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.genpipe.jobs.PythonTools;

/**
 * A real {@code mlflow server} on 127.0.0.1 (from {@code .venv-tools}): SQLite backend store and
 * {@code --serve-artifacts} with its artifact folder under {@code dir}; one worker process.
 */
public final class MlflowServer implements AutoCloseable {
  private static final Duration START = Duration.ofSeconds(180);
  private final Process process;
  private final Path log;
  private final String uri;
  private final int port;
  final Path artifacts;

  public MlflowServer(Path dir) throws IOException, InterruptedException {
    this(dir, freePort());
  }

  /** A server on {@code port}; the same dir and port again is the same server back after a stop. */
  public MlflowServer(Path dir, int port) throws IOException, InterruptedException {
    Files.createDirectories(dir);
    this.port = port;
    uri = "http://127.0.0.1:" + port;
    artifacts = dir.resolve("artifacts");
    log = dir.resolve("server.log");
    process = new ProcessBuilder(PythonTools.bin().resolve("mlflow").toString(), "server", "--backend-store-uri",
        "sqlite:///" + dir.resolve("mlflow.db"), "--serve-artifacts", "--artifacts-destination", artifacts.toString(),
        "--host", "127.0.0.1", "--port", String.valueOf(port), "--workers", "1")
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
    HttpClient http = HttpClient.newHttpClient();
    long deadline = System.nanoTime() + START.toNanos();
    while (true) {
      try {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(uri + "/health"))
            .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() == 200) {
          return;
        }
      } catch (IOException e) {
        // not listening yet
      }
      if (!process.isAlive() || System.nanoTime() > deadline) {
        close();
        throw new IllegalStateException("mlflow server did not come up on " + uri + " within " + START.toSeconds()
            + " s; its log:\n" + Files.readString(log));
      }
      Thread.sleep(500);
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  public int port() {
    return port;
  }

  public String uri() {
    return uri;
  }

  @Override
  public void close() throws InterruptedException {
    process.descendants().forEach(ProcessHandle::destroy);
    process.destroy();
    if (!process.waitFor(20, TimeUnit.SECONDS)) {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
  }
}
