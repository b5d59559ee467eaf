package org.genpipe.models.nn;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;

/**
 * The normalisation layers of a graph ({@link Layers#batchNorm}, {@link Layers#groupNorm},
 * {@link Layers#instanceNorm}) as regions a compiled plan can run as one fused kernel each
 * ({@link OneDnnNorm}) instead of the ~13 ops forward and ~25 backward each is written from.
 *
 * <p>A layer registers its region when it builds it: the input, the output, scale and shift, the
 * batch statistics it exposes, and the names of every variable made in between (the region's
 * inside). When a plan is compiled, {@link #find} locates the region's ops in the recorded run: the
 * forward ops are those computing the inside and the outputs; the backward ops are those that, from
 * the gradient of the output, compute only from the inside, the gradient's descendants, the input,
 * scale and shift. What leaves the backward ops must be the gradients of the input, the scale and
 * the shift and nothing else, and nothing outside may read the inside; any other shape of graph
 * leaves the region to its ops, so a region is fused only when the fused kernel computes exactly
 * what the ops would.
 */
final class NormRegions {
  /** {@link Region#groups} of instance norm: one group per channel. */
  static final int PER_CHANNEL = -1;
  /**
   * The regions of each graph, by the graph's identity (SameDiff's hashCode follows its contents) and
   * held weakly: a graph no longer used takes its regions with it.
   */
  private static final List<Registered> REGISTERED = new ArrayList<>();
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(NormRegions.class);

  private record Registered(WeakReference<SameDiff> graph, List<Region> regions) {}

  private NormRegions() {}

  /**
   * One normalisation layer of a graph.
   *
   * @param groups 0 for batch norm (statistics per channel over the batch and the positions), else
   *     the groups of group norm (statistics per example and group), {@link #PER_CHANNEL} for
   *     instance norm
   * @param gamma the per-channel scale, or null (instance norm)
   * @param mean the batch mean the layer exposes as an output, or null
   */
  record Region(int groups, String x, String y, String gamma, String beta, String mean, String var,
      Set<String> inside) {
    boolean batch() {
      return groups == 0;
    }
  }

  /** Names of variables a layer is about to make: call before building it, then {@link #register}. */
  static Set<String> names(SameDiff sd) {
    return new HashSet<>(sd.variableMap().keySet());
  }

  /** Registers a layer built since {@code before} (see {@link #names}). */
  static void register(SameDiff sd, Set<String> before, int groups, SDVariable x, SDVariable y, SDVariable gamma,
      SDVariable beta, SDVariable mean, SDVariable var) {
    Set<String> inside = names(sd);
    inside.removeAll(before);
    for (SDVariable v : new SDVariable[] {x, y, gamma, beta, mean, var}) {
      if (v != null) {
        inside.remove(v.name());
      }
    }
    Region region = new Region(groups, x.name(), y.name(), name(gamma), name(beta), name(mean), name(var),
        Set.copyOf(inside));
    synchronized (REGISTERED) {
      List<Region> regions = regions(sd);
      if (regions.isEmpty()) {
        REGISTERED.add(new Registered(new WeakReference<>(sd), regions));
      }
      regions.add(region);
    }
  }

  /** The regions registered for {@code sd} (a new list when none); drops the entries of collected graphs. */
  private static List<Region> regions(SameDiff sd) {
    synchronized (REGISTERED) {
      REGISTERED.removeIf(e -> e.graph().get() == null);
      for (Registered e : REGISTERED) {
        if (e.graph().get() == sd) {
          return e.regions();
        }
      }
      return new ArrayList<>();
    }
  }

  private static String name(SDVariable v) {
    return v == null ? null : v.name();
  }

  /** One recorded op: its name, input and output names, in the plan's order. */
  record Op(String name, List<String> inputs, List<String> outputs) {
    /** Whether it adds its inputs up (how SameDiff sums a variable's gradient from its several uses). */
    boolean sums() {
      return name.equals("add") || name.startsWith("merge") || name.equals("addn");
    }
  }

  /**
   * A region located in a recorded run: where the fused forward and backward kernels run (the index
   * of the op they replace; backward -1 when the run does not differentiate it), the ops they
   * replace, and the names the backward kernel writes (null where the run does not need them). The
   * input's gradient may leave the ops in several parts that are summed outside ({@code dx}): the
   * kernel writes the whole gradient into the first and zeros into the others.
   */
  record Fusion(Region region, int forwardAt, int backwardAt, Set<Integer> replaced, String gradY, List<String> dx,
      String dgamma, String dbeta) {}

  /**
   * The registered regions of {@code sd} that can be fused in this recorded run; {@code kept} are
   * the names the plan returns, {@code shapes} the recorded arrays' shapes by name.
   */
  static List<Fusion> find(SameDiff sd, List<Op> ops, Set<String> kept, Map<String, long[]> shapes) {
    List<Region> regions;
    synchronized (REGISTERED) {
      regions = List.copyOf(regions(sd));
    }
    List<Fusion> out = new ArrayList<>();
    for (Region r : regions) {
      Fusion f = locate(sd, r, ops, kept, shapes);
      if (f != null) {
        out.add(f);
      }
    }
    return out;
  }

  private static Fusion locate(SameDiff sd, Region r, List<Op> ops, Set<String> kept, Map<String, long[]> shapes) {
    Set<String> outputs = new HashSet<>();
    for (String o : new String[] {r.y(), r.mean(), r.var()}) {
      if (o != null) {
        outputs.add(o);
      }
    }
    Set<String> params = new HashSet<>();
    for (String p : new String[] {r.x(), r.gamma(), r.beta()}) {
      if (p != null) {
        params.add(p);
      }
    }
    if (!Collections.disjoint(r.inside(), kept)) {
      return reject(r, "the plan returns a value inside it");
    }
    // forward: the ops computing the inside and the outputs, from the input, scale, shift and constants
    Set<Integer> replaced = new HashSet<>();
    Set<String> computed = new HashSet<>();
    int forwardAt = -1;
    for (int i = 0; i < ops.size(); i++) {
      Op op = ops.get(i);
      boolean mine = !op.outputs().isEmpty();
      for (String o : op.outputs()) {
        mine &= r.inside().contains(o) || outputs.contains(o);
      }
      if (!mine) {
        continue;
      }
      for (String in : op.inputs()) {
        if (!r.inside().contains(in) && !params.contains(in) && !outputs.contains(in) && !constant(sd, in)) {
          return reject(r, "its op computing " + op.outputs() + " reads " + in);
        }
      }
      replaced.add(i);
      computed.addAll(op.outputs());
      if (forwardAt < 0 && op.inputs().contains(r.x())) {
        forwardAt = i;
      }
    }
    if (forwardAt < 0 || !computed.containsAll(outputs)) {
      return reject(r, "the run does not compute it");
    }
    // backward: from the output's gradient, what computes only from it, the inside and the parameters
    SDVariable yVar = sd.getVariable(r.y());
    String gradY = yVar.getGradient() == null ? null : yVar.getGradient().name();
    // what the backward ops compute, and the part of it that follows from the output's gradient
    Set<String> derived = new HashSet<>();
    Set<String> fromGradient = new HashSet<>();
    if (gradY != null) {
      derived.add(gradY);
      fromGradient.add(gradY);
    }
    // values computed from the input, scale, shift and constants alone (their shapes, say), which
    // the backward ops may read
    Set<String> fromParams = new HashSet<>();
    Set<Integer> backward = new HashSet<>();
    Map<String, Integer> producedBy = new HashMap<>();
    int backwardAt = -1;
    // the backward ops end at the input's gradient: what reads it is the backward of the ops before
    // the region (a broadcast sum's reduction, say), computed from it alone but not part of the region
    String gradX = gradientName(sd, r.x());
    for (int i = 0; i < ops.size(); i++) {
      if (replaced.contains(i)) {
        continue;
      }
      Op op = ops.get(i);
      if (gradX != null && op.inputs().contains(gradX)) {
        if (!Collections.disjoint(op.inputs(), r.inside())) {
          return reject(r, "the op computing " + op.outputs() + " reads its inside and the input's gradient");
        }
        continue;
      }
      boolean readsInside = false;
      boolean readsDerived = false;
      boolean readsGradient = false;
      boolean onlyRegion = true;
      for (String in : op.inputs()) {
        readsInside |= r.inside().contains(in);
        readsDerived |= derived.contains(in);
        readsGradient |= fromGradient.contains(in);
        onlyRegion &= r.inside().contains(in) || derived.contains(in) || params.contains(in) || outputs.contains(in)
            || fromParams.contains(in) || constant(sd, in);
      }
      if (!readsInside && !readsDerived) {
        boolean paramsOnly = !op.inputs().isEmpty();
        for (String in : op.inputs()) {
          paramsOnly &= params.contains(in) || fromParams.contains(in) || constant(sd, in);
        }
        if (paramsOnly) {
          fromParams.addAll(op.outputs());
        }
        continue;
      }
      if (!onlyRegion) {
        if (readsInside) {
          return reject(r, "the op computing " + op.outputs() + " reads its inside and " + op.inputs());
        }
        continue; // e.g. the sum of the input's gradients from this region and elsewhere
      }
      backward.add(i);
      for (String o : op.outputs()) {
        derived.add(o);
        if (readsGradient) {
          fromGradient.add(o);
        }
        producedBy.put(o, i);
      }
      if (backwardAt < 0 && readsGradient) {
        backwardAt = i;
      }
    }
    if (backward.isEmpty()) {
      return new Fusion(r, forwardAt, -1, replaced, null, List.of(), null, null);
    }
    if (backwardAt < 0) {
      return reject(r, "its backward ops do not read the output's gradient " + gradY);
    }
    // what leaves the backward ops: read elsewhere or returned by the plan
    Set<String> exits = new HashSet<>();
    for (int i = 0; i < ops.size(); i++) {
      if (backward.contains(i) || replaced.contains(i)) {
        continue;
      }
      for (String in : ops.get(i).inputs()) {
        if (producedBy.containsKey(in)) {
          exits.add(in);
        }
      }
    }
    for (String k : kept) {
      if (producedBy.containsKey(k)) {
        exits.add(k);
      }
    }
    String dgamma = null;
    String dbeta = null;
    List<String> dx = new ArrayList<>();
    for (String e : exits) {
      if (producedBy.get(e) < backwardAt) {
        return reject(r, "its backward ops compute " + e + " before the output's gradient is known");
      }
      if (r.gamma() != null && summedInto(e, gradientName(sd, r.gamma()), ops, replaced, backward)) {
        dgamma = e;
      } else if (r.beta() != null && summedInto(e, gradientName(sd, r.beta()), ops, replaced, backward)) {
        dbeta = e;
      } else if (java.util.Arrays.equals(shapes.get(e), shapes.get(r.x()))) {
        dx.add(e); // a part of the input's gradient, summed with the others outside
      } else {
        return reject(r, "its backward ops compute " + e + ", read elsewhere");
      }
    }
    Collections.sort(dx);
    replaced.addAll(backward);
    return new Fusion(r, forwardAt, backwardAt, replaced, gradY, dx, dgamma, dbeta);
  }

  /**
   * Whether {@code e} is the gradient {@code grad}, or a part of it that ops outside the region add
   * up with other parts (a scale or shift used by several layers, e.g. a discriminator run on real
   * and generated images).
   */
  private static boolean summedInto(String e, String grad, List<Op> ops, Set<Integer> forward, Set<Integer> backward) {
    if (grad == null) {
      return false;
    }
    Set<String> reached = new HashSet<>(List.of(e));
    for (int i = 0; i < ops.size() && !reached.contains(grad); i++) {
      Op op = ops.get(i);
      if (!forward.contains(i) && !backward.contains(i) && op.sums() && !Collections.disjoint(op.inputs(), reached)) {
        reached.addAll(op.outputs());
      }
    }
    return reached.contains(grad);
  }

  /** Leaves region {@code r} to its ops, saying why at DEBUG. */
  private static Fusion reject(Region r, String why) {
    LOG.debug("normalisation computing {} runs as its ops: {}", r.y(), why);
    return null;
  }

  private static String gradientName(SameDiff sd, String var) {
    SDVariable g = sd.getVariable(var).getGradient();
    return g == null ? null : g.name();
  }

  private static boolean constant(SameDiff sd, String name) {
    SDVariable v = sd.getVariable(name);
    return v != null && v.getVariableType() == VariableType.CONSTANT;
  }
}
