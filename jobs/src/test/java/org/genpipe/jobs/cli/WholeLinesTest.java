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

  /**
   * Another thread may flush standard output at any moment (a flush writes the unfinished line):
   * here a flush after every piece that reaches the stream, the worst case. A printf or println still
   * comes out as one line.
   */
  @Test
  void aPrintfIsOneLineEvenWhenSomethingFlushesBetweenWrites() {
    Writes target = new Writes();
    WholeLines lines = new WholeLines(target);
    OutputStream flushedAfterEveryWrite = new OutputStream() {
      @Override
      public void write(int b) throws java.io.IOException {
        lines.write(b);
        lines.flush();
      }

      @Override
      public void write(byte[] b, int off, int len) throws java.io.IOException {
        lines.write(b, off, len);
        lines.flush();
      }
    };
    PrintStream out = WholeLines.printStream(flushedAfterEveryWrite);
    out.printf("trained %,d steps (%,d examples) in %.1f s; compute %.1f s%n", 600, 76_800, 22.0, 8.6);
    out.printf(java.util.Locale.ROOT, "kid %.3f%n", 0.5);
    out.println("run folder:  " + "file:/tmp/run");
    out.println((Object) "checkpoint:  step-600");
    String n = System.lineSeparator();
    assertThat(target.calls).containsExactly("trained 600 steps (76,800 examples) in 22.0 s; compute 8.6 s" + n,
        "kid 0.500" + n, "run folder:  file:/tmp/run" + n, "checkpoint:  step-600" + n);
  }
}
