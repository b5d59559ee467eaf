package org.genpipe.jobs.train;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * SIGTERM and SIGINT while a training runs (Ctrl-C, a YARN or Kubernetes kill, a preempted node): the
 * first asks the run to stop after the current round (checkpoint written, MLflow run KILLED, exit
 * non-zero with how to resume); a second one exits at once. The JVM's own handlers are back once
 * the training ends.
 */
final class StopSignal implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(StopSignal.class);
  private final AtomicReference<Signal> received = new AtomicReference<>();
  private final Map<Signal, SignalHandler> previous = new LinkedHashMap<>();

  private StopSignal() {}

  /** Handlers for TERM and INT until {@link #close}; a JVM without them (e.g. not a terminal) just has fewer. */
  static StopSignal install() {
    StopSignal s = new StopSignal();
    for (String name : new String[] {"TERM", "INT"}) {
      try {
        Signal sig = new Signal(name);
        s.previous.put(sig, Signal.handle(sig, s::handle));
      } catch (IllegalArgumentException e) {
        LOG.debug("SIG{} cannot be handled here: {}", name, e.getMessage());
      }
    }
    return s;
  }

  private void handle(Signal sig) {
    if (received.compareAndSet(null, sig)) {
      LOG.warn("SIG{} received: the training stops after the current round, with a checkpoint (again to stop at once)",
          sig.getName());
      return;
    }
    LOG.warn("SIG{} received again: stopping at once", sig.getName());
    new Thread(() -> System.exit(128 + sig.getNumber()), "genpipe-stop").start();
  }

  boolean requested() {
    return received.get() != null;
  }

  /** "SIGTERM" or "SIGINT". */
  String name() {
    return "SIG" + received.get().getName();
  }

  /** The shell's exit status for the signal: 128 + its number (143 for TERM, 130 for INT). */
  int exitCode() {
    return 128 + received.get().getNumber();
  }

  @Override
  public void close() {
    previous.forEach(Signal::handle);
  }
}
