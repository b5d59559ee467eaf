package org.genpipe.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A printf of several pieces reaches the target as one write of the whole line (the plain
 * autoflushing stream writes each piece: a log line sharing the pipe could land between them); a
 * line without its end is written at flush.
 */
class WholeLinesTest {
  /** Records each write call the target receives. */
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

  @Test
  void eachLineIsOneWriteAndAnUnfinishedLineGoesOutAtFlush() {
    Writes plain = new Writes();
    new PrintStream(plain, true, StandardCharsets.UTF_8).printf("trained %,d steps in %.1f s%n", 600, 18.0);
    assertThat(plain.calls).as("what System.out does").hasSizeGreaterThan(1);

    Writes lines = new Writes();
    PrintStream out = new PrintStream(new WholeLines(lines), false, StandardCharsets.UTF_8);
    out.printf("trained %,d steps in %.1f s%n", 600, 18.0);
    out.print("two\nlines\n");
    out.print("no end");
    assertThat(lines.calls).containsExactly("trained 600 steps in 18.0 s\n", "two\n", "lines\n");
    out.flush();
    assertThat(lines.calls).endsWith("no end");
  }
}
