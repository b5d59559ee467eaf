package org.genpipe.models;

import java.io.Serializable;

/**
 * Builds a fresh model (same architecture, same initial state for the same factory). Factories are
 * sent to Spark executors, which build their own copy once and keep it between rounds.
 */
@FunctionalInterface
public interface ModelFactory extends Serializable {
  TrainableModel create();
}
