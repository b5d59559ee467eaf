package org.genpipe.jobs.train;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.genpipe.models.ModelState;

/**
 * The example-weighted average of the workers' states, computed among the workers of a barrier
 * stage over TCP (a full mesh: every pair of workers holds one connection): a reduce-scatter, in which
 * worker r receives everyone's slice r of the state (the state's arrays seen as one flat range, cut in
 * as many equal slices as workers) and sums it, then an all-gather of the averaged slices. Every slice
 * is summed in double in worker order, with the same operations as {@link RoundResult#merge} (so a
 * barrier round gives the bits a rounds-mode round gives); each worker's losses, counts and stop
 * request travel with its slices, so every worker knows the round's totals and whether to stop.
 *
 * <p>One thread moves the bytes: non-blocking channels, each peer's outgoing message written while
 * the incoming ones are read, into buffers allocated once per stage. The sums read the receive
 * buffers where they are, a few thousand values at a time (nothing of a slice's size is allocated per
 * round), and each worker checks its averaged slice for non-finite values and sends the answer with
 * it. Workers on one host share memory instead ({@link #share}): each writes the slices for the
 * others into memory they map, and the messages say only when it is there (TCP on loopback copied
 * every slice twice in the kernel: a frequency-10 round of the beta-VAE 1.7-2.1 ms beyond its
 * training steps with it, 1.3-1.4 ms without).
 */
final class Allreduce implements Closeable {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Allreduce.class);
  private final int rank;
  private final int workers;
  private final long timeoutMillis;
  private final Runnable alive;
  private final SocketChannel[] channels;
  private final Selector selector;
  private final ByteBuffer[] out;
  private final ByteBuffer[] in;
  private ByteBuffer gathered;
  private final ByteBuffer[] gathers;
  private Layout layout;
  /** The memory shared with the workers on this host, or null ({@link #share}). */
  private Shared shared;
  /** {@link #peerMemory} where every peer is reached over TCP. */
  private final FloatBuffer[] overTcp;

  private Allreduce(int rank, int workers, SocketChannel[] channels, long timeoutMillis, Runnable alive)
      throws IOException {
    this.rank = rank;
    this.alive = alive;
    this.workers = workers;
    this.channels = channels;
    this.timeoutMillis = timeoutMillis;
    this.selector = Selector.open();
    this.out = new ByteBuffer[workers];
    this.in = new ByteBuffer[workers];
    this.gathers = new ByteBuffer[workers];
    this.overTcp = new FloatBuffer[workers];
    for (int p = 0; p < workers; p++) {
      if (p != rank) {
        channels[p].configureBlocking(false);
        channels[p].register(selector, 0, p);
      }
    }
  }

  /** A worker's listening channel on {@code host}; its "host:port" is what the others connect to. */
  static ServerSocketChannel listen(String host, int workers) throws IOException {
    ServerSocketChannel server = ServerSocketChannel.open();
    server.bind(new InetSocketAddress(InetAddress.getByName(host), 0), workers);
    return server;
  }

  /** The "host:port" others reach {@code server} at. */
  static String address(ServerSocketChannel server) throws IOException {
    InetSocketAddress a = (InetSocketAddress) server.getLocalAddress();
    return a.getAddress().getHostAddress() + ":" + a.getPort();
  }

  /** How often a wait for the other workers looks whether this task was killed. */
  private static final int POLL_MILLIS = 200;

  /**
   * Connects worker {@code rank} with every other: it connects to the lower ranks' {@code addresses}
   * ("host:port") and accepts the higher ranks on {@code server}. {@code alive} runs every
   * {@value #POLL_MILLIS} ms while this worker waits for the others and throws when the task must end
   * (Spark kills the other tasks of a failed barrier stage without interrupting their threads: a
   * task that waits for a dead peer must notice, or it holds its slot and the stage's retry never starts).
   * With {@code sharedDir} (e.g. /dev/shm; null: TCP only), the workers that can map each other's
   * files there (those on one host) move a state of {@code stateValues} values through that memory
   * instead of TCP ({@link #share}).
   */
  static Allreduce connect(int rank, String[] addresses, ServerSocketChannel server, int timeoutMillis,
      Runnable alive, long stateValues, Path sharedDir) throws IOException {
    int workers = addresses.length;
    SocketChannel[] channels = new SocketChannel[workers];
    try {
      for (int p = 0; p < rank; p++) {
        int colon = addresses[p].lastIndexOf(':');
        SocketChannel c = SocketChannel.open();
        channels[p] = c;
        c.socket().connect(new InetSocketAddress(addresses[p].substring(0, colon),
            Integer.parseInt(addresses[p].substring(colon + 1))), timeoutMillis);
        c.write(ByteBuffer.allocate(4).putInt(0, rank));
      }
      server.socket().setSoTimeout(POLL_MILLIS);
      long deadline = System.currentTimeMillis() + timeoutMillis;
      for (int k = rank + 1; k < workers; k++) {
        SocketChannel c = null;
        while (c == null) {
          try {
            c = server.socket().accept().getChannel();
          } catch (SocketTimeoutException e) {
            alive.run();
            if (System.currentTimeMillis() >= deadline) {
              throw new SocketTimeoutException("worker " + rank + ": the other workers did not connect within "
                  + timeoutMillis / 1000 + " s");
            }
          }
        }
        ByteBuffer b = ByteBuffer.allocate(4);
        c.socket().setSoTimeout(timeoutMillis);
        while (b.hasRemaining() && c.read(b) >= 0) {
          // the rank of the worker that connected
        }
        int from = b.getInt(0);
        if (b.hasRemaining() || from <= rank || from >= workers || channels[from] != null) {
          c.close();
          throw new IOException("worker " + rank + ": unexpected connection (worker " + from + ")");
        }
        channels[from] = c;
      }
      for (SocketChannel c : channels) {
        if (c != null) {
          c.socket().setTcpNoDelay(true);
        }
      }
      Allreduce a = new Allreduce(rank, workers, channels, timeoutMillis, alive);
      try {
        a.shared = a.share(stateValues, sharedDir);
      } catch (IOException | RuntimeException e) {
        a.close();
        throw e;
      }
      return a;
    } catch (IOException | RuntimeException e) {
      for (SocketChannel c : channels) {
        if (c != null) {
          c.close();
        }
      }
      throw e;
    }
  }

  /**
   * The memory of one worker's state (a flat copy, {@code values} floats after an 8-byte token) in a
   * file of {@code dir} that every worker maps, and the same of the peers that can map theirs. Each
   * worker writes the slices it sends and its averaged slice into its own; the messages between
   * workers then carry only the counts, losses and flags, and say when a peer's memory is ready.
   */
  private record Shared(long values, FloatBuffer mine, FloatBuffer[] peers) {}

  /**
   * Each peer's memory for a state of {@code total} values: null for the peers reached over TCP (all,
   * where nothing is shared or the state is not the size the memory was made for).
   */
  private FloatBuffer[] peerMemory(long total) {
    return shared != null && shared.values() == total ? shared.peers() : overTcp;
  }

  /**
   * Sets up {@link Shared} memory with the workers that can read each other's files in {@code dir}
   * (on one host; not across hosts or separate file namespaces): each makes its file and tells the
   * others its path and a random token; a peer whose file is readable with that token is shared with
   * when it can read this worker's too. The files are deleted once everyone mapped them (the memory
   * stays until the mappings go). Null where no peer shares (TCP carries everything then).
   */
  private Shared share(long values, Path dir) throws IOException {
    if (workers == 1 || values <= 0 || 4 * values > Integer.MAX_VALUE - 8) {
      return null;
    }
    Path file = null;
    MappedByteBuffer mine = null;
    long token = new java.security.SecureRandom().nextLong();
    if (dir != null) {
      try {
        file = dir.resolve("genpipe-allreduce-" + java.util.UUID.randomUUID() + ".bin");
        // readable by this user only (the executors of one application)
        try (FileChannel f = FileChannel.open(file, java.util.Set.of(StandardOpenOption.CREATE_NEW,
            StandardOpenOption.READ, StandardOpenOption.WRITE),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
          // written out first: a full tmpfs fails here (and TCP carries the state), not as a fault mid-round
          ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
          for (long at = 0; at < 8 + 4 * values; at += zeros.capacity()) {
            zeros.clear().limit((int) Math.min(zeros.capacity(), 8 + 4 * values - at));
            while (zeros.hasRemaining()) {
              f.write(zeros, at + zeros.position());
            }
          }
          mine = f.map(FileChannel.MapMode.READ_WRITE, 0, 8 + 4 * values);
        }
        mine.order(ByteOrder.LITTLE_ENDIAN).putLong(0, token);
      } catch (IOException | UnsupportedOperationException e) {
        LOG.info("worker {}: no shared memory in {} ({}): the state goes over TCP", rank, dir, e.toString());
        if (file != null) {
          Files.deleteIfExists(file);
        }
        file = null;
        mine = null;
      }
    }
    try {
      byte[] path = (mine == null ? "" : file.toAbsolutePath().toString()).getBytes(
          StandardCharsets.UTF_8);
      for (int p = 0; p < workers; p++) {
        if (p != rank) {
          outgoing(p, 4 + 8 + path.length).putLong(token).put(path).flip();
        }
      }
      exchange(out);
      FloatBuffer[] peers = new FloatBuffer[workers];
      for (int p = 0; p < workers; p++) {
        if (p != rank && mine != null && in[p].remaining() > 8) {
          long theirToken = in[p].getLong();
          byte[] b = new byte[in[p].remaining()];
          in[p].get(b);
          peers[p] = mapPeer(Path.of(new String(b, StandardCharsets.UTF_8)),
              theirToken, values);
        }
      }
      // shared with p where both can read the other's
      for (int p = 0; p < workers; p++) {
        if (p != rank) {
          outgoing(p, 4 + 1).put((byte) (peers[p] != null ? 1 : 0)).flip();
        }
      }
      exchange(out);
      List<Integer> with = new ArrayList<>();
      for (int p = 0; p < workers; p++) {
        if (p != rank && in[p].get() == 0) {
          peers[p] = null;
        }
        if (peers[p] != null) {
          with.add(p);
        }
      }
      if (mine != null) {
        LOG.info("worker {}: the state goes through shared memory ({}) to and from workers {}, over TCP to the others",
            rank, dir, with);
      }
      return !with.isEmpty() ? new Shared(values, mine.position(8).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer(), peers)
          : null;
    } finally {
      if (file != null) {
        Files.deleteIfExists(file);
      }
    }
  }

  /** Whether this worker's state goes to and from peer {@code p} through shared memory. */
  boolean sharesWith(int p) {
    return shared != null && shared.peers()[p] != null;
  }

  /** Peer's memory file mapped to read, when it is there with {@code token} and room for {@code values}; else null. */
  private static FloatBuffer mapPeer(Path file, long token, long values) {
    try (FileChannel f = FileChannel.open(file,
        StandardOpenOption.READ)) {
      if (f.size() != 8 + 4 * values) {
        return null;
      }
      ByteBuffer m = f.map(FileChannel.MapMode.READ_ONLY, 0, 8 + 4 * values)
          .order(ByteOrder.LITTLE_ENDIAN);
      return m.getLong(0) == token ? m.position(8).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer() : null;
    } catch (IOException | RuntimeException e) {
      return null; // another host, or a file namespace of its own: TCP
    }
  }

  /**
   * A round's outcome on every worker: the averaged state, all workers' counts and losses merged, a
   * stop request, and whether some value of the average is not finite.
   */
  record Averaged(ModelState state, RoundResult totals, boolean stopRequested, boolean nonFiniteState) {
    /** Whether the run must stop after this round: a non-finite loss on some worker, or a non-finite average. */
    boolean diverged() {
      return totals.nonFinite() != null || nonFiniteState;
    }
  }

  /**
   * Averages this worker's contribution of the round with the others'; {@code stop}: this worker asks
   * all to end the stage after this round (every worker learns it in the same round). The averaged
   * state's arrays are this allreduce's and the next call overwrites them: copy a state to keep it.
   * (They are as large as the state: allocated every round, they were G1 humongous objects for
   * states of a few hundred thousand values, and a collection every few rounds.)
   */
  Averaged average(RoundResult mine, boolean stop) throws IOException {
    return average(mine, null, stop);
  }

  /**
   * As {@link #average(RoundResult, boolean)}; with {@code memory} (a model's {@link
   * org.genpipe.models.TrainableModel#stateMemory}, {@code mine} then without a state), the
   * contribution is read from that memory and the average written back into it, and the outcome
   * has no state: no state is exported from the model or loaded into it.
   */
  Averaged average(RoundResult mine, List<FloatBuffer> memory, boolean stop) throws IOException {
    if (workers == 1) {
      ModelState state = memory == null ? mine.state() : null;
      boolean nonFinite = state != null ? state.firstNonFinite() != null : !finite(memory);
      return new Averaged(state, mine.withoutState(), stop, nonFinite);
    }
    List<FloatBuffer> state;
    if (memory != null) {
      if (layout == null || !layout.fits(memory)) {
        layout = new Layout(null, null, memory);
      }
      state = memory;
    } else {
      ModelState s = mine.state();
      if (layout == null || !layout.fits(s)) {
        layout = averagedLayout(s);
      }
      state = layout.buffers(s);
    }
    byte[] header = serialize(mine.withoutState());
    FloatBuffer[] theirs = peerMemory(layout.total);
    boolean anyShared = false;
    boolean anyTcp = false;
    for (int p = 0; p < workers; p++) {
      if (p != rank) {
        anyShared |= theirs[p] != null;
        anyTcp |= theirs[p] == null;
      }
    }

    // reduce-scatter: slice p of this state, with this worker's totals, to worker p (the values through
    // the shared memory where p reads it); everyone's slice rank here
    for (int p = 0; p < workers; p++) {
      if (p != rank) {
        ByteBuffer b = outgoing(p, 4 + 1 + 8 + 4 + header.length + (theirs[p] != null ? 0 : 4 * layout.length(p)));
        b.put((byte) (stop ? 1 : 0)).putLong(mine.examples()).putInt(header.length).put(header);
        if (theirs[p] != null) {
          layout.copySlice(state, p, shared.mine().slice((int) layout.from(p), layout.length(p)));
        } else {
          layout.copySlice(state, p, b);
        }
        b.flip();
      }
    }
    exchange(out);
    RoundResult sum = new RoundResult();
    long[] counts = new long[workers];
    Values[] slices = new Values[workers];
    boolean stopRequested = stop;
    int n = layout.length(rank);
    long at = layout.from(rank);
    for (int p = 0; p < workers; p++) {
      if (p == rank) {
        sum = RoundResult.merge(sum, mine.withoutState());
        counts[p] = mine.examples();
        slices[p] = (from, dst, m) -> layout.read(state, at + from, dst, m);
        continue;
      }
      ByteBuffer b = in[p];
      stopRequested |= b.get() != 0;
      counts[p] = b.getLong();
      byte[] h = new byte[b.getInt()];
      b.get(h);
      sum = RoundResult.merge(sum, deserialize(h, p));
      FloatBuffer f = theirs[p] != null ? theirs[p].slice((int) at, n) : b.asFloatBuffer();
      slices[p] = (from, dst, m) -> f.get(from, dst, 0, m);
    }
    // the averaged slice goes where the average goes and to the peers (the shared memory, the
    // all-gather's message), chunk by chunk; this worker's own values are read where they are
    ByteBuffer message = anyTcp ? gathered(n) : null;
    FloatBuffer toMessage = anyTcp
        ? message.duplicate().position(4).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer() : null;
    FloatBuffer toMemory = anyShared ? shared.mine().slice((int) at, n) : null;
    boolean nonFinite = weightedMean(slices, counts, n, (from, values, m) -> {
      layout.write(at + from, values, m);
      if (toMessage != null) {
        toMessage.put(from, values, 0, m);
      }
      if (toMemory != null) {
        toMemory.put(from, values, 0, m);
      }
    }, layout.scratch, layout.chunk, layout.mean);

    // all-gather: this worker's averaged slice (or, through the shared memory, that it is there) and,
    // last, whether it is finite, to everyone; theirs into the averaged state
    ByteBuffer[] sending = new ByteBuffer[workers];
    for (int p = 0; p < workers; p++) {
      if (p == rank) {
        continue;
      }
      if (theirs[p] != null) {
        sending[p] = outgoing(p, 4 + 1).put((byte) (nonFinite ? 1 : 0)).flip();
      } else {
        message.put(4 + 4 * n, (byte) (nonFinite ? 1 : 0));
        sending[p] = gathers[p].clear().limit(message.limit());
      }
    }
    exchange(sending);
    for (int p = 0; p < workers; p++) {
      if (p != rank) {
        nonFinite |= in[p].get(in[p].limit() - 1) != 0;
        layout.fill(p, theirs[p] != null ? theirs[p].slice((int) layout.from(p), layout.length(p))
            : in[p].asFloatBuffer());
      }
    }
    return new Averaged(layout.state, sum, stopRequested, nonFinite);
  }

  /** A layout over {@code s}'s arrays whose average goes into arrays of its own, named as {@code s}'s. */
  private Layout averagedLayout(ModelState s) {
    List<String> names = new ArrayList<>(s.arrays().keySet());
    ModelState averaged = new ModelState();
    List<FloatBuffer> outputs = new ArrayList<>();
    for (String n : names) {
      float[] a = new float[s.get(n).length];
      averaged.put(n, a);
      outputs.add(FloatBuffer.wrap(a));
    }
    return new Layout(names, averaged, outputs);
  }

  private static boolean finite(List<FloatBuffer> memory) {
    for (FloatBuffer b : memory) {
      for (int i = 0; i < b.capacity(); i++) {
        if (!Float.isFinite(b.get(i))) {
          return false;
        }
      }
    }
    return true;
  }

  /** Values averaged per pass of {@link #weightedMean}: its working arrays stay in the L1 cache. */
  static final int CHUNK = 2048;

  /** A worker's slice, read a range at a time: values [from, from + m) into {@code dst} from its index 0. */
  interface Values {
    void get(int from, float[] dst, int m);
  }

  /** Where averaged values go: {@code values}' first {@code m} are the slice's values [from, from + m). */
  interface Sink {
    void put(int from, float[] values, int m);
  }

  /**
   * Hands {@code out} the average of the workers' {@code slices} ({@code n} values each) weighted by
   * {@code counts}: per value, in double, worker 0's value times its count, plus each next worker's in
   * order, times {@link RoundResult#meanScale} (what RoundResult's merge and averagedState do over
   * whole states). Works {@value #CHUNK} values at a time, read into {@code scratch}, summed in
   * {@code chunk}, averaged into {@code mean}. Returns whether some average is not finite.
   */
  static boolean weightedMean(Values[] slices, long[] counts, int n, Sink out, float[][] scratch, double[] chunk,
      float[] mean) {
    long total = 0;
    for (long c : counts) {
      total += c;
    }
    double n0 = counts[0];
    double scale = RoundResult.meanScale(total);
    // x * 0 is 0 for finite x and NaN otherwise; four sums so that the loop need not wait on one
    float z0 = 0;
    float z1 = 0;
    float z2 = 0;
    float z3 = 0;
    for (int from = 0; from < n; from += CHUNK) {
      int m = Math.min(CHUNK, n - from);
      float[] first = scratch[0];
      slices[0].get(from, first, m);
      for (int i = 0; i < m; i++) {
        chunk[i] = (double) first[i] * n0;
      }
      for (int w = 1; w < slices.length; w++) {
        float[] v = scratch[w];
        slices[w].get(from, v, m);
        double c = counts[w];
        for (int i = 0; i < m; i++) {
          chunk[i] += v[i] * c;
        }
      }
      for (int i = 0; i < m; i++) {
        mean[i] = (float) (chunk[i] * scale);
      }
      int i = 0;
      for (; i + 3 < m; i += 4) {
        z0 += mean[i] * 0f;
        z1 += mean[i + 1] * 0f;
        z2 += mean[i + 2] * 0f;
        z3 += mean[i + 3] * 0f;
      }
      for (; i < m; i++) {
        z0 += mean[i] * 0f;
      }
      out.put(from, mean, m);
    }
    return Float.isNaN(z0 + z1 + z2 + z3);
  }

  /**
   * The all-gather's message of {@code n} averaged values (the same to every peer): its length
   * prefix written, then room for the values and a last byte, whether one of them is not finite.
   * {@link #gathers} are its views for the peers, each sent from its own position.
   */
  private ByteBuffer gathered(int n) {
    int bytes = 4 + 4 * n + 1;
    if (gathered == null || gathered.capacity() != bytes) {
      gathered = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
      gathered.putInt(0, bytes - 4);
      for (int p = 0; p < workers; p++) {
        gathers[p] = p == rank ? null : gathered.duplicate();
      }
    }
    return gathered;
  }

  /** Peer {@code p}'s outgoing buffer, cleared, with room for {@code bytes} bytes, the length prefix written. */
  private ByteBuffer outgoing(int p, int bytes) {
    if (out[p] == null || out[p].capacity() < bytes) {
      out[p] = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }
    out[p].clear();
    return out[p].putInt(bytes - 4);
  }

  /** Writes {@code sending[p]} to every peer p and reads one message from every peer into {@code in[p]} (then at its start). */
  private void exchange(ByteBuffer[] sending) throws IOException {
    ByteBuffer[] lengths = new ByteBuffer[workers];
    int pending = 0;
    for (int p = 0; p < workers; p++) {
      if (p != rank) {
        lengths[p] = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        if (in[p] != null) {
          in[p].clear().limit(0);
        }
        channels[p].keyFor(selector).interestOps(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
        pending += 2;
      }
    }
    long deadline = System.currentTimeMillis() + timeoutMillis;
    while (pending > 0) {
      int ready = selector.select(Math.max(1, Math.min(POLL_MILLIS, deadline - System.currentTimeMillis())));
      alive.run();
      if (ready == 0 && System.currentTimeMillis() >= deadline) {
        throw new SocketTimeoutException("worker " + rank + ": no data from the other workers for "
            + timeoutMillis / 1000 + " s");
      }
      for (SelectionKey key : selector.selectedKeys()) {
        int p = (Integer) key.attachment();
        SocketChannel c = channels[p];
        if (key.isValid() && key.isWritable()) {
          c.write(sending[p]);
          if (!sending[p].hasRemaining()) {
            key.interestOps(key.interestOps() & ~SelectionKey.OP_WRITE);
            pending--;
          }
        }
        if (key.isValid() && key.isReadable()) {
          ByteBuffer target = lengths[p].hasRemaining() ? lengths[p] : in[p];
          if (c.read(target) < 0) {
            throw new IOException("worker " + rank + ": worker " + p + " closed the connection");
          }
          if (target == lengths[p] && !lengths[p].hasRemaining()) {
            int n = lengths[p].getInt(0);
            if (in[p] == null || in[p].capacity() < n) {
              in[p] = ByteBuffer.allocateDirect(n).order(ByteOrder.LITTLE_ENDIAN);
            }
            in[p].clear().limit(n);
            c.read(in[p]);
          }
          if (!lengths[p].hasRemaining() && !in[p].hasRemaining()) {
            key.interestOps(key.interestOps() & ~SelectionKey.OP_READ);
            in[p].flip();
            pending--;
          }
        }
      }
      selector.selectedKeys().clear();
    }
  }

  private static byte[] serialize(RoundResult r) {
    ByteArrayOutputStream b = new ByteArrayOutputStream(256);
    try {
      r.writeTotals(new DataOutputStream(b));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return b.toByteArray();
  }

  private static RoundResult deserialize(byte[] b, int from) throws IOException {
    try {
      return RoundResult.readTotals(new DataInputStream(new ByteArrayInputStream(b)));
    } catch (IOException e) {
      throw new IOException("worker " + from + " sent an unreadable round result: " + e, e);
    }
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    try {
      selector.close();
    } catch (IOException e) {
      first = e;
    }
    for (SocketChannel c : channels) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }

  /**
   * A state's arrays in order, seen as one flat range cut into one slice per worker: a contribution's
   * state (the average then goes into arrays of this layout's own, the state returned) or a model's
   * memory (the average goes back into it).
   */
  private final class Layout {
    private final List<String> names;
    private final int[] lengths;
    private final long[] starts; // of each array in the flat range
    private final long total;
    /** Where the average goes, array by array: the memory, or the averaged state's arrays. */
    private final List<FloatBuffer> outputs;
    /** The averaged state that every round returns (its arrays overwritten by the next), or null for a memory. */
    final ModelState state;
    /** {@link #weightedMean}'s working space. */
    final float[][] scratch = new float[workers][CHUNK];
    final double[] chunk = new double[CHUNK];
    final float[] mean = new float[CHUNK];

    /**
     * Over {@code outputs}, where the average goes: a model's memory ({@code names} and {@code state}
     * null), or the arrays of {@code state}, the averaged state returned, named {@code names}.
     */
    Layout(List<String> names, ModelState state, List<FloatBuffer> outputs) {
      this.names = names;
      this.state = state;
      this.outputs = outputs;
      lengths = outputs.stream().mapToInt(FloatBuffer::capacity).toArray();
      starts = new long[lengths.length];
      long at = 0;
      for (int i = 0; i < lengths.length; i++) {
        starts[i] = at;
        at += lengths[i];
      }
      total = at;
    }

    /** Whether {@code s} has this layout's arrays in this order. */
    boolean fits(ModelState s) {
      if (names == null) {
        return false;
      }
      int i = 0;
      for (Map.Entry<String, float[]> e : s.arrays().entrySet()) {
        if (i >= lengths.length || !e.getKey().equals(names.get(i)) || e.getValue().length != lengths[i]) {
          return false;
        }
        i++;
      }
      return i == lengths.length;
    }

    /** Whether this layout is over {@code memory}. */
    boolean fits(List<FloatBuffer> memory) {
      return outputs == memory;
    }

    /** {@code s}'s arrays (of this layout) as buffers, in order. */
    List<FloatBuffer> buffers(ModelState s) {
      List<FloatBuffer> out = new ArrayList<>(names.size());
      for (String n : names) {
        out.add(FloatBuffer.wrap(s.get(n)));
      }
      return out;
    }

    long from(int slice) {
      return total * slice / workers;
    }

    int length(int slice) {
      return (int) (from(slice + 1) - from(slice));
    }

    /** Copies values [at, at + m) of the flat range of {@code s} into {@code dst}. */
    void read(List<FloatBuffer> s, long at, float[] dst, int m) {
      parts(at, at + m, (a, arrayAt, k, n) -> s.get(a).get(arrayAt, dst, k, n));
    }

    /** Writes {@code values}' first {@code m} where the average's values [at, at + m) go. */
    void write(long at, float[] values, int m) {
      parts(at, at + m, (a, arrayAt, k, n) -> outputs.get(a).put(arrayAt, values, k, n));
    }

    /** Puts slice {@code slice} of {@code s} into {@code b} as floats (in b's byte order), advancing b. */
    void copySlice(List<FloatBuffer> s, int slice, ByteBuffer b) {
      copySlice(s, slice, b.asFloatBuffer());
      b.position(b.position() + 4 * length(slice));
    }

    /** Puts slice {@code slice} of {@code s} into {@code f} from its index 0. */
    void copySlice(List<FloatBuffer> s, int slice, FloatBuffer f) {
      parts(from(slice), from(slice + 1), (a, arrayAt, at, n) -> f.put(at, s.get(a), arrayAt, n));
    }

    /** Writes slice {@code slice}'s averaged values, from {@code values}' index 0, where the average goes. */
    void fill(int slice, FloatBuffer values) {
      parts(from(slice), from(slice + 1), (a, arrayAt, at, n) -> outputs.get(a).put(arrayAt, values, at, n));
    }

    /** Calls {@code part} for each piece of an array that values [lo, hi) of the flat range cover, in order. */
    private void parts(long lo, long hi, Part part) {
      for (int a = 0; a < lengths.length; a++) {
        long s = Math.max(lo, starts[a]);
        long e = Math.min(hi, starts[a] + lengths[a]);
        if (s < e) {
          part.copy(a, (int) (s - starts[a]), (int) (s - lo), (int) (e - s));
        }
      }
    }
  }

  private interface Part {
    /** Values [arrayAt, arrayAt + n) of array {@code array}, at {@code at} from the range's start. */
    void copy(int array, int arrayAt, int at, int n);
  }
}
