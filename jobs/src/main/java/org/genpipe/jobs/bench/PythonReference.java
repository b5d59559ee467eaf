package org.genpipe.jobs.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs a reference script (a resource beside the benchmarks) with a Python that has the reference
 * packages, for numbers measured in the same run; says so in one line when Python or its package is
 * missing.
 */
final class PythonReference {
  /** The virtualenv {@code scripts/reference-env} makes with the pinned PyPI packages. */
  static final String DEFAULT_PYTHON = ".venv-reference/bin/python";

  private PythonReference() {}

  /**
   * @param marker a string the script's result line contains
   * @param install the package it needs (e.g. "torch"), named when it fails
   * @return the script's result line, or null (after printing why) when it could not run
   */
  static String run(String python, String resource, String marker, String install, Map<String, String> env,
      String... args)
      throws IOException, InterruptedException {
    // the script and the modules the torch scripts import, side by side
    Path dir = Files.createTempDirectory("genpipe-reference");
    Path script = dir.resolve(resource);
    for (String file : new java.util.LinkedHashSet<>(List.of(resource, "timing.py", "beta_vae_torch.py"))) {
      try (InputStream in = PythonReference.class.getResourceAsStream(file)) {
        Files.write(dir.resolve(file), in.readAllBytes());
      }
    }
    try {
      List<String> cmd = new ArrayList<>(List.of(python, script.toString()));
      cmd.addAll(List.of(args));
      Process p;
      try {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().putAll(env);
        p = pb.start();
      } catch (IOException e) {
        System.out.println("  reference not available: cannot run " + python + " (" + e.getMessage()
            + ")  [scripts/reference-env installs " + install + " into " + DEFAULT_PYTHON + "]");
        return null;
      }
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0 || !out.contains(marker)) {
        System.out.println("  reference not available (" + python + "): "
            + out.lines().reduce((a, b) -> b).orElse("no output") + "  [scripts/reference-env installs " + install
            + " into " + DEFAULT_PYTHON + "]");
        return null;
      }
      return out.lines().filter(l -> l.contains(marker)).findFirst().orElseThrow();
    } finally {
      org.apache.commons.io.FileUtils.deleteQuietly(dir.toFile());
    }
  }

  /**
   * The environment for PyTorch references: the scripts set torch's threads themselves
   * ({@code torch.set_num_threads}); an inherited OMP_NUM_THREADS above 1 (or none) made Debian's
   * PyTorch 1.13 about 2x slower here (DCGAN step 390-420 ms with OMP_NUM_THREADS=1 and 2 torch
   * threads, 810-850 ms with 2 or unset), so the reference runs in its best setting.
   */
  static final Map<String, String> TORCH_ENV = Map.of("OMP_NUM_THREADS", "1");

  /** The number after {@code "key": } in a JSON line. */
  static double number(String json, String key) {
    return Double.parseDouble(json.replaceAll(".*\"" + key + "\": ([0-9.eE+-]+|NaN).*", "$1"));
  }
}
