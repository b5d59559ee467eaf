package org.genpipe.models.nn;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.nd4j.autodiff.samediff.SameDiff;

/** Helpers around SameDiff graphs. */
public final class Graphs {
  private static final String NOISE = "Added differentiated op";

  private Graphs() {}

  /**
   * Builds the gradient graph now (instead of on the first step). SameDiff 1.0.0-M2.1 prints one
   * "Added differentiated op" line per op to System.out while doing so (about 60 lines for the
   * beta-VAE, per replica); those lines, and only those, are dropped from System.out.
   */
  public static void buildGradients(SameDiff sd) {
    wholeLines();
    sd.createGradFunction();
  }

  /**
   * Puts {@link LineFilter} over System.out (once): each line goes out whole in one write, so a line
   * printed while Spark logs to standard error through the same pipe (spark-submit under a
   * scheduler, a test reading the output) cannot be cut by a log line, and SameDiff's
   * gradient-building lines are dropped. The CLI calls it first thing.
   */
  public static synchronized void wholeLines() {
    if (System.out instanceof LineFilter) {
      return;
    }
    System.setOut(new LineFilter(System.out));
  }

  /**
   * System.out without SameDiff's per-op gradient lines: line-buffered (a line goes on whole, at its
   * end, in one write: a line passed on in pieces, with a flush after each, could be cut by a log
   * line sharing the pipe, as "trained 600" + a Spark log line + " steps (...)" was under
   * spark-submit), thread-safe.
   */
  static final class LineFilter extends PrintStream {
    private final PrintStream target;
    private final StringBuilder line = new StringBuilder();

    LineFilter(PrintStream target) {
      super(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
      this.target = target;
    }

    @Override
    public synchronized void write(int b) {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public synchronized void write(byte[] buf, int off, int len) {
      String s = new String(buf, off, len, StandardCharsets.UTF_8);
      int start = 0;
      for (int i = 0; i < s.length(); i++) {
        if (s.charAt(i) == '\n') {
          line.append(s, start, i + 1);
          emit();
          start = i + 1;
        }
      }
      line.append(s, start, s.length());
    }

    private void emit() {
      String l = line.toString();
      line.setLength(0);
      if (!l.startsWith(NOISE)) {
        target.print(l);
        target.flush();
      }
    }

    /** Passes on an unfinished line too (a prompt, the last line of a program): only an explicit flush calls this. */
    @Override
    public synchronized void flush() {
      if (line.length() > 0) {
        emit();
      }
      target.flush();
    }
  }
}
