package org.genpipe.models.nn;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.imports.converters.ImportClassMapping;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ops.CustomOpDescriptor;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.api.ops.impl.transforms.BaseDynamicTransformOp;
import org.nd4j.linalg.util.HashUtil;
import org.nd4j.enums.PadMode;

/**
 * Element-wise ops (and a crop) whose forward pass is ND4J's own native op and whose backward
 * pass is written from cheap forward ops instead of ND4J M2.1's backward kernels, which are the
 * slowest part of a small network's step on the CPU backend. Measured here ([64, 8, 14, 14] float, one thread):
 * {@code thresholdedrelu_bp} (what {@code sd.nn().relu} differentiates to) 1,130 us and
 * {@code relu_bp} 320 us, against ~60 us for step-mask-and-multiply; per-channel broadcast
 * {@code multiply_bp} 2,750 us against ~140 us for multiply plus reduce; broadcast
 * {@code add_bp} 250 us against ~110 us for the reduce alone.
 *
 * <p>Same functions, same gradients (ReLU's derivative at 0 is 0, as ND4J's and PyTorch's): only
 * the kernels differ. SameDiff builds its gradient graph from a copy of the graph made by
 * serialising each op and creating it again from its registered class, so these classes have
 * names of their own, registered in ND4J's name-to-op table, and run the native op of the class
 * they extend (its hash and descriptor).
 */
public final class FastGrad {
  private static final String AXES = "axes";

  static {
    register(new Relu(), "relu");
    register(new ChannelMul(), "multiply");
    register(new ChannelAdd(), "add");
    register(new BceWithLogits(), BceWithLogits.NATIVE);
    register(new Crop(), Crop.NATIVE);
  }

  private FastGrad() {}

  /** max(x, 0). */
  public static SDVariable relu(SameDiff sd, SDVariable x) {
    return new Relu(sd, x).outputVariable();
  }

  /**
   * LeakyReLU, max(x, slope * x) for slope in [0, 1], as slope * x + (1 - slope) * relu(x): ND4J
   * M2.1's native {@code leakyrelu} takes ~7 ms and {@code lrelu_bp} ~10 ms on [64, 64, 16, 16]
   * with one thread, several times the cost of these few cheap ops together.
   */
  public static SDVariable leakyRelu(SameDiff sd, SDVariable x, double slope) {
    return x.mul(slope).add(relu(sd, x).mul(1.0 - slope));
  }

  /**
   * x * s with s of shape [1, C, 1, 1] (NCHW) or [1, C], broadcast over {@code axes} of x.
   */
  public static SDVariable channelMul(SameDiff sd, SDVariable x, SDVariable s, int... axes) {
    return new ChannelMul(sd, x, s, axes).outputVariable();
  }

  /** x + s with s of shape [1, C, 1, 1] (NCHW) or [1, C], broadcast over {@code axes} of x. */
  public static SDVariable channelAdd(SameDiff sd, SDVariable x, SDVariable s, int... axes) {
    return new ChannelAdd(sd, x, s, axes).outputVariable();
  }

  /**
   * Binary cross-entropy of targets t in [0, 1] against sigmoid(logits), per element, in the stable
   * form max(l, 0) - l t + log(1 + exp(-|l|)): one native op ({@code sigm_cross_entropy_loss}
   * without reduction) where writing it out takes nine element-wise ops, and the gradient
   * (sigmoid(l) - t) g in three. No gradient flows to the targets.
   */
  public static SDVariable bceWithLogits(SameDiff sd, SDVariable logits, SDVariable targets) {
    return new BceWithLogits(sd, logits, targets).outputVariable();
  }

  /**
   * x[:, :, start:start+size, start:start+size] of an NCHW array whose spatial size is {@code full}:
   * ND4J's native {@code slice} (a copy) forward, zero padding (native {@code pad}) as its gradient.
   * Measured on [64, 8, 15, 15] -> 14x14, one thread: {@code strided_slice} 173 us and
   * {@code strided_slice_bp} 116 us, against 110 us and 80 us; the values are the same.
   */
  public static SDVariable crop(SameDiff sd, SDVariable x, long start, long size, long full) {
    return new Crop(sd, x, start, size, full).outputVariable();
  }

  /** The spatial crop of {@link #crop}: native slice with int arguments begin then size; pads back. */
  public static final class Crop extends DynamicCustomOp {
    static final String NATIVE = "slice";
    private static final String START = "start";
    private static final String TRAILING = "trailing";
    private long start;
    private long trailing;

    public Crop() {}

    Crop(SameDiff sd, SDVariable x, long start, long size, long full) {
      super(sd, new SDVariable[] {x});
      addIArgument(0, 0, start, start, -1, -1, size, size); // begin, then size (-1: the whole axis)
      this.start = start;
      this.trailing = full - start - size;
    }

    @Override
    public String opName() {
      return "genpipe_crop";
    }

    @Override
    public long opHash() {
      return HashUtil.getLongHash(NATIVE);
    }

    @Override
    public CustomOpDescriptor getDescriptor() {
      return nativeDescriptor(NATIVE);
    }

    @Override
    public int getNumOutputs() {
      return 1;
    }

    @Override
    public List<DataType> calculateOutputDataTypes(List<DataType> in) {
      return List.of(in.get(0));
    }

    @Override
    public Map<String, Object> propertiesForFunction() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put(START, start);
      m.put(TRAILING, trailing);
      return m;
    }

    @Override
    public void setPropertiesForFunction(Map<String, Object> properties) {
      if (!(properties.get(START) instanceof Number s) || !(properties.get(TRAILING) instanceof Number t)) {
        throw new IllegalStateException(opName() + ": no crop offsets in the serialised op (" + properties + ")");
      }
      start = s.longValue();
      trailing = t.longValue();
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
      int s = Math.toIntExact(start);
      int t = Math.toIntExact(trailing);
      SDVariable padding = sameDiff.constant(Nd4j.createFromArray(new int[][] {{0, 0}, {0, 0}, {s, t}, {s, t}}));
      return List.of(sameDiff.nn().pad(grads.get(0), padding, PadMode.CONSTANT, 0.0));
    }
  }

  /** BCE with logits (ND4J's native op, inputs logits, weights, labels) with a three-op gradient. */
  public static final class BceWithLogits extends SingleOutputOp {
    static final String NATIVE = "sigm_cross_entropy_loss";

    public BceWithLogits() {}

    BceWithLogits(SameDiff sd, SDVariable logits, SDVariable targets) {
      super(sd, new SDVariable[] {logits, sd.constant(Nd4j.scalar(logits.dataType(), 1.0)), targets});
      addIArgument(0); // no reduction: one loss per element
      addTArgument(0.0); // no label smoothing
    }

    @Override
    public String opName() {
      return "genpipe_bce_with_logits";
    }

    @Override
    String nativeName() {
      return NATIVE;
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
      SDVariable logits = arg(0);
      SDVariable dLogits = sameDiff.nn().sigmoid(logits).sub(arg(2)).mul(grads.get(0));
      return List.of(dLogits, sameDiff.zerosLike(arg(1)), sameDiff.zerosLike(arg(2)));
    }
  }

  /** ReLU (ND4J's native relu op) with the gradient g * step(x). */
  public static final class Relu extends SingleOutputOp {
    static final String NAME = "genpipe_relu";

    public Relu() {}

    Relu(SameDiff sd, SDVariable x) {
      super(sd, new SDVariable[] {x});
      addTArgument(0.0);
    }

    @Override
    public String opName() {
      return NAME;
    }

    @Override
    String nativeName() {
      return "relu";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
      return List.of(sameDiff.math().step(arg(), 0.0).mul(grads.get(0)));
    }
  }

  /**
   * An op with one output of its first input's data type that runs ND4J's native
   * {@link #nativeName} op under its own name; its arguments travel as the op's int and float
   * arguments, so it has no properties of its own to serialise.
   */
  abstract static class SingleOutputOp extends DynamicCustomOp {
    SingleOutputOp() {}

    SingleOutputOp(SameDiff sd, SDVariable[] args) {
      super(sd, args);
    }

    abstract String nativeName();

    @Override
    public long opHash() {
      return HashUtil.getLongHash(nativeName());
    }

    @Override
    public CustomOpDescriptor getDescriptor() {
      return nativeDescriptor(nativeName());
    }

    @Override
    public int getNumOutputs() {
      return 1;
    }

    @Override
    public Map<String, Object> propertiesForFunction() {
      return new LinkedHashMap<>();
    }

    @Override
    public void setPropertiesForFunction(Map<String, Object> properties) {
      // nothing beyond the int and float arguments
    }

    @Override
    public List<DataType> calculateOutputDataTypes(List<DataType> in) {
      return List.of(in.get(0));
    }
  }

  /**
   * A broadcast op of x [N, C, ...] and s [1, C, 1, ...] that runs ND4J's native {@link #nativeName}
   * op under its own name, carrying the broadcast axes through serialisation.
   */
  abstract static class ChannelOp extends BaseDynamicTransformOp {
    private int[] axes;

    ChannelOp() {}

    ChannelOp(SameDiff sd, SDVariable x, SDVariable s, int[] axes) {
      super(sd, new SDVariable[] {x, s}, false);
      this.axes = axes.clone();
    }

    abstract String nativeName();

    int[] axes() {
      return axes;
    }

    @Override
    public long opHash() {
      return HashUtil.getLongHash(nativeName());
    }

    @Override
    public CustomOpDescriptor getDescriptor() {
      return nativeDescriptor(nativeName());
    }

    @Override
    public Map<String, Object> propertiesForFunction() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put(AXES, axes);
      return m;
    }

    @Override
    public void setPropertiesForFunction(Map<String, Object> properties) {
      Object a = properties.get(AXES);
      if (a instanceof int[] ints) {
        axes = ints.clone();
      } else if (a instanceof long[] longs) {
        axes = java.util.Arrays.stream(longs).mapToInt(Math::toIntExact).toArray();
      } else {
        throw new IllegalStateException(opName() + ": no broadcast axes in the serialised op (" + properties + ")");
      }
    }
  }

  /** Broadcast multiply with the gradients g * s and sum(g * x) over the broadcast axes. */
  public static final class ChannelMul extends ChannelOp {
    public ChannelMul() {}

    ChannelMul(SameDiff sd, SDVariable x, SDVariable s, int[] axes) {
      super(sd, x, s, axes);
    }

    @Override
    public String opName() {
      return "genpipe_channel_mul";
    }

    @Override
    String nativeName() {
      return "multiply";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
      SDVariable g = grads.get(0);
      return List.of(g.mul(arg(1)), g.mul(arg(0)).sum(true, axes()));
    }
  }

  /** Broadcast add with the gradients g and sum(g) over the broadcast axes. */
  public static final class ChannelAdd extends ChannelOp {
    public ChannelAdd() {}

    ChannelAdd(SameDiff sd, SDVariable x, SDVariable s, int[] axes) {
      super(sd, x, s, axes);
    }

    @Override
    public String opName() {
      return "genpipe_channel_add";
    }

    @Override
    String nativeName() {
      return "add";
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
      SDVariable g = grads.get(0);
      return List.of(sameDiff.identity(g), g.sum(true, axes()));
    }
  }

  /** The native op's descriptor (argument counts for the shape function), found by its own name. */
  private static CustomOpDescriptor nativeDescriptor(String nativeName) {
    return Nd4j.getExecutioner().getCustomOperations().get(nativeName);
  }

  /**
   * Makes ND4J re-create {@code op} from its serialised form: an op whose name is not in libnd4j's
   * list is serialised with hash 0 and found again by name in ND4J's name-to-op table. The native op
   * it runs must exist.
   */
  private static void register(DifferentialFunction op, String nativeName) {
    if (nativeDescriptor(nativeName) == null) {
      throw new IllegalStateException("ND4J's backend has no native op " + nativeName + " (ND4J version?)");
    }
    ImportClassMapping.getOpNameMapping().put(op.opName(), op);
  }
}
