package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.CustomOp;
import org.nd4j.linalg.api.ops.Op;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.impl.transforms.same.Identity;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A SameDiff computation (outputs, optionally with the gradients of some variables) compiled for
 * fixed placeholder shapes into a flat list of native op calls.
 *
 * <p>SameDiff M2.1 interprets its graph on every call: per op it resolves dependencies, computes the
 * output shapes, takes arrays from its memory manager and builds an op context, about 50 us of Java
 * work per op; the beta-VAE's training step runs ~190 ops, so half its step was this bookkeeping.
 * A plan does that work once: it runs the computation through SameDiff one time with a listener that
 * records which ops ran, in which order, on which arrays and with which arguments; then it allocates
 * every intermediate array once and gives each op its own op context with its arrays and arguments
 * bound. Running the plan copies the placeholders in and calls the ops; the ops and kernels are the
 * ones SameDiff ran, so the results are the same, bit for bit (each model's tests check its steps in
 * {@code checked} mode, see {@link Compiled#MODE_PROPERTY}). Convolutions run through oneDNN
 * primitives made once per plan ({@link OneDnnConvolutions}: the same kernels as ND4J's op, without
 * its per-call set-up).
 *
 * <p>Plans for training and sampling go one step further where ND4J's kernel is slow: SiLU and its
 * derivative run oneDNN's vectorised kernels ({@link OneDnnEltwise}), matrix products oneDNN's
 * matmul ({@link OneDnnMatmul}), and each batch, group or instance norm layer, written from ~13 ops
 * forward and ~25 backward, runs as one fused oneDNN kernel each way ({@link NormRegions},
 * {@link OneDnnNorm}; {@code -Dgenpipe.fuse=false} keeps the ops). Those agree with ND4J's ops to
 * float rounding, not bit for bit, so plans compiled for {@code checked} mode keep ND4J's kernels
 * throughout: checked mode proves the plan's wiring, and the kernels' tests bound their difference.
 * Every run of a plan, in any mode, is deterministic: the same seed and config give the same result.
 *
 * <p>Shapes are fixed per plan, so {@link Compiled} keeps one plan per placeholder-shape signature.
 * The graph's variables (parameters) are bound by reference: updating them in place (as {@link Net}
 * does) is seen by the next run; replacing a variable's array object makes the plan rebuild itself.
 * Returned arrays belong to the plan and are overwritten by its next run.
 */
public final class GraphPlan {
  private static final Logger LOG = LoggerFactory.getLogger(GraphPlan.class);
  /**
   * System property: {@code false} leaves every normalisation layer to its ops in plans outside
   * checked mode (by default they run fused, see {@link NormRegions}).
   */
  public static final String FUSE_PROPERTY = "genpipe.fuse";
  /** System property: the profile ({@link #profileReport}) per op type and input shapes. */
  static final String PROFILE_SHAPES = "genpipe.profile.shapes";
  private static final Map<String, long[]> PROFILED = new java.util.concurrent.ConcurrentHashMap<>();
  private final List<Step> steps;
  private final Map<String, INDArray> placeholders;
  private final Map<String, INDArray> variables;
  private final Map<String, INDArray> outputs;
  private final Map<String, INDArray> gradients;
  private final Map<String, Integer> pausePoints = new java.util.HashMap<>();
  private final int views;

  /**
   * One op call on its arrays; {@code kernel} (may be null) runs it instead of ND4J's op (see
   * {@link OneDnnConvolutions}).
   */
  private record Step(DifferentialFunction op, OpContext context, Runnable kernel, INDArray[] in, INDArray[] out,
      String name) {
    Step(DifferentialFunction op, OpContext context, Runnable kernel, INDArray[] in, INDArray[] out) {
      this(op, context, kernel, in, out, op.opName());
    }

    /** A fused kernel standing for several recorded ops. */
    static Step fused(String name, Runnable kernel, INDArray[] in, INDArray[] out) {
      return new Step(null, null, kernel, in, out, name);
    }

    void run() {
      if (kernel != null) {
        kernel.run();
      } else if (op instanceof CustomOp c) {
        Nd4j.exec(c, context);
      } else {
        Nd4j.exec((Op) op, context);
      }
    }
  }

  private GraphPlan(List<Step> steps, Map<String, INDArray> placeholders, Map<String, INDArray> variables,
      Map<String, INDArray> outputs, Map<String, INDArray> gradients, int views) {
    this.steps = steps;
    this.views = views;
    this.placeholders = placeholders;
    this.variables = variables;
    this.outputs = outputs;
    this.gradients = gradients;
  }

  /**
   * Records one SameDiff run of {@code outputs} (and the gradients of {@code wrt}, if any) for these
   * placeholders and compiles it.
   */
  static GraphPlan record(SameDiff sd, Map<String, INDArray> ph, List<String> outputNames, List<String> wrt) {
    return record(sd, ph, outputNames, wrt, Map.of(), true);
  }

  /**
   * As {@link #record(SameDiff, Map, List, List)}, with the gradients of some of {@code wrt} written
   * straight into given arrays (of their shapes) where the op computing them can write there. With
   * {@code exact} false, ops that have a faster kernel agreeing with ND4J's to a few ulp run that
   * kernel ({@link OneDnnEltwise}); true keeps the plan bit-identical to SameDiff.
   */
  static GraphPlan record(SameDiff sd, Map<String, INDArray> ph, List<String> outputNames, List<String> wrt,
      Map<String, INDArray> gradientTargets, boolean exact) {
    Recorder rec = new Recorder(sd);
    List<Listener> before = new ArrayList<>(sd.getListeners());
    sd.setListeners(rec);

    try {
      if (wrt.isEmpty()) {
        sd.output(ph, outputNames);
      } else {
        sd.calculateGradientsAndOutputs(ph, outputNames, wrt);
      }
    } finally {
      sd.setListeners(before.toArray(new Listener[0]));
    }
    try {
      return rec.compile(ph, outputNames, wrt, gradientTargets, exact, true);
    } catch (FusionFailed e) {
      LOG.warn("compiling {} without fused normalisations: {}", outputNames, e.getMessage());
      return rec.compile(ph, outputNames, wrt, gradientTargets, exact, false);
    }
  }

  /** A fused kernel that could not be made for the arrays of a plan: the plan is compiled again without fusions. */
  private static final class FusionFailed extends RuntimeException {
    FusionFailed(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** Copies the placeholders in and runs every op; returns the plan's output and gradient arrays. */
  public OutAndGrad run(Map<String, INDArray> ph) {
    assign(ph, null, true);
    runSteps(0, steps.size());
    return new OutAndGrad(outputs, gradients);
  }

  /** Copies in the placeholders named in {@code names} ({@code in}) or all others ({@code !in}); all when null. */
  private void assign(Map<String, INDArray> ph, Set<String> names, boolean in) {
    for (Map.Entry<String, INDArray> e : placeholders.entrySet()) {
      if (names != null && names.contains(e.getKey()) != in) {
        continue;
      }
      INDArray given = ph.get(e.getKey());
      if (given == null) {
        throw new IllegalArgumentException("placeholder " + e.getKey() + " not given");
      }
      e.getValue().assign(given);
    }
  }

  private void runSteps(int from, int to) {
    if (Boolean.getBoolean("genpipe.profile")) {
      for (int i = from; i < to; i++) {
        long t0 = System.nanoTime();
        steps.get(i).run();
        String key = steps.get(i).name() + (steps.get(i).kernel() != null ? " (oneDNN)" : "");
        if (Boolean.getBoolean(PROFILE_SHAPES)) {
          StringBuilder shapes = new StringBuilder(" ");
          for (INDArray a : steps.get(i).in()) {
            shapes.append(a == null ? "-" : Arrays.toString(a.shape()));
          }
          key += shapes;
        }
        PROFILED.computeIfAbsent(key, k -> new long[2])[0] += System.nanoTime() - t0;
        PROFILED.get(key)[1]++;
      }
      return;
    }
    for (int i = from; i < to; i++) {
      try {
        steps.get(i).run();
      } catch (RuntimeException e) {
        throw new IllegalStateException("compiled plan step " + i + " (" + describe(steps.get(i)) + ") failed: " + e, e);
      }
    }
  }

  /** An op of a plan with its input and output shapes, for error messages. */
  private static String describe(Step step) {
    StringBuilder sb = new StringBuilder(step.name()).append(step.kernel() != null ? ", oneDNN" : "");
    for (String side : new String[] {"in", "out"}) {
      sb.append(", ").append(side);
      for (INDArray a : side.equals("in") ? step.in() : step.out()) {
        sb.append(' ').append(a == null ? "-" : Arrays.toString(a.shape()) + a.ordering() + Arrays.toString(a.stride()));
      }
    }
    return sb.toString();
  }

  /**
   * With {@code -Dgenpipe.profile=true}, the time spent per op type in compiled plans since the last
   * call, slowest first (per op type and input shapes, 80 rows, with {@value #PROFILE_SHAPES}=true;
   * a debugging aid for finding the expensive ops of a model's step); else empty.
   */
  public static String profileReport() {
    StringBuilder sb = new StringBuilder();
    long total = PROFILED.values().stream().mapToLong(v -> v[0]).sum();
    PROFILED.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0]))
        .limit(Boolean.getBoolean(PROFILE_SHAPES) ? 80 : 25)
        .forEach(e -> sb.append(String.format("%-40s %9.1f ms %6.1f%% %7d calls%n", e.getKey(), e.getValue()[0] / 1e6,
            100.0 * e.getValue()[0] / Math.max(1, total), e.getValue()[1])));
    PROFILED.clear();
    return sb.toString();
  }

  /**
   * Where a run can pause once output {@code name} is computed and wait for the placeholders
   * {@code deferred}: the index of the first op after the one computing {@code name}, or -1 when an
   * op before that point reads one of {@code deferred}.
   */
  int pausePoint(String name, Set<String> deferred) {
    INDArray target = outputs.get(name);
    if (target == null) {
      throw new IllegalArgumentException(name + " is not an output of the plan");
    }
    int last = -1;
    for (int i = 0; i < steps.size(); i++) {
      for (INDArray o : steps.get(i).out()) {
        last = o == target ? i : last;
      }
    }
    for (int i = 0; i <= last; i++) {
      for (INDArray a : steps.get(i).in()) {
        for (String d : deferred) {
          if (a == placeholders.get(d)) {
            return -1;
          }
        }
      }
    }
    return last + 1;
  }

  /** True while every variable the plan reads is still the array object it was compiled with. */
  boolean bound(SameDiff sd) {
    for (Map.Entry<String, INDArray> e : variables.entrySet()) {
      if (sd.getArrForVarName(e.getKey()) != e.getValue()) {
        return false;
      }
    }
    return true;
  }

  /** How many of the plan's ops run a kernel of this package instead of ND4J's op. */
  int kernels() {
    return (int) steps.stream().filter(s -> s.kernel() != null).count();
  }

  /** How many of the plan's {@code opName} ops run a kernel of this package. */
  int kernels(String opName) {
    return (int) steps.stream().filter(s -> s.kernel() != null && s.name().equals(opName)).count();
  }

  int size() {
    return steps.size();
  }

  /** How many recorded reshapes (and sums' backward ops) became views of their inputs instead of steps. */
  int views() {
    return views;
  }

  /** Listens to one SameDiff run and turns it into a plan. */
  private static final class Recorder extends BaseListener {
    private final SameDiff sd;
    private final List<Recorded> ops = new ArrayList<>();
    private Recorded pending;

    private record Recorded(DifferentialFunction op, List<String> inputs, List<INDArray> inputArrays,
        List<String> outputs, List<INDArray> outputArrays, long[] iArgs, double[] tArgs, boolean[] bArgs,
        DataType[] dArgs) {}

    Recorder(SameDiff sd) {
      this.sd = sd;
    }

    @Override
    public boolean isActive(Operation operation) {
      return true;
    }

    @Override
    public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext oc) {
      List<INDArray> arrays = oc == null ? List.of() : oc.getInputArrays();
      List<String> names = op.getInputsToOp() == null ? List.of() : op.getInputsToOp();
      if (arrays.size() != names.size()) {
        // SameDiff passes an op its inputs in the order of its input names; anything else is not
        // something a plan can replay
        throw new UnsupportedOperationException("op " + op.getName() + " (" + op.getOp().opName() + ") ran on "
            + arrays.size() + " arrays for " + names.size() + " inputs");
      }
      pending = new Recorded(op.getOp(), List.copyOf(names), List.copyOf(arrays), op.getOutputsOfOp(), null,
          oc == null ? new long[0] : oc.getIArguments().stream().mapToLong(Long::longValue).toArray(),
          oc == null ? new double[0] : oc.getTArguments().stream().mapToDouble(Double::doubleValue).toArray(),
          oc == null ? new boolean[0] : toBooleans(oc.getBArguments()),
          oc == null ? new DataType[0] : oc.getDArguments().toArray(new DataType[0]));
    }

    @Override
    public void opExecution(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, OpContext oc, INDArray[] out) {
      if (pending == null || pending.op() != op.getOp()) {
        throw new IllegalStateException("op " + op.getName() + " ran without being announced");
      }
      List<INDArray> outs = Arrays.asList(out);
      ops.add(new Recorded(pending.op(), pending.inputs(), pending.inputArrays(), pending.outputs(), outs,
          pending.iArgs(), pending.tArgs(), pending.bArgs(), pending.dArgs()));
      pending = null;
    }

    GraphPlan compile(Map<String, INDArray> ph, List<String> outputNames, List<String> wrt,
        Map<String, INDArray> gradientTargets, boolean exact, boolean fuse) {
      Map<String, INDArray> targets = new LinkedHashMap<>();
      for (Map.Entry<String, INDArray> e : gradientTargets.entrySet()) {
        targets.put(sd.getVariable(e.getKey()).getGradient().name(), e.getValue());
      }
      Map<String, INDArray> slots = new LinkedHashMap<>();
      Map<String, INDArray> phSlots = new LinkedHashMap<>();
      Map<String, INDArray> vars = new LinkedHashMap<>();
      for (Map.Entry<String, INDArray> e : ph.entrySet()) {
        INDArray a = Nd4j.createUninitialized(e.getValue().dataType(), e.getValue().shape(), 'c');
        phSlots.put(e.getKey(), a);
        slots.put(e.getKey(), a);
      }
      // what the run reads: later ops' inputs, the outputs and the gradients asked for
      Set<String> read = new HashSet<>(outputNames);
      for (String w : wrt) {
        read.add(sd.getVariable(w).getGradient().name());
      }
      for (Recorded r : ops) {
        read.addAll(r.inputs());
      }
      Set<String> kept = new HashSet<>(outputNames);
      for (String w : wrt) {
        kept.add(sd.getVariable(w).getGradient().name());
      }
      kept.addAll(targets.keySet());
      // the name whose buffer each name's array is, where an op runs in place or passes its input on
      Map<String, String> shared = new java.util.HashMap<>();
      List<List<String>> writes = inPlaceWrites(shared);
      Set<Recorded> views = aliases(kept, ph.keySet(), shared, writes);
      Fusions fusions = exact || !fuse || "false".equals(System.getProperty(FUSE_PROPERTY)) ? Fusions.NONE
          : fusions(kept, shared, writes);
      List<Step> steps = new ArrayList<>();
      int viewCount = 0;
      for (int index = 0; index < ops.size(); index++) {
        Recorded r = ops.get(index);
        NormRegions.Fusion fusion = fusions.forwardAt().get(index);
        if (fusion != null) {
          steps.add(fusedForward(fusion, fusions, slots, vars));
        }
        fusion = fusions.backwardAt().get(index);
        if (fusion != null) {
          steps.add(fusedBackward(fusion, fusions, slots, vars, targets));
        }
        if (fusions.replaced().contains(index)) {
          continue;
        }
        ActivationBackward activation = fusions.activationAt().get(index);
        if (activation != null) {
          Recorded derivative = ops.get(activation.derivative());
          INDArray x = resolve(derivative.inputs().get(0), derivative.inputArrays().get(0), slots, vars);
          int g = 1 - activation.operand();
          INDArray grad = resolve(r.inputs().get(g), r.inputArrays().get(g), slots, vars);
          INDArray out = outputArray(r, 0, targets);
          slots.put(r.outputs().get(0), out);
          String name = activation.algorithm() == dnnl.algorithm.eltwise_relu ? "relu_bp" : "swish_bp";
          steps.add(Step.fused(name, OneDnnEltwise.backward(activation.algorithm(), x, grad, out),
              new INDArray[] {x, grad}, new INDArray[] {out}));
          continue;
        }
        INDArray[] in = new INDArray[r.inputs().size()];
        for (int i = 0; i < in.length; i++) {
          in[i] = resolve(r.inputs().get(i), r.inputArrays().get(i), slots, vars);
        }
        if (views.contains(r) && r.op().opName().equals("add_bp") && plainC(in[2])) {
          // both gradients of a sum are its output's gradient: the same array instead of two copies
          slots.put(r.outputs().get(0), in[2]);
          slots.put(r.outputs().get(1), in[2]);
          viewCount++;
          continue;
        }
        if (views.contains(r) && r.op().opName().equals("reshape") && plainC(in[0])) {
          // a view of its input instead of a copy (see aliases)
          slots.put(r.outputs().get(0), in[0].reshape('c', r.outputArrays().get(0).shape()));
          viewCount++;
          continue;
        }
        INDArray[] out = new INDArray[r.outputArrays().size()];
        for (int i = 0; i < out.length; i++) {
          INDArray rec = r.outputArrays().get(i);
          INDArray alias = null;
          for (int j = 0; j < in.length; j++) {
            if (r.inputArrays().get(j) == rec) {
              alias = in[j]; // SameDiff ran the op in place (or passed the input on, as Identity)
            }
          }
          out[i] = alias != null ? alias : outputArray(r, i, targets);
          slots.put(r.outputs().get(i), out[i]);
        }
        if (r.op() instanceof Identity) {
          continue; // SameDiff passes the input array on as the output: aliased above
        }
        OpContext ctx = Nd4j.getExecutioner().buildContext();
        ctx.setInputArrays(in);
        ctx.setOutputArrays(out);
        if (r.iArgs().length > 0) {
          ctx.setIArguments(r.iArgs());
        }
        if (r.tArgs().length > 0) {
          ctx.setTArguments(r.tArgs());
        }
        if (r.bArgs().length > 0) {
          ctx.setBArguments(r.bArgs());
        }
        if (r.dArgs().length > 0) {
          ctx.setDArguments(r.dArgs());
        }
        boolean firstOutputRead = !r.outputs().isEmpty() && read.contains(r.outputs().get(0));
        steps.add(new Step(r.op(), ctx, opKernel(r, in, out, firstOutputRead, exact), in, out));
      }
      Map<String, INDArray> outs = new LinkedHashMap<>();
      for (String o : outputNames) {
        outs.put(o, require(slots, o));
      }
      Map<String, INDArray> grads = new LinkedHashMap<>();
      for (String w : wrt) {
        grads.put(w, require(slots, sd.getVariable(w).getGradient().name()));
      }
      return new GraphPlan(steps, phSlots, vars, outs, grads, viewCount);
    }

    /**
     * The kernel of this package that runs {@code r} on these arrays instead of ND4J's op, or null.
     * Checked ({@code exact}) plans take only the convolutions, whose results are ND4J's bit for bit.
     */
    private static Runnable opKernel(Recorded r, INDArray[] in, INDArray[] out, boolean firstOutputRead,
        boolean exact) {
      String name = r.op().opName();
      Runnable k = OneDnnConvolutions.kernel(name, in, out, r.iArgs(), firstOutputRead, exact);
      if (k != null || exact) {
        return k;
      }
      k = OneDnnEltwise.kernel(name, in, out);
      k = k != null ? k : OneDnnMatmul.kernel(name, in, out, r.iArgs(), r.tArgs());
      k = k != null ? k : OneDnnLayerNorm.kernel(name, in, out, r.iArgs(), r.bArgs());
      k = k != null ? k : OneDnnReduction.kernel(name, in, out);
      k = k != null ? k : OneDnnSoftmax.kernel(name, in, out, r.iArgs());
      return k != null ? k : OneDnnResampling.kernel(name, in, out, r.iArgs());
    }

    /** A new array for output {@code i} of {@code r}, or the gradient target it is written into. */
    private static INDArray outputArray(Recorded r, int i, Map<String, INDArray> targets) {
      INDArray rec = r.outputArrays().get(i);
      INDArray target = targets.get(r.outputs().get(i));
      if (target != null && target.dataType() == rec.dataType() && Arrays.equals(target.shape(), rec.shape())) {
        return target; // a gradient written where its network keeps it
      }
      return Nd4j.create(rec.dataType(), rec.shape(), rec.ordering());
    }

    /** The array of {@code name} in the plan: computed, a placeholder, or a parameter or constant bound by reference. */
    private INDArray resolve(String name, INDArray recorded, Map<String, INDArray> slots, Map<String, INDArray> vars) {
      INDArray a = slots.get(name);
      if (a != null) {
        return a;
      }
      SDVariable v = sd.getVariable(name);
      if (v != null && v.getVariableType() == VariableType.PLACEHOLDER) {
        throw new IllegalStateException("the plan reads placeholder " + name + ", not given");
      }
      if (v != null && v.getVariableType() != VariableType.ARRAY) {
        a = v.getArr(); // a parameter or constant: bound by reference
        if (v.getVariableType() == VariableType.VARIABLE) {
          vars.put(name, a);
        }
      } else if (recorded != null) {
        a = recorded.dup(); // a value SameDiff seeds itself (the loss gradient's ones)
      } else {
        throw new IllegalStateException("the recorded run did not compute " + name);
      }
      slots.put(name, a);
      return a;
    }

    /** The normalisation regions fused in this plan: where their kernels run, and the ops they replace. */
    private record Fusions(Map<Integer, NormRegions.Fusion> forwardAt, Map<Integer, NormRegions.Fusion> backwardAt,
        Map<Integer, ActivationBackward> activationAt, Set<Integer> replaced, Map<String, INDArray> recorded,
        Map<NormRegions.Fusion, OneDnnNorm> kernels) {
      static final Fusions NONE = new Fusions(Map.of(), Map.of(), Map.of(), Set.of(), Map.of(), Map.of());
    }

    /**
     * An activation's backward as SameDiff writes it, the derivative (the op at {@code derivative}:
     * SiLU's {@code _swishderivative(x)}, ReLU's {@code step(x, 0)}) times the incoming gradient
     * (operand {@code 1 - operand} of the multiply), as one kernel running oneDNN's {@code algorithm}.
     */
    private record ActivationBackward(int derivative, int operand, dnnl.algorithm algorithm) {}

    /**
     * The registered normalisation layers ({@link NormRegions}) that this run can compute as fused
     * kernels: located in the recorded ops, on float c-order arrays, their input not written by a
     * later op (the backward kernel reads it again).
     */
    private Fusions fusions(Set<String> kept, Map<String, String> shared, List<List<String>> writes) {
      if (!OneDnn.available()) {
        return Fusions.NONE;
      }
      List<NormRegions.Op> names = new ArrayList<>();
      Map<String, INDArray> recorded = new java.util.HashMap<>();
      Map<String, long[]> shapes = new java.util.HashMap<>();
      for (Recorded r : ops) {
        names.add(new NormRegions.Op(r.op().opName(), r.inputs(), r.outputs()));
        for (int i = 0; i < r.inputs().size(); i++) {
          recorded.putIfAbsent(r.inputs().get(i), r.inputArrays().get(i));
        }
        for (int i = 0; i < r.outputs().size(); i++) {
          recorded.put(r.outputs().get(i), r.outputArrays().get(i));
        }
      }
      recorded.forEach((k, v) -> shapes.put(k, v.shape()));
      Map<Integer, NormRegions.Fusion> forwardAt = new java.util.HashMap<>();
      Map<Integer, NormRegions.Fusion> backwardAt = new java.util.HashMap<>();
      Set<Integer> replaced = new HashSet<>();
      for (NormRegions.Fusion f : NormRegions.find(sd, names, kept, shapes)) {
        INDArray x = recorded.get(f.region().x());
        INDArray y = recorded.get(f.region().y());
        INDArray dy = f.gradY() == null ? null : recorded.get(f.gradY());
        boolean inputWritten = writtenAfter(f.forwardAt() - 1, buffer(shared, f.region().x()), List.of(), writes,
            shared);
        if (x == null || y == null || !floatC(x) || !floatC(y) || !Arrays.equals(x.shape(), y.shape())
            || (f.backwardAt() >= 0 && (dy == null || !floatC(dy) || !Arrays.equals(dy.shape(), x.shape())))
            || inputWritten || !Collections.disjoint(replaced, f.replaced())) {
          continue;
        }
        forwardAt.put(f.forwardAt(), f);
        if (f.backwardAt() >= 0) {
          backwardAt.put(f.backwardAt(), f);
        }
        replaced.addAll(f.replaced());
      }
      return new Fusions(forwardAt, backwardAt, activationBackwards(kept, shared, writes, replaced), replaced, recorded,
          new java.util.HashMap<>());
    }

    /**
     * The multiplies (by index) that take an activation's derivative (see {@link ActivationBackward}),
     * computed by an op whose result nothing else reads, times the incoming gradient, all of one
     * shape: those become one oneDNN kernel ({@link OneDnnEltwise#backward}) and the derivative's op
     * is added to {@code replaced}.
     */
    private Map<Integer, ActivationBackward> activationBackwards(Set<String> kept, Map<String, String> shared,
        List<List<String>> writes, Set<Integer> replaced) {
      Map<String, Integer> readers = new java.util.HashMap<>();
      Map<String, Integer> producer = new java.util.HashMap<>();
      for (int i = 0; i < ops.size(); i++) {
        for (String in : ops.get(i).inputs()) {
          readers.merge(in, 1, Integer::sum);
        }
        for (String out : ops.get(i).outputs()) {
          producer.put(out, i);
        }
      }
      Map<Integer, ActivationBackward> found = new java.util.HashMap<>();
      for (int j = 0; j < ops.size(); j++) {
        Recorded m = ops.get(j);
        if (!m.op().opName().equals("multiply") || m.inputs().size() != 2 || m.outputArrays().size() != 1) {
          continue;
        }
        for (int operand = 0; operand < 2; operand++) {
          String d = m.inputs().get(operand);
          Integer i = producer.get(d);
          if (i == null || replaced.contains(i) || kept.contains(d) || readers.getOrDefault(d, 0) != 1) {
            continue;
          }
          Recorded derivative = ops.get(i);
          dnnl.algorithm algorithm = activation(derivative);
          if (algorithm == null || derivative.inputArrays().size() != 1) {
            continue;
          }
          INDArray x = derivative.inputArrays().get(0);
          INDArray out = m.outputArrays().get(0);
          boolean sameShapes = Arrays.equals(x.shape(), m.inputArrays().get(0).shape())
              && Arrays.equals(x.shape(), m.inputArrays().get(1).shape()) && Arrays.equals(x.shape(), out.shape());
          boolean inPlace = m.inputArrays().get(0) == out || m.inputArrays().get(1) == out;
          if (sameShapes && !inPlace && floatC(x) && floatC(m.inputArrays().get(1 - operand)) && floatC(out)
              && !writtenAfter(i, buffer(shared, derivative.inputs().get(0)), List.of(), writes, shared)) {
            found.put(j, new ActivationBackward(i, operand, algorithm));
            replaced.add(i);
            break;
          }
        }
      }
      return found;
    }

    /** The activation whose derivative {@code r} computes: SiLU's, ReLU's (a step at 0), or null. */
    private static dnnl.algorithm activation(Recorded r) {
      if (r.op().opName().equals("_swishderivative")) {
        return dnnl.algorithm.eltwise_swish;
      }
      if (r.op() instanceof org.nd4j.linalg.api.ops.impl.scalar.Step step && step.scalar() != null
          && step.scalar().getDouble(0) == 0.0) {
        return dnnl.algorithm.eltwise_relu;
      }
      return null;
    }

    private static boolean floatC(INDArray a) {
      return a.dataType() == DataType.FLOAT && plainC(a);
    }

    /** The fused forward kernel of a region: its input, scale and shift in, its output (and batch statistics) out. */
    private Step fusedForward(NormRegions.Fusion f, Fusions fusions, Map<String, INDArray> slots,
        Map<String, INDArray> vars) {
      NormRegions.Region region = f.region();
      INDArray x = resolve(region.x(), null, slots, vars);
      INDArray gamma = region.gamma() == null ? null : resolve(region.gamma(), null, slots, vars);
      INDArray beta = region.beta() == null ? null : resolve(region.beta(), null, slots, vars);
      INDArray y = fresh(region.y(), fusions, slots);
      INDArray mean = region.mean() == null ? null : fresh(region.mean(), fusions, slots);
      INDArray var = region.var() == null ? null : fresh(region.var(), fusions, slots);
      OneDnnNorm norm;
      try {
        norm = OneDnnNorm.forward(region, x, gamma, beta, y, mean, var, f.backwardAt() >= 0);
      } catch (RuntimeException e) {
        throw new FusionFailed("the normalisation computing " + region.y() + " cannot run fused: " + e.getMessage(), e);
      }
      fusions.kernels().put(f, norm);
      List<INDArray> in = new ArrayList<>(Arrays.asList(x, gamma, beta));
      List<INDArray> out = new ArrayList<>(Arrays.asList(y, mean, var));
      in.removeIf(java.util.Objects::isNull);
      out.removeIf(java.util.Objects::isNull);
      return Step.fused(kind(region), norm::runForward, in.toArray(new INDArray[0]), out.toArray(new INDArray[0]));
    }

    /** The fused backward kernel of a region: the gradients of its input, scale and shift that the run uses. */
    private Step fusedBackward(NormRegions.Fusion f, Fusions fusions, Map<String, INDArray> slots,
        Map<String, INDArray> vars, Map<String, INDArray> targets) {
      NormRegions.Region region = f.region();
      INDArray dy = resolve(f.gradY(), null, slots, vars);
      List<String> names = new ArrayList<>(f.dx());
      names.add(f.dgamma());
      names.add(f.dbeta());
      INDArray[] grads = new INDArray[names.size()];
      for (int i = 0; i < names.size(); i++) {
        String name = names.get(i);
        if (name != null) {
          INDArray target = targets.get(name);
          INDArray rec = fusions.recorded().get(name);
          grads[i] = target != null && Arrays.equals(target.shape(), rec.shape()) ? target : fresh(name, fusions, slots);
          slots.put(name, grads[i]);
        }
      }
      int parts = f.dx().size();
      Runnable norm;
      try {
        norm = fusions.kernels().get(f).backward(dy, parts > 0 ? grads[0] : null, grads[parts], grads[parts + 1]);
      } catch (RuntimeException e) {
        throw new FusionFailed("the backward of the normalisation computing " + region.y() + " cannot run fused: "
            + e.getMessage(), e);
      }
      INDArray[] zeroed = Arrays.copyOfRange(grads, Math.min(1, parts), parts);
      Runnable kernel = zeroed.length == 0 ? norm : () -> {
        norm.run();
        for (INDArray z : zeroed) {
          z.assign(0);
        }
      };
      List<INDArray> in = new ArrayList<>(Arrays.asList(slots.get(region.x()), dy,
          region.gamma() == null ? null : slots.get(region.gamma())));
      List<INDArray> out = new ArrayList<>(Arrays.asList(grads));
      in.removeIf(java.util.Objects::isNull);
      out.removeIf(java.util.Objects::isNull);
      return Step.fused(kind(region) + "_bp", kernel, in.toArray(new INDArray[0]), out.toArray(new INDArray[0]));
    }

    private static String kind(NormRegions.Region region) {
      return region.batch() ? "batch_norm" : region.groups() == NormRegions.PER_CHANNEL ? "instance_norm" : "group_norm";
    }

    /** A new c-order array of the recorded shape for {@code name}, as its slot. */
    private static INDArray fresh(String name, Fusions fusions, Map<String, INDArray> slots) {
      INDArray rec = fusions.recorded().get(name);
      INDArray a = Nd4j.create(rec.dataType(), rec.shape(), 'c');
      slots.put(name, a);
      return a;
    }

    /**
     * The reshapes whose output can be a view of their input instead of a copy (ND4J's op copies:
     * ~0.1 ms each, ~290 of them in a DDPM training step), and the sums' backward ops whose two
     * gradients can be their input's array ({@link #sumGradients}; ~75 copies of activation-sized
     * arrays per DDPM step). Results stay bit-identical as long as
     * nothing writes into the input or the output while the other is still needed: a reshape is
     * taken only if its input and output are plain c-order arrays of one type and no later op writes
     * into an array sharing its buffer (in place, through earlier views or ops that pass their input
     * on); and not when its output is a result of the plan or a gradient written into the network's
     * arrays, or its input a placeholder (which a paused run fills later, see {@link #pausePoint}).
     *
     * <p>Which buffers ops share is decided by names and each op's own record, not by the identity
     * of SameDiff's arrays across ops: SameDiff's inference runs hand a released array to a later
     * op, which the plan gives an array of its own.
     */
    private Set<Recorded> aliases(Set<String> kept, Set<String> placeholderNames, Map<String, String> shared,
        List<List<String>> writes) {
      Map<String, String> root = new java.util.HashMap<>(shared);
      Set<Recorded> views = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
      for (int k = 0; k < ops.size(); k++) {
        Recorded r = ops.get(k);
        if (sumGradients(r, kept, placeholderNames)) {
          String base = buffer(root, r.inputs().get(2));
          if (!writtenAfter(k, base, r.outputs(), writes, root)) {
            views.add(r);
            root.put(r.outputs().get(0), base);
            root.put(r.outputs().get(1), base);
          }
          continue;
        }
        if (!r.op().opName().equals("reshape") || r.inputArrays().isEmpty() || r.outputArrays().size() != 1
            || kept.contains(r.outputs().get(0)) || placeholderNames.contains(r.inputs().get(0))) {
          continue;
        }
        INDArray a = r.inputArrays().get(0);
        INDArray o = r.outputArrays().get(0);
        if (a == o || !plainC(a) || !plainC(o) || a.dataType() != o.dataType() || a.length() != o.length()) {
          continue;
        }
        String base = buffer(root, r.inputs().get(0));
        if (!writtenAfter(k, base, r.outputs(), writes, root)) {
          views.add(r);
          root.put(r.outputs().get(0), base);
        }
      }
      return views;
    }

    /** Whether an op after op {@code k} writes into buffer {@code base} or into one of {@code names}. */
    private boolean writtenAfter(int k, String base, List<String> names, List<List<String>> writes,
        Map<String, String> root) {
      for (int j = k + 1; j < ops.size(); j++) {
        for (String w : writes.get(j)) {
          if (buffer(root, w).equals(base) || names.contains(w)) {
            return true;
          }
        }
      }
      return false;
    }

    /**
     * Whether {@code r} is the backward op of a sum of two arrays of one shape ({@code add_bp} of x,
     * y and the sum's gradient), whose two gradients are copies of its input: the plan can hand on
     * that array itself, unless a gradient is a result of the plan or written into the network's
     * arrays, or the input a placeholder.
     */
    private static boolean sumGradients(Recorded r, Set<String> kept, Set<String> placeholderNames) {
      if (!r.op().opName().equals("add_bp") || r.inputArrays().size() != 3 || r.outputArrays().size() != 2
          || placeholderNames.contains(r.inputs().get(2)) || kept.contains(r.outputs().get(0))
          || kept.contains(r.outputs().get(1)) || r.outputs().get(0).equals(r.outputs().get(1))) {
        return false;
      }
      INDArray eps = r.inputArrays().get(2);
      for (INDArray a : List.of(r.inputArrays().get(0), r.inputArrays().get(1), r.outputArrays().get(0),
          r.outputArrays().get(1))) {
        if (a == eps || !plainC(a) || !plainC(eps) || a.dataType() != eps.dataType()
            || !Arrays.equals(a.shape(), eps.shape())) {
          return false;
        }
      }
      return true;
    }

    /**
     * Per op, the buffers (named by the name owning them) it writes into that it read: its in-place
     * outputs; fills {@code shared} with the buffer of each name whose array is another's (an op run
     * in place, or one that passes its input on).
     */
    private List<List<String>> inPlaceWrites(Map<String, String> shared) {
      List<List<String>> writes = new ArrayList<>();
      for (Recorded r : ops) {
        List<String> into = new ArrayList<>();
        for (int o = 0; o < r.outputArrays().size(); o++) {
          for (int i = 0; i < r.inputArrays().size(); i++) {
            if (r.inputArrays().get(i) == r.outputArrays().get(o)) {
              String buffer = shared.getOrDefault(r.inputs().get(i), r.inputs().get(i));
              shared.put(r.outputs().get(o), buffer);
              if (!(r.op() instanceof Identity)) {
                into.add(buffer);
              }
            }
          }
        }
        writes.add(into);
      }
      return writes;
    }

    /** The name that owns the buffer of {@code name}'s array, following views and shared arrays. */
    private static String buffer(Map<String, String> root, String name) {
      String b = name;
      for (String next = root.get(b); next != null && !next.equals(b); next = root.get(b)) {
        b = next;
      }
      return b;
    }

    private static boolean plainC(INDArray a) {
      return a.ordering() == 'c' && !a.isEmpty() && org.nd4j.linalg.api.shape.Shape.hasDefaultStridesForShape(a);
    }

    private static INDArray require(Map<String, INDArray> slots, String name) {
      INDArray a = slots.get(name);
      if (a == null) {
        throw new IllegalStateException("the recorded run did not compute " + name);
      }
      return a;
    }

    private static boolean[] toBooleans(List<Boolean> list) {
      boolean[] out = new boolean[list.size()];
      for (int i = 0; i < out.length; i++) {
        out[i] = list.get(i);
      }
      return out;
    }
  }

  /**
   * One computation of a graph (its outputs and the gradients of some variables), compiled per
   * placeholder-shape signature on first use.
   */
  public static final class Compiled {
    /**
     * System property choosing how computations run: {@code compiled} (default), {@code interpreted}
     * (SameDiff's own executor, to rule the plans out when debugging), or {@code checked} (both,
     * failing on the first output or gradient that is not bit-identical).
     */
    public static final String MODE_PROPERTY = "genpipe.graphs";
    /** Plans (placeholder-shape signatures) one computation keeps. */
    static final int KEPT_PLANS = 4;
    private final SameDiff sd;
    private final List<String> outputs;
    private final List<String> wrt;
    private final Map<String, INDArray> gradientTargets;
    /**
     * The plans of the most recently used placeholder shapes, at most {@link #KEPT_PLANS}: a plan holds
     * every intermediate array of its shapes, so a computation run at many batch sizes (sampling for
     * grids, evaluation batches, remainders) must not keep one per size forever.
     */
    private final Map<String, GraphPlan> plans = new LinkedHashMap<>(16, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<String, GraphPlan> eldest) {
        return size() > KEPT_PLANS;
      }
    };
    private GraphPlan last;
    private boolean unsupported;

    public Compiled(SameDiff sd, List<String> outputs, List<String> wrt) {
      this(sd, outputs, wrt, Map.of());
    }

    /**
     * The outputs and the gradients of {@code net}'s parameters, written straight into the
     * network's gradient arrays, so that {@link Net#apply} does not copy them.
     */
    public Compiled(SameDiff sd, List<String> outputs, Net net) {
      this(sd, outputs, net.params(), net.gradientTargets());
    }

    private Compiled(SameDiff sd, List<String> outputs, List<String> wrt, Map<String, INDArray> gradientTargets) {
      this.sd = sd;
      this.outputs = List.copyOf(outputs);
      this.wrt = List.copyOf(wrt);
      this.gradientTargets = gradientTargets;
    }

    /** Like {@link SameDiff#calculateGradientsAndOutputs}; the arrays are overwritten by the next run. */
    public OutAndGrad run(Map<String, INDArray> ph) {
      String mode = System.getProperty(MODE_PROPERTY, "compiled");
      if (mode.equals("interpreted") || unsupported) {
        return interpreted(ph);
      }
      if (mode.equals("checked")) {
        OutAndGrad reference = interpreted(ph);
        OutAndGrad compiled = compiled(ph);
        compare("output", reference.getOutputs(), compiled.getOutputs());
        compare("gradient of", reference.getGradients(), compiled.getGradients());
        return compiled;
      }
      return compiled(ph);
    }

    /**
     * A run in two parts, for a computation whose output {@code output} does not depend on the
     * placeholders {@code deferred} while the rest does (a GAN generator's image, computed before
     * the discriminator's update, whose new weights its own update then reads): {@link Started#output}
     * runs the ops up to {@code output} with {@code ph}, {@link Started#finish} the rest with the
     * deferred placeholders' new values. The values of {@code deferred} in {@code ph} serve only to
     * compile the plan. When the graph's order does not allow the split, the whole computation runs
     * twice (as two separate runs would).
     */
    public Started start(Map<String, INDArray> ph, String output, Set<String> deferred) {
      return new Started(ph, output, deferred);
    }

    /** A run started by {@link #start}. */
    public final class Started {
      private final Map<String, INDArray> ph;
      private final Set<String> deferred;
      private final String mode = System.getProperty(MODE_PROPERTY, "compiled");
      private final GraphPlan plan;
      private final int pause;
      private final INDArray output;

      private Started(Map<String, INDArray> ph, String name, Set<String> deferred) {
        this.ph = ph;
        this.deferred = deferred;
        if (!outputs.contains(name)) {
          throw new IllegalArgumentException(name + " is not one of the outputs " + outputs);
        }
        boolean interpretedOnly = mode.equals("interpreted") || unsupported;
        plan = interpretedOnly ? null : compiledPlan(ph);
        pause = plan == null ? -1 : plan.pausePoints.computeIfAbsent(name + deferred, k -> plan.pausePoint(name, deferred));
        if (plan == null) {
          output = sd.output(ph, List.of(name)).get(name);
        } else if (pause < 0) {
          output = plan.run(ph).getOutputs().get(name).dup();
        } else {
          plan.assign(ph, deferred, false);
          plan.runSteps(0, pause);
          output = plan.outputs.get(name);
          if (mode.equals("checked")) {
            compare("output", Map.of(name, sd.output(ph, List.of(name)).get(name)), Map.of(name, output));
          }
        }
      }

      /** Whether the compiled plan pauses (false: it runs whole twice, or SameDiff runs it). */
      boolean pauses() {
        return pause >= 0;
      }

      /** The output computed before the pause; belongs to the plan. */
      public INDArray output() {
        return output;
      }

      /** The rest of the run with the deferred placeholders' values now: all outputs and gradients. */
      public OutAndGrad finish(Map<String, INDArray> deferredValues) {
        Map<String, INDArray> all = new LinkedHashMap<>(ph);
        all.putAll(deferredValues);
        if (plan == null) {
          return interpreted(all);
        }
        OutAndGrad result;
        if (pause < 0) {
          result = plan.run(all);
        } else {
          plan.assign(deferredValues, deferred, true);
          plan.runSteps(pause, plan.steps.size());
          result = new OutAndGrad(plan.outputs, plan.gradients);
        }
        last = plan;
        if (mode.equals("checked")) {
          OutAndGrad reference = interpreted(all);
          compare("output", reference.getOutputs(), result.getOutputs());
          compare("gradient of", reference.getGradients(), result.getGradients());
        }
        return result;
      }
    }

    /** SameDiff's own execution of the same computation. */
    public OutAndGrad interpreted(Map<String, INDArray> ph) {
      return wrt.isEmpty() ? new OutAndGrad(sd.output(ph, outputs), Map.of())
          : sd.calculateGradientsAndOutputs(ph, outputs, wrt);
    }

    static void compare(String what, Map<String, INDArray> expected, Map<String, INDArray> actual) {
      for (Map.Entry<String, INDArray> e : expected.entrySet()) {
        INDArray a = actual.get(e.getKey());
        if (a == null || !a.equalShapes(e.getValue()) || !Arrays.equals(values(a), values(e.getValue()))) {
          double diff = a == null || !a.equalShapes(e.getValue()) ? Double.NaN
              : a.sub(e.getValue()).amaxNumber().doubleValue();
          throw new IllegalStateException("compiled plan differs from SameDiff: " + what + " " + e.getKey()
              + " (max abs difference " + diff + ")");
        }
      }
    }

    private static double[] values(INDArray a) {
      return a.castTo(DataType.DOUBLE).dup('c').data().asDouble();
    }

    private OutAndGrad compiled(Map<String, INDArray> ph) {
      GraphPlan plan = compiledPlan(ph);
      if (plan == null) {
        return interpreted(ph);
      }
      last = plan;
      return plan.run(ph);
    }

    /** The plan for these placeholders' shapes, recorded on first use; null when it cannot be compiled. */
    private GraphPlan compiledPlan(Map<String, INDArray> ph) {
      StringBuilder key = new StringBuilder();
      for (Map.Entry<String, INDArray> e : new java.util.TreeMap<>(ph).entrySet()) {
        key.append(e.getKey()).append(Arrays.toString(e.getValue().shape())).append(e.getValue().dataType()).append(';');
      }
      // checked mode compares plans with SameDiff bit for bit: its plans keep ND4J's approximated ops
      boolean exact = System.getProperty(MODE_PROPERTY, "compiled").equals("checked");
      String k = key.append(exact ? "exact" : "").toString();
      GraphPlan plan = plans.get(k);
      if (plan == null || !plan.bound(sd)) {
        try {
          plan = record(sd, ph, outputs, wrt, gradientTargets, exact);
        } catch (UnsupportedOperationException e) {
          LOG.warn("running {} with SameDiff's executor: {}", outputs, e.getMessage());
          unsupported = true;
          return null;
        }
        plans.put(k, plan);
      }
      return plan;
    }

    /** How many plans are kept now. */
    int keptPlans() {
      return plans.size();
    }

    /** The plan of the last run. */
    GraphPlan last() {
      return last;
    }
  }
}
