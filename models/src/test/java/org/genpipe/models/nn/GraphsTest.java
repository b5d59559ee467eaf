package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The System.out filter (Graphs.wholeLines): whole lines in one write each, SameDiff's gradient-building lines dropped. */
class GraphsTest {
  /** Records each write call the filter's target receives. */
  private static final class Writes extends OutputStream {
    final List<String> calls = new ArrayList<>();

    @Override
    public void write(int b) {
      calls.add(String.valueOf((char) b));
    }

    @Override
    public void write(byte[] b, int off, int len) {
      calls.add(new String(b, off, len, StandardCharsets.UTF_8));
    }
  }

  /**
   * A printf reaches the filter piece by piece; it passes each line on whole, in one write, drops
   * SameDiff's lines, and passes an unfinished line on at an explicit flush. (It used to pass every
   * piece on at once with a flush: under spark-submit a Spark log line landed inside "trained 600
   * steps ...".)
   */
  @Test
  void linesGoOnWholeAndSameDiffsLinesAreDropped() {
    Writes target = new Writes();
    PrintStream out = new Graphs.LineFilter(new PrintStream(target, false, StandardCharsets.UTF_8));
    out.printf("trained %,d steps (%,d examples) in %.1f s%n", 600, 76_800, 19.2);
    out.println("Added differentiated op conv2d");
    out.println("run folder:  /tmp/run");
    out.print("two\nlines\n");
    out.print("no end");
    assertThat(target.calls).containsExactly("trained 600 steps (76,800 examples) in 19.2 s" + System.lineSeparator(),
        "run folder:  /tmp/run" + System.lineSeparator(), "two\n", "lines\n");
    out.flush();
    assertThat(target.calls).endsWith("no end");
  }
}
