package org.genpipe.jobs.tracking;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Collectors;
import org.genpipe.common.io.BadInputException;

/**
 * JSON calls to an MLflow server's REST API ({@code /api/2.0/mlflow/...}), for what the Java client
 * does not cover (the model registry's aliases and versions, run search with paging). Errors name the
 * call, the HTTP status and MLflow's {@code error_code}; an unreachable server is a {@link
 * BadInputException} naming the URI.
 */
final class MlflowRest {
  static final ObjectMapper JSON = new ObjectMapper();
  private final String uri;
  private final HttpClient http = HttpClient.newBuilder()
      // HTTP/1.1: MLflow 3's uvicorn answers a POST or PUT that asks for an h2c upgrade (Java's default for
      // http://) with 400 "Invalid HTTP request received"
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();

  MlflowRest(String uri) {
    this.uri = uri.replaceAll("/+$", "");
  }

  String uri() {
    return uri;
  }

  /** An MLflow error answer: {@code status} and {@code errorCode} (e.g. RESOURCE_DOES_NOT_EXIST). */
  static final class MlflowError extends IOException {
    final int status;
    final String errorCode;

    MlflowError(String message, int status, String errorCode) {
      super(message);
      this.status = status;
      this.errorCode = errorCode;
    }

    boolean notFound() {
      return status == 404 || "RESOURCE_DOES_NOT_EXIST".equals(errorCode);
    }
  }

  JsonNode get(String endpoint, Map<String, String> query) throws IOException {
    String q = query.entrySet().stream()
        .map(e -> URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8) + "=" + URLEncoder.encode(e.getValue(),
            StandardCharsets.UTF_8))
        .collect(Collectors.joining("&"));
    return send("GET " + endpoint, HttpRequest.newBuilder(URI.create(uri + "/api/2.0/mlflow/" + endpoint
        + (q.isEmpty() ? "" : "?" + q))).GET());
  }

  JsonNode post(String endpoint, Object body) throws IOException {
    return send("POST " + endpoint, HttpRequest.newBuilder(URI.create(uri + "/api/2.0/mlflow/" + endpoint))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))));
  }

  private JsonNode send(String what, HttpRequest.Builder request) throws IOException {
    HttpResponse<String> resp;
    try {
      resp = http.send(request.timeout(Duration.ofSeconds(60)).build(), HttpResponse.BodyHandlers.ofString());
    } catch (java.net.ConnectException | java.net.http.HttpConnectTimeoutException e) {
      throw new BadInputException("MLflow server " + uri + " cannot be reached (" + what + "): " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(what + " interrupted", e);
    }
    JsonNode body;
    try {
      body = resp.body().isBlank() ? JSON.createObjectNode() : JSON.readTree(resp.body());
    } catch (IOException e) {
      throw new IOException("MLflow server " + uri + " answered " + what + " with HTTP " + resp.statusCode()
          + " and no JSON: " + abbreviate(resp.body()), e);
    }
    if (resp.statusCode() / 100 != 2) {
      throw new MlflowError("MLflow server " + uri + " answered " + what + " with HTTP " + resp.statusCode() + ": "
          + body.path("error_code").asText("") + " " + body.path("message").asText(abbreviate(resp.body())),
          resp.statusCode(), body.path("error_code").asText(""));
    }
    return body;
  }

  private static String abbreviate(String s) {
    return s.length() > 300 ? s.substring(0, 300) + "..." : s;
  }
}
