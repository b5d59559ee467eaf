package org.genpipe.jobs.inspect;

import java.util.Map;
import org.genpipe.common.records.Manifest;

/** A manifest as the few lines a user reads: counts per split and class, shape, shards, skips. */
public final class ManifestSummary {
  private ManifestSummary() {}

  public static String describe(Manifest m) {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format("data set      %s (record schema v%d)%n", m.dataset(), m.schemaVersion()));
    sb.append(String.format("image shape   %s (HxWxC)%s%n", m.imageShape(), m.pairs() ? ", with label maps" : ""));
    sb.append(String.format("records       %d%n", m.total()));
    m.counts().forEach((split, n) -> {
      long shards = m.shards().stream().filter(s -> s.split().equals(split)).count();
      sb.append(String.format("  %-10s  %7d in %d shards%n", split, n, shards));
    });
    if (m.classCounts() != null) {
      for (Map.Entry<String, Map<String, Long>> e : m.classCounts().entrySet()) {
        sb.append(String.format("classes (%s)%n", e.getKey()));
        e.getValue().forEach((c, n) -> sb.append(String.format("  %-14s %7d%n", c, n)));
      }
    }
    long bytes = m.shards().stream().mapToLong(Manifest.Shard::bytes).sum();
    sb.append(String.format("shard bytes   %.1f MB%n", bytes / 1e6));
    sb.append(String.format("sources       %d files%n", m.sources().size()));
    sb.append(String.format("skipped       %d%n", m.skipped().size()));
    m.skipped().stream().limit(5).forEach(k -> sb.append("  ").append(k.item()).append(": ").append(k.reason()).append('\n'));
    if (m.skipped().size() > 5) {
      sb.append("  ... (all listed in manifest.json)\n");
    }
    if (m.provenance() != null) {
      sb.append(String.format("made by       genpipe %s (%s), Spark %s, seed %d, at %s%n",
          m.provenance().pipelineVersion(), m.provenance().gitCommit(), m.provenance().spark(),
          m.provenance().seed(), m.provenance().createdAt()));
    }
    return sb.toString();
  }
}
