package org.genpipe.jobs.cli;

import java.util.List;

/**
 * A command that can check its configuration and arguments without running ({@code pipeline validate
 * <command> ...}): what an Airflow DAG or a submit script checks before it submits the real job.
 */
public interface Validated {

  /**
   * Binds and checks the config and arguments as {@code call()} would, touching no data, Spark or
   * tracking server; returns what the command would do, one line each. Throws a BadInputException
   * (exit 2) naming the key or value that is wrong.
   */
  List<String> validate();
}
