package org.genpipe.jobs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The real systems the tests run against, from {@code .venv-tools} (made by {@code
 * tools/setup-python.sh}, which the README's test command and CI run first): the MLflow server and
 * library.
 */
public final class PythonTools {
  private PythonTools() {}

  /** {@code .venv-tools/bin} of the project; fails with what to run when it is missing. */
  public static Path bin() {
    Path bin = Path.of("..").toAbsolutePath().normalize().resolve(".venv-tools/bin");
    if (!Files.isExecutable(bin.resolve("mlflow"))) {
      throw new IllegalStateException(bin + " has no mlflow: run tools/setup-python.sh (the README's test command"
          + " runs it before the tests)");
    }
    return bin;
  }

  /** Runs a Python script with the tools' interpreter; returns its standard output; fails with its output on error. */
  public static String python(String script, Map<String, String> env, String... args)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of(bin().resolve("python").toString(), "-c", script));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().putAll(env);
    Path err = Files.createTempFile("python-tools", ".err");
    pb.redirectError(err.toFile());
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IllegalStateException("python failed (" + p.exitValue() + "):\n" + out + Files.readString(err));
    }
    Files.deleteIfExists(err);
    return out;
  }
}
