package org.genpipe.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The job packages form a line: no package reaches back to one that uses it (read from the sources:
 * imports and fully qualified names). The root package (the CLI that lists every command) may use all.
 */
class PackageLayersTest {
  private static final Path SOURCES = Path.of("src/main/java/org/genpipe/jobs");
  private static final Pattern REFERENCE = Pattern.compile("org\\.genpipe\\.jobs\\.([a-z]+)\\.[A-Z]");

  @Test
  void thePackagesOfTheJobsModuleHaveNoCycle() throws IOException {
    Map<String, Set<String>> uses = new TreeMap<>();
    try (Stream<Path> files = Files.walk(SOURCES)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
        Path rel = SOURCES.relativize(f);
        if (rel.getNameCount() < 2) {
          continue; // the root package
        }
        String pkg = rel.getName(0).toString();
        Set<String> to = uses.computeIfAbsent(pkg, k -> new TreeSet<>());
        Matcher m = REFERENCE.matcher(Files.readString(f));
        while (m.find()) {
          if (!m.group(1).equals(pkg)) {
            to.add(m.group(1));
          }
        }
      }
    }
    assertThat(uses).containsKeys("train", "evaluate", "checkpoint", "judge", "config", "tracking");
    for (String start : uses.keySet()) {
      List<String> cycle = cycleFrom(start, start, uses, new ArrayList<>(List.of(start)), new TreeSet<>());
      assertThat(cycle).as("a package cycle through " + start + " (package uses: " + uses + ")").isNull();
    }
  }

  private static List<String> cycleFrom(String start, String at, Map<String, Set<String>> uses, List<String> path,
      Set<String> seen) {
    for (String next : uses.getOrDefault(at, Set.of())) {
      if (next.equals(start)) {
        List<String> cycle = new ArrayList<>(path);
        cycle.add(start);
        return cycle;
      }
      if (seen.add(next)) {
        path.add(next);
        List<String> found = cycleFrom(start, next, uses, path, seen);
        if (found != null) {
          return found;
        }
        path.remove(path.size() - 1);
      }
    }
    return null;
  }
}
