package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive;
import org.bytedeco.dnnl.reorder;
import org.bytedeco.dnnl.stream;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.Loader;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * oneDNN primitives bound once to a compiled plan's fixed arrays ({@link GraphPlan}): whether this
 * JVM can use them, and the bound kernel that runs them. {@link OneDnnConvolutions} and
 * {@link OneDnnEltwise} build their kernels from this.
 *
 * <p>Used only with ND4J's CPU backend from its onednn build (whose oneDNN release, 2.5.2, is the
 * {@code org.bytedeco:dnnl} preset's), unless {@code -Dgenpipe.onednn=false}.
 */
final class OneDnn {
  /** System property: {@code false} runs every op of a plan through ND4J's own op. */
  static final String PROPERTY = "genpipe.onednn";
  private static final Logger LOG = LoggerFactory.getLogger(OneDnn.class);
  private static volatile Boolean available;
  private static engine cpu;

  private OneDnn() {}

  /** Whether plans use these kernels in this JVM (ND4J's onednn CPU build, the preset loadable, not turned off). */
  static boolean available() {
    if (available == null) {
      synchronized (OneDnn.class) {
        if (available == null) {
          available = detect();
        }
      }
    }
    return available;
  }

  private static boolean detect() {
    if ("false".equals(System.getProperty(PROPERTY))) {
      return false;
    }
    String backend = Nd4j.getBackend().getClass().getSimpleName();
    // the library ND4J actually loaded (both the plain and the onednn build may be on the class path)
    String nd4jLibrary = Loader.getLoadedLibraries().getOrDefault("nd4jcpu", "");
    if (!backend.equals("CpuBackend") || !nd4jLibrary.contains("-onednn")) {
      LOG.debug("ND4J backend {} from {}: compiled plans run ND4J's ops", backend, nd4jLibrary);
      return false;
    }
    try {
      Loader.load(dnnl.class);
      cpu = new engine(engine.kind.cpu, 0);
      return true;
    } catch (Throwable e) {
      LOG.warn("oneDNN preset not usable ({}); compiled plans run ND4J's ops", e.toString());
      return false;
    }
  }

  /** The CPU engine; only after {@link #available()} returned true. */
  static engine cpu() {
    return cpu;
  }

  /**
   * A float array whose elements are its whole buffer in c order: a plan's own arrays, and parameters
   * (views into a network's flat parameter vector have a buffer of their own elements, whose address
   * is their first element, as {@link OneDnnConvolutions} binds weights).
   */
  static boolean wholeArray(INDArray a) {
    return a.dataType() == DataType.FLOAT && !a.isEmpty() && a.ordering() == 'c' && a.length() == a.data().length()
        && (a.length() == 1 || a.elementWiseStride() == 1);
  }

  /** Reorders in, primitives, reorders out: everything bound to fixed arrays at compile time. */
  static final class Kernel implements Runnable {
    private final stream stream = new stream(cpu);
    private final List<Copy> before = new ArrayList<>();
    private final List<primitive> primitives = new ArrayList<>();
    private final List<IntMemoryMap> primitiveArgs = new ArrayList<>();
    private final List<Copy> after = new ArrayList<>();
    private final List<Read> reads = new ArrayList<>();
    // the Java objects own native handles: kept reachable as long as the kernel
    private final List<Object> keep = new ArrayList<>();

    /** A reorder between two fixed memories. */
    private record Copy(reorder op, memory from, memory to) {
      Copy(memory from, memory to) {
        this(new reorder(from, to), from, to);
      }

      void run(stream s) {
        op.execute(s, from, to);
      }
    }

    /** The array as oneDNN sees it: dims in dnnl order, the array's own strides. */
    memory plain(INDArray a, long[] dims, int[] perm) {
      long[] strides = new long[dims.length];
      for (int i = 0; i < dims.length; i++) {
        strides[i] = a.stride(perm[i]);
      }
      memory m = new memory(new memory.desc(dims, memory.data_type.f32, strides), cpu, a.data().addressPointer());
      keep.add(m);
      return m;
    }

    /** A dense array's elements as one dimension, in memory order. */
    memory flat(INDArray a) {
      memory m = new memory(new memory.desc(new long[] {a.length()}, memory.data_type.f32, memory.format_tag.x), cpu,
          a.data().addressPointer());
      keep.add(m);
      return m;
    }

    /** Keeps {@code o} (an array a primitive reads) reachable as long as the kernel. */
    void keep(Object o) {
      keep.add(o);
    }

    /** The memory a primitive reads {@code a} from: the array itself, or a copy in the primitive's format. */
    memory input(INDArray a, int[] perm, long[] dims, memory.desc wanted) {
      return bind(a, perm, dims, wanted, true);
    }

    /** The memory a primitive writes {@code a} to: the array itself, or a buffer reordered into it after. */
    memory output(INDArray a, int[] perm, long[] dims, memory.desc produced) {
      return bind(a, perm, dims, produced, false);
    }

    /**
     * A dense c-order array's elements (offset 0, the whole buffer) as a plain c-order tensor of
     * {@code dims} (any shape of the same size): the strides follow from the dims, not from ND4J's
     * strides, which are arbitrary on axes of size 1.
     */
    memory dense(INDArray a, long... dims) {
      memory.format_tag tag = switch (dims.length) {
        case 1 -> memory.format_tag.a;
        case 2 -> memory.format_tag.ab;
        case 3 -> memory.format_tag.abc;
        case 4 -> memory.format_tag.abcd;
        default -> throw new IllegalArgumentException("rank " + dims.length);
      };
      memory m = new memory(new memory.desc(dims, memory.data_type.f32, tag), cpu, a.data().addressPointer());
      keep.add(m);
      return m;
    }

    /** As {@link #input(INDArray, int[], long[], memory.desc)}, for the memory of {@link #dense}. */
    memory input(memory user, memory.desc wanted) {
      return bind(user, wanted, true);
    }

    /** As {@link #output(INDArray, int[], long[], memory.desc)}, for the memory of {@link #dense}. */
    memory output(memory user, memory.desc produced) {
      return bind(user, produced, false);
    }

    private memory bind(INDArray a, int[] perm, long[] dims, memory.desc format, boolean read) {
      if (read) {
        // one copy per array and format: a backward kernel's primitives often read the output's gradient in one format
        for (Read r : reads) {
          if (r.array() == a && java.util.Arrays.equals(r.perm(), perm) && r.copy().get_desc().equals(format)) {
            return r.copy();
          }
        }
      }
      memory m = bind(plain(a, dims, perm), format, read);
      if (read) {
        reads.add(new Read(a, perm, m));
      }
      return m;
    }

    /** An array read in a primitive's format, and the memory it is read from. */
    private record Read(INDArray array, int[] perm, memory copy) {}

    private memory bind(memory user, memory.desc format, boolean read) {
      if (user.get_desc().equals(format)) {
        return user;
      }
      memory internal = new memory(format, cpu);
      keep.add(internal);
      if (read) {
        before.add(new Copy(user, internal));
      } else {
        after.add(new Copy(internal, user));
      }
      return internal;
    }

    /** How many copies of {@code a} the kernel makes before its primitives (for tests). */
    int copiesOf(INDArray a) {
      long address = a.data().addressPointer().address() + a.offset() * a.data().getElementSize();
      int n = 0;
      for (Copy c : before) {
        n += c.from().get_data_handle().address() == address ? 1 : 0;
      }
      return n;
    }

    void add(primitive p, IntMemoryMap args) {
      primitives.add(p);
      primitiveArgs.add(args);
    }

    @Override
    public void run() {
      for (Copy c : before) {
        c.run(stream);
      }
      for (int i = 0; i < primitives.size(); i++) {
        primitives.get(i).execute(stream, primitiveArgs.get(i));
      }
      for (Copy c : after) {
        c.run(stream);
      }
      stream._wait();
    }
  }
}
