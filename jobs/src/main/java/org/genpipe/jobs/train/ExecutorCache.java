package org.genpipe.jobs.train;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The workers an executor JVM keeps between rounds, by (run, worker index): the model graph is built
 * and the data slice read once per run, not per round. Starting a new run drops the previous runs'
 * workers, so memory does not grow with rounds or runs.
 */
public final class ExecutorCache {
  private static final Map<String, Worker> WORKERS = new ConcurrentHashMap<>();

  private ExecutorCache() {}

  public static Worker get(String runKey, int worker, Supplier<Worker> create) {
    WORKERS.keySet().removeIf(k -> !k.startsWith(runKey + "/"));
    return WORKERS.computeIfAbsent(runKey + "/" + worker, k -> create.get());
  }
}
