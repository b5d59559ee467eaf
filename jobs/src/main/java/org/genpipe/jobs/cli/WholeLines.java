package org.genpipe.jobs.cli;

import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.Charset;

/**
 * Standard output that reaches the terminal or pipe one whole line per write.
 *
 * <p>The JVM's {@code System.out} flushes every piece a {@code printf} writes (the literal text, then
 * each formatted value), so a line printed while Spark logs to standard error can arrive cut in two
 * by a log line where both go to one pipe (spark-submit under a scheduler, a test reading the output):
 * "trained 26/12/05 11:48:59 INFO BlockManagerInfo: ... 600 steps". This stream holds the bytes of
 * the current line and writes it whole at its end ({@code '\n'}) or at {@link #flush}.
 */
public final class WholeLines extends OutputStream {
  private final OutputStream target;
  private final ByteArrayOutputStream line = new ByteArrayOutputStream(256);

  public WholeLines(OutputStream target) {
    this.target = target;
  }

  /** A print stream on the process's standard output that writes whole lines, for {@code System.setOut}. */
  public static PrintStream stdout() {
    return new PrintStream(new WholeLines(new FileOutputStream(FileDescriptor.out)), false,
        Charset.defaultCharset());
  }

  @Override
  public synchronized void write(int b) throws IOException {
    line.write(b);
    if (b == '\n') {
      emit();
    }
  }

  @Override
  public synchronized void write(byte[] b, int off, int len) throws IOException {
    int start = off;
    for (int i = off; i < off + len; i++) {
      if (b[i] == '\n') {
        line.write(b, start, i + 1 - start);
        emit();
        start = i + 1;
      }
    }
    line.write(b, start, off + len - start);
  }

  @Override
  public synchronized void flush() throws IOException {
    if (line.size() > 0) {
      emit();
    }
    target.flush();
  }

  @Override
  public synchronized void close() throws IOException {
    flush();
    target.close();
  }

  private void emit() throws IOException {
    target.write(line.toByteArray());
    target.flush();
    line.reset();
  }
}
