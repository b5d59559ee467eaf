/**
 * Runs compared and models promoted: {@code compare} (a table and chart of an experiment's runs) and
 * {@code promote} (a run's model registered as a version and given an alias such as {@code champion}
 * when it beats the version holding it), over what the tracking package reads and writes in MLflow.
 */
package org.genpipe.jobs.registry;
