package org.genpipe.jobs.train;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.channels.ServerSocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.genpipe.models.ModelState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The allreduce between workers over real loopback sockets, one thread per worker, against rounds
 * mode's merge: the states over TCP, and through shared memory (files in a temporary folder, as in
 * /dev/shm on a host).
 */
class AllreduceTest {
  @TempDir
  java.nio.file.Path shm;

  /**
   * Array lengths that put slice and chunk boundaries inside arrays and leave a short last chunk
   * (three workers: the last slice has 7,129 values, its last chunk 985).
   */
  private static final int[] LENGTHS = {5000, 3, Allreduce.CHUNK + 1, 7 * Allreduce.CHUNK - 5, 2};

  @ParameterizedTest(name = "shared memory: {0}")
  @ValueSource(booleans = {false, true})
  void threeWorkersAverageBitForBitAsRoundsModeMergesOverSeveralRounds(boolean sharedMemory) throws Exception {
    int workers = 3;
    long[] examples = {64, 33, 50}; // not powers of two: each product rounds
    List<List<RoundResult>> rounds = new ArrayList<>();
    for (int round = 0; round < 3; round++) {
      List<RoundResult> contributions = new ArrayList<>();
      for (int w = 0; w < workers; w++) {
        contributions.add(contribution(w, examples[w], 100L * round + w, Float.NaN, -1));
      }
      rounds.add(contributions);
    }
    List<List<Allreduce.Averaged>> got = allreduce(dirs(workers, sharedMemory), rounds);

    for (int round = 0; round < rounds.size(); round++) {
      RoundResult merged = new RoundResult();
      for (int w = 0; w < workers; w++) {
        merged = RoundResult.merge(merged, contribution(w, examples[w], 100L * round + w, Float.NaN, -1));
      }
      ModelState expected = merged.averagedState();
      for (int w = 0; w < workers; w++) {
        Allreduce.Averaged a = got.get(w).get(round);
        for (Map.Entry<String, float[]> e : expected.arrays().entrySet()) {
          assertThat(a.state().get(e.getKey())).as("round %d worker %d array %s", round, w, e.getKey())
              .containsExactly(e.getValue());
        }
        assertThat(a.totals().examples()).isEqualTo(147);
        assertThat(a.totals().meanLosses(1)).isEqualTo(merged.meanLosses(1));
        assertThat(a.diverged()).isFalse();
        assertThat(a.stopRequested()).isFalse();
      }
    }
  }

  @ParameterizedTest(name = "shared memory: {0}")
  @ValueSource(booleans = {false, true})
  void averagesInPlaceInAModelsMemoryAsRoundsModeMerges(boolean sharedMemory) throws Exception {
    int workers = 3;
    long[] examples = {64, 33, 50};
    List<RoundResult> contributions = new ArrayList<>();
    List<List<java.nio.FloatBuffer>> memories = new ArrayList<>();
    RoundResult merged = new RoundResult();
    for (int w = 0; w < workers; w++) {
      RoundResult c = contribution(w, examples[w], w, Float.NaN, -1);
      merged = RoundResult.merge(merged, contribution(w, examples[w], w, Float.NaN, -1));
      // the model's memory: the state's values cut differently from its arrays (split and joined)
      float[] flat = new float[java.util.Arrays.stream(LENGTHS).sum()];
      int at = 0;
      for (float[] a : c.state().arrays().values()) {
        System.arraycopy(a, 0, flat, at, a.length);
        at += a.length;
      }
      int cut = 4321;
      memories.add(List.of(java.nio.FloatBuffer.wrap(java.util.Arrays.copyOfRange(flat, 0, cut)),
          java.nio.ByteBuffer.allocateDirect(4 * (flat.length - cut)).order(java.nio.ByteOrder.nativeOrder())
              .asFloatBuffer().put(flat, cut, flat.length - cut)));
      contributions.add(c.withoutState());
    }
    List<Allreduce.Averaged> got = perWorker(dirs(workers, sharedMemory),
        (rank, allreduce) -> allreduce.average(contributions.get(rank), memories.get(rank), false));
    float[] expected = new float[java.util.Arrays.stream(LENGTHS).sum()];
    int at = 0;
    for (float[] a : merged.averagedState().arrays().values()) {
      System.arraycopy(a, 0, expected, at, a.length);
      at += a.length;
    }
    for (int w = 0; w < workers; w++) {
      Allreduce.Averaged a = got.get(w);
      assertThat(a.state()).isNull();
      assertThat(a.diverged()).isFalse();
      assertThat(a.totals().examples()).isEqualTo(147);
      float[] mem = new float[expected.length];
      memories.get(w).get(0).get(0, mem, 0, 4321);
      memories.get(w).get(1).get(0, mem, 4321, expected.length - 4321);
      assertThat(mem).as("worker %d's memory", w).isEqualTo(expected);
    }
  }

  @ParameterizedTest(name = "shared memory: {0}")
  @ValueSource(booleans = {false, true})
  void aNonFiniteValueInAnyWorkersSliceEndsTheRoundOnEveryWorker(boolean sharedMemory) throws Exception {
    int workers = 3;
    // the last value of the state: the last slice, the short last chunk, the odd tail of the finiteness check
    int last = java.util.Arrays.stream(LENGTHS).sum() - 1;
    for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
      for (int at : new int[] {0, 5001, last}) {
        List<RoundResult> contributions = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
          contributions.add(contribution(w, 64, w, bad, w == 1 ? at : -1));
        }
        List<List<Allreduce.Averaged>> got = allreduce(dirs(workers, sharedMemory), List.of(contributions));
        for (int w = 0; w < workers; w++) {
          Allreduce.Averaged a = got.get(w).get(0);
          assertThat(a.diverged()).as("%s at %d, seen by worker %d", bad, at, w).isTrue();
          assertThat(a.state().firstNonFinite()).isNotNull();
        }
      }
    }
  }

  /**
   * Worker 0 cannot share memory (its folder is missing, as a worker whose /dev/shm is full or on
   * another host): it averages with the others over TCP while workers 1 and 2 share theirs, and
   * every worker gets the same bits; the files are gone once the workers mapped them.
   */
  @Test
  void workersThatShareMemoryAndWorkersThatDoNotAverageTogether() throws Exception {
    int workers = 3;
    long[] examples = {64, 33, 50};
    List<List<RoundResult>> rounds = new ArrayList<>();
    RoundResult merged = new RoundResult();
    List<RoundResult> contributions = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      contributions.add(contribution(w, examples[w], 40 + w, Float.NaN, -1));
      merged = RoundResult.merge(merged, contribution(w, examples[w], 40 + w, Float.NaN, -1));
    }
    rounds.add(contributions);
    java.nio.file.Path[] dirs = {shm.resolve("no-such-folder"), shm, shm};
    List<List<Boolean>> shares = java.util.Collections.synchronizedList(new ArrayList<>());
    List<List<Allreduce.Averaged>> got = perWorker(dirs, (rank, a) -> {
      shares.add(List.of(a.sharesWith(0), a.sharesWith(1), a.sharesWith(2)));
      Allreduce.Averaged r = a.average(rounds.get(0).get(rank), false);
      return List.of(new Allreduce.Averaged(r.state().copy(), r.totals(), r.stopRequested(), r.nonFiniteState()));
    });
    assertThat(shares).containsExactlyInAnyOrder(List.of(false, false, false), List.of(false, false, true),
        List.of(false, true, false));
    ModelState expected = merged.averagedState();
    for (int w = 0; w < workers; w++) {
      for (Map.Entry<String, float[]> e : expected.arrays().entrySet()) {
        assertThat(got.get(w).get(0).state().get(e.getKey())).as("worker %d array %s", w, e.getKey())
            .containsExactly(e.getValue());
      }
    }
    try (var files = java.nio.file.Files.list(shm)) {
      assertThat(files).isEmpty();
    }
  }

  /** Each worker's shared-memory folder: {@link #shm} or none. */
  private java.nio.file.Path[] dirs(int workers, boolean sharedMemory) {
    java.nio.file.Path[] dirs = new java.nio.file.Path[workers];
    java.util.Arrays.fill(dirs, sharedMemory ? shm : null);
    return dirs;
  }

  /** Worker {@code w}'s contribution: arrays of {@link #LENGTHS} from {@code seed}; {@code bad} at flat index {@code at} (>= 0). */
  private static RoundResult contribution(int w, long examples, long seed, float bad, int at) {
    Random r = new Random(seed);
    ModelState s = new ModelState();
    int flat = 0;
    for (int a = 0; a < LENGTHS.length; a++) {
      float[] v = new float[LENGTHS[a]];
      for (int i = 0; i < v.length; i++, flat++) {
        v[i] = flat == at ? bad : (float) (r.nextGaussian() * Math.pow(10, r.nextInt(7) - 3));
      }
      s.put("array" + a, v);
    }
    List<Map<String, Double>> losses = List.of(Map.of("loss", 1.0 + w), Map.of("loss", 0.5 * w));
    return RoundResult.of(w, s, examples, losses, 0, 1_000_000L);
  }

  /** Runs the rounds' contributions through a real allreduce among {@code workers} threads; per worker, its outcomes. */
  private static List<List<Allreduce.Averaged>> allreduce(java.nio.file.Path[] dirs, List<List<RoundResult>> rounds)
      throws Exception {
    return perWorker(dirs, (rank, a) -> {
      List<Allreduce.Averaged> out = new ArrayList<>();
      for (List<RoundResult> round : rounds) {
        Allreduce.Averaged r = a.average(round.get(rank), false);
        // the next round overwrites the averaged state's arrays
        out.add(new Allreduce.Averaged(r.state().copy(), r.totals(), r.stopRequested(), r.nonFiniteState()));
      }
      return out;
    });
  }

  private interface WorkerCall<T> {
    T call(int rank, Allreduce allreduce) throws Exception;
  }

  /**
   * {@code call} on one thread per worker, connected by a real allreduce over loopback (worker w
   * shares memory in {@code dirs[w]} where it is not null); their results in rank order.
   */
  private static <T> List<T> perWorker(java.nio.file.Path[] dirs, WorkerCall<T> call) throws Exception {
    int workers = dirs.length;
    long values = java.util.Arrays.stream(LENGTHS).sum();
    ServerSocketChannel[] servers = new ServerSocketChannel[workers];
    String[] addresses = new String[workers];
    for (int w = 0; w < workers; w++) {
      servers[w] = Allreduce.listen("127.0.0.1", workers);
      addresses[w] = Allreduce.address(servers[w]);
    }
    ExecutorService pool = Executors.newFixedThreadPool(workers);
    try {
      List<Future<T>> futures = new ArrayList<>();
      for (int w = 0; w < workers; w++) {
        int rank = w;
        futures.add(pool.submit(() -> {
          try (ServerSocketChannel server = servers[rank];
              Allreduce a = Allreduce.connect(rank, addresses, server, 60_000, () -> {}, values, dirs[rank])) {
            return call.call(rank, a);
          }
        }));
      }
      List<T> results = new ArrayList<>();
      for (Future<T> f : futures) {
        results.add(f.get(60, TimeUnit.SECONDS));
      }
      return results;
    } finally {
      pool.shutdownNow();
    }
  }
}
