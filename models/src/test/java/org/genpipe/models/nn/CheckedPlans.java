package org.genpipe.models.nn;

/**
 * Runs a block with every compiled computation checked against SameDiff's own executor: each run
 * fails unless every output and gradient is bit-identical (see {@link GraphPlan.Compiled}).
 */
public final class CheckedPlans {
  private CheckedPlans() {}

  public static void run(Runnable block) {
    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "checked");
    try {
      block.run();
    } finally {
      System.clearProperty(GraphPlan.Compiled.MODE_PROPERTY);
    }
  }
}
