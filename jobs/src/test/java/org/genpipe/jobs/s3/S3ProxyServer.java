package org.genpipe.jobs.s3;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A real S3 server for tests: s3proxy (transient in-memory storage, no authorization) started as its
 * own JVM on 127.0.0.1. The Maven build copies its jar to target/s3proxy/s3proxy.jar.
 */
final class S3ProxyServer implements AutoCloseable {
  final int port;
  private final Process process;

  S3ProxyServer(Path workDir) throws IOException, InterruptedException {
    Path jar = Path.of("target/s3proxy/s3proxy.jar");
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException(jar.toAbsolutePath() + " missing: run the tests through Maven");
    }
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Path props = workDir.resolve("s3proxy.conf");
    Files.writeString(props, String.join("\n",
        "s3proxy.endpoint=http://127.0.0.1:" + port,
        "s3proxy.authorization=none",
        "jclouds.provider=transient",
        "jclouds.identity=test",
        "jclouds.credential=test") + "\n");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    process = new ProcessBuilder(List.of(java, "-Xmx512m", "-jar", jar.toString(), "--properties", props.toString()))
        .redirectErrorStream(true)
        .redirectOutput(workDir.resolve("s3proxy.log").toFile())
        .start();
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      try (Socket ignored = new Socket("127.0.0.1", port)) {
        break;
      } catch (IOException e) {
        if (!process.isAlive() || System.currentTimeMillis() > deadline) {
          throw new IllegalStateException("s3proxy did not start: " + Files.readString(workDir.resolve("s3proxy.log")));
        }
        Thread.sleep(200);
      }
    }
  }

  String endpoint() {
    return "http://127.0.0.1:" + port;
  }

  void createBucket(String bucket) throws IOException, InterruptedException {
    HttpResponse<String> r = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(endpoint() + "/" + bucket)).PUT(HttpRequest.BodyPublishers.noBody()).build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IOException("bucket creation failed: HTTP " + r.statusCode() + " " + r.body());
    }
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    process.waitFor();
  }
}
