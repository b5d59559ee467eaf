package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.dnnl.convolution_backward_data;
import org.bytedeco.dnnl.convolution_backward_weights;
import org.bytedeco.dnnl.convolution_forward;
import org.bytedeco.dnnl.deconvolution_backward_data;
import org.bytedeco.dnnl.deconvolution_backward_weights;
import org.bytedeco.dnnl.deconvolution_forward;
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive;
import org.bytedeco.dnnl.primitive_desc;
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
 * The convolutions of a compiled plan ({@code conv2d}, {@code deconv2d} and their backward ops) run
 * through oneDNN primitives that are made once, when the plan is compiled.
 *
 * <p>ND4J M2.1's oneDNN build makes every primitive descriptor again on each call and reorders the
 * weights each time: a convolution of a 1x1x4x4 input costs ~80 us there, its backward ~140 us, a
 * large share of a small network's step. A plan's arrays never move, so everything ND4J rebuilds
 * can be built once: the same descriptors as ND4J's oneDNN helpers (formats chosen by oneDNN,
 * {@code convolution_auto} / {@code deconvolution_direct}, the forward primitive as the hint of the
 * backward ones, backward data before backward weights), from the same oneDNN release (2.5.2, the
 * {@code org.bytedeco:dnnl} preset ND4J's onednn build is compiled against). The kernels are
 * therefore the same and the results bit-identical, which the models' tests check in
 * {@code checked} mode.
 *
 * <p>Used only where that holds: ND4J's CPU backend from the onednn build, float NCHW arrays, the
 * weight layouts of {@link Layers} ([kH, kW, in, out] for conv2d, [kH, kW, out, in] for deconv2d),
 * explicit padding, no dilation. Anything else, or {@code -Dgenpipe.onednn=false}, runs ND4J's op.
 */
final class OneDnnConvolutions {
  /** System property: {@code false} runs every convolution through ND4J's own op. */
  static final String PROPERTY = "genpipe.onednn";
  private static final Logger LOG = LoggerFactory.getLogger(OneDnnConvolutions.class);
  private static final memory.data_type F32 = memory.data_type.f32;
  /** dnnl's weight dims [out, in, kH, kW] from Layers' layouts: conv2d [kH, kW, in, out], deconv2d [kH, kW, out, in]. */
  private static final int[] CONV_WEIGHTS = {3, 2, 0, 1};
  private static final int[] DECONV_WEIGHTS = {2, 3, 0, 1};
  private static final int[] PLAIN = {0, 1, 2, 3};
  private static volatile Boolean available;
  private static engine cpu;

  private OneDnnConvolutions() {}

  /** Whether plans use these kernels in this JVM (ND4J's onednn CPU build, the preset loadable, not turned off). */
  static boolean available() {
    if (available == null) {
      synchronized (OneDnnConvolutions.class) {
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
      LOG.debug("ND4J backend {} from {}: convolutions run through ND4J's ops", backend, nd4jLibrary);
      return false;
    }
    try {
      Loader.load(dnnl.class);
      cpu = new engine(engine.kind.cpu, 0);
      return true;
    } catch (Throwable e) {
      LOG.warn("oneDNN preset not usable ({}); convolutions run through ND4J's ops", e.toString());
      return false;
    }
  }

  /**
   * A kernel computing op {@code opName} from {@code in} into {@code out} with ND4J's integer
   * arguments {@code iArgs}, or null where this class does not apply (ND4J's op then runs). For a
   * backward op, {@code inputGradientUsed} false leaves out the gradient of the input (e.g. of a
   * network's input images, which nothing reads): out[0] is then not written.
   */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out, long[] iArgs, boolean inputGradientUsed) {
    boolean backward = opName.endsWith("_bp");
    boolean transposed = opName.startsWith("deconv2d");
    if (!opName.equals("conv2d") && !opName.equals("conv2d_bp") && !opName.equals("deconv2d")
        && !opName.equals("deconv2d_bp")) {
      return null;
    }
    if (!available() || iArgs.length < 9 || !supported(in, out, iArgs)) {
      return null;
    }
    INDArray x = in[0];
    INDArray w = in[1];
    boolean bias = in.length == (backward ? 4 : 3);
    INDArray y = backward ? in[in.length - 1] : out[0];
    Geometry g = new Geometry(x, w, y, iArgs, transposed);
    return backward ? g.backward(x, w, y, inputGradientUsed ? out[0] : null, out[1], bias ? out[2] : null)
        : g.forward(x, w, bias ? in[2] : null, y);
  }

  private static boolean supported(INDArray[] in, INDArray[] out, long[] iArgs) {
    boolean dilated = iArgs[6] != 1 || iArgs[7] != 1;
    boolean samePadding = iArgs[8] != 0;
    boolean nhwc = iArgs.length > 9 && iArgs[9] != 0;
    boolean otherWeights = iArgs.length > 10 && iArgs[10] != 0;
    if (dilated || samePadding || nhwc || otherWeights) {
      return false;
    }
    for (INDArray a : in) {
      if (a.dataType() != DataType.FLOAT || a.isEmpty()) {
        return false;
      }
    }
    for (INDArray a : out) {
      if (a.dataType() != DataType.FLOAT || a.isEmpty()) {
        return false;
      }
    }
    return in[0].rank() == 4 && in[1].rank() == 4;
  }

  /** Dimensions, strides and paddings of one convolution, as ND4J's oneDNN helpers state them. */
  private static final class Geometry {
    final boolean transposed;
    final long[] xDims;
    final long[] wDims;
    final long[] yDims;
    final long[] strides;
    final long[] dilation = {0, 0};
    final long[] padL;
    final long[] padR;
    final int[] wPerm;

    Geometry(INDArray x, INDArray w, INDArray y, long[] a, boolean transposed) {
      this.transposed = transposed;
      long kH = a[0] > 0 ? a[0] : w.size(0);
      long kW = a[1] > 0 ? a[1] : w.size(1);
      wPerm = transposed ? DECONV_WEIGHTS : CONV_WEIGHTS;
      xDims = x.shape();
      yDims = y.shape();
      wDims = new long[] {w.size(wPerm[0]), w.size(wPerm[1]), kH, kW};
      strides = new long[] {a[2], a[3]};
      padL = new long[] {a[4], a[5]};
      long iH = xDims[2];
      long iW = xDims[3];
      long oH = yDims[2];
      long oW = yDims[3];
      padR = transposed
          ? new long[] {(iH - 1) * a[2] - oH + kH - a[4], (iW - 1) * a[3] - oW + kW - a[5]}
          : new long[] {(oH - 1) * a[2] - iH + kH - a[4], (oW - 1) * a[3] - iW + kW - a[5]};
    }

    /** The forward primitive's descriptor (also the hint of the backward ones). */
    primitive_desc forwardDesc(memory.desc bias) {
      return transposed
          ? new deconvolution_forward.primitive_desc(new deconvolution_forward.desc(dnnl.prop_kind.forward_inference,
              dnnl.algorithm.deconvolution_direct, any(xDims), any(wDims), bias, any(yDims), strides, dilation, padL,
              padR), cpu)
          : new convolution_forward.primitive_desc(new convolution_forward.desc(dnnl.prop_kind.forward_inference,
              dnnl.algorithm.convolution_auto, any(xDims), any(wDims), bias, any(yDims), strides, dilation, padL, padR),
              cpu);
    }

    Kernel forward(INDArray x, INDArray w, INDArray b, INDArray y) {
      primitive_desc pd = forwardDesc(biasDesc(b));
      Kernel k = new Kernel();
      IntMemoryMap args = new IntMemoryMap();
      args.put(dnnl.DNNL_ARG_SRC, k.input(x, PLAIN, xDims, query(pd, dnnl.dnnl_query_src_md)));
      args.put(dnnl.DNNL_ARG_WEIGHTS, k.input(w, wPerm, wDims, query(pd, dnnl.dnnl_query_weights_md)));
      if (b != null) {
        args.put(dnnl.DNNL_ARG_BIAS, k.plain(b, new long[] {b.length()}, PLAIN));
      }
      args.put(dnnl.DNNL_ARG_DST, k.output(y, PLAIN, yDims, query(pd, dnnl.dnnl_query_dst_md)));
      k.add(transposed ? new deconvolution_forward((deconvolution_forward.primitive_desc) pd)
          : new convolution_forward((convolution_forward.primitive_desc) pd), args);
      return k;
    }

    /** Backward data (skipped when {@code gradIn} is null) then backward weights, as ND4J runs them. */
    Kernel backward(INDArray x, INDArray w, INDArray gradOut, INDArray gradIn, INDArray gradW, INDArray gradB) {
      memory.desc biasMd = biasDesc(gradB);
      primitive_desc hint = forwardDesc(biasMd);
      primitive_desc data;
      primitive_desc weights;
      if (transposed) {
        data = new deconvolution_backward_data.primitive_desc(new deconvolution_backward_data.desc(
            dnnl.algorithm.deconvolution_direct, any(xDims), any(wDims), any(yDims), strides, dilation, padL, padR), cpu,
            (deconvolution_forward.primitive_desc) hint);
        weights = new deconvolution_backward_weights.primitive_desc(new deconvolution_backward_weights.desc(
            dnnl.algorithm.deconvolution_direct, any(xDims), any(wDims), biasMd, any(yDims), strides, dilation, padL,
            padR), cpu, (deconvolution_forward.primitive_desc) hint);
      } else {
        data = new convolution_backward_data.primitive_desc(new convolution_backward_data.desc(
            dnnl.algorithm.convolution_auto, any(xDims), any(wDims), any(yDims), strides, dilation, padL, padR), cpu,
            (convolution_forward.primitive_desc) hint);
        weights = new convolution_backward_weights.primitive_desc(new convolution_backward_weights.desc(
            dnnl.algorithm.convolution_auto, any(xDims), any(wDims), biasMd, any(yDims), strides, dilation, padL, padR),
            cpu, (convolution_forward.primitive_desc) hint);
      }
      Kernel k = new Kernel();
      IntMemoryMap dataArgs = null;
      if (gradIn != null) {
        dataArgs = new IntMemoryMap();
        dataArgs.put(dnnl.DNNL_ARG_DIFF_DST, k.input(gradOut, PLAIN, yDims, query(data, dnnl.dnnl_query_diff_dst_md)));
        dataArgs.put(dnnl.DNNL_ARG_WEIGHTS, k.input(w, wPerm, wDims, query(data, dnnl.dnnl_query_weights_md)));
        dataArgs.put(dnnl.DNNL_ARG_DIFF_SRC, k.output(gradIn, PLAIN, xDims, query(data, dnnl.dnnl_query_diff_src_md)));
      }
      IntMemoryMap weightArgs = new IntMemoryMap();
      weightArgs.put(dnnl.DNNL_ARG_SRC, k.input(x, PLAIN, xDims, query(weights, dnnl.dnnl_query_src_md)));
      weightArgs.put(dnnl.DNNL_ARG_DIFF_DST, k.input(gradOut, PLAIN, yDims, query(weights, dnnl.dnnl_query_diff_dst_md)));
      weightArgs.put(dnnl.DNNL_ARG_DIFF_WEIGHTS,
          k.output(gradW, wPerm, wDims, query(weights, dnnl.dnnl_query_diff_weights_md)));
      if (gradB != null) {
        weightArgs.put(dnnl.DNNL_ARG_DIFF_BIAS, k.plain(gradB, new long[] {gradB.length()}, PLAIN));
      }
      if (gradIn != null) {
        k.add(transposed ? new deconvolution_backward_data((deconvolution_backward_data.primitive_desc) data)
            : new convolution_backward_data((convolution_backward_data.primitive_desc) data), dataArgs);
      }
      k.add(transposed ? new deconvolution_backward_weights((deconvolution_backward_weights.primitive_desc) weights)
          : new convolution_backward_weights((convolution_backward_weights.primitive_desc) weights), weightArgs);
      return k;
    }

    private static memory.desc biasDesc(INDArray b) {
      return b == null ? new memory.desc() : new memory.desc(new long[] {b.length()}, F32, memory.format_tag.x);
    }

    private static memory.desc any(long[] dims) {
      return new memory.desc(dims, F32, memory.format_tag.any);
    }

    private static memory.desc query(primitive_desc pd, int what) {
      return pd.query_md(what, 0);
    }
  }

  /** Reorders in, primitives, reorders out: everything bound to fixed arrays at compile time. */
  private static final class Kernel implements Runnable {
    private final stream stream = new stream(cpu);
    private final List<Copy> before = new ArrayList<>();
    private final List<primitive> primitives = new ArrayList<>();
    private final List<IntMemoryMap> primitiveArgs = new ArrayList<>();
    private final List<Copy> after = new ArrayList<>();
    // the Java objects own native handles: kept reachable as long as the kernel
    private final List<memory> keep = new ArrayList<>();

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
      memory m = new memory(new memory.desc(dims, F32, strides), cpu, a.data().addressPointer());
      keep.add(m);
      return m;
    }

    /** The memory a primitive reads {@code a} from: the array itself, or a copy in the primitive's format. */
    memory input(INDArray a, int[] perm, long[] dims, memory.desc wanted) {
      return bind(a, perm, dims, wanted, true);
    }

    /** The memory a primitive writes {@code a} to: the array itself, or a buffer reordered into it after. */
    memory output(INDArray a, int[] perm, long[] dims, memory.desc produced) {
      return bind(a, perm, dims, produced, false);
    }

    private memory bind(INDArray a, int[] perm, long[] dims, memory.desc format, boolean read) {
      memory user = plain(a, dims, perm);
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
