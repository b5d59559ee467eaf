package org.genpipe.jobs.evaluate;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.jobs.judge.FeatureExtractor;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.samediff.frameworkimport.tensorflow.importer.TensorflowFrameworkImporter;
import org.tensorflow.framework.AttrValue;
import org.tensorflow.framework.GraphDef;
import org.tensorflow.framework.NodeDef;

/**
 * Inception-v3 pool3 features from the TF graph {@code classify_image_graph_def.pb} of
 * inception-2015-12-05, the graph the original FID code uses: images go in at tensor
 * {@code ExpandDims:0} ([N, H, W, 3], pixel values 0..255; the graph itself resizes them to 299x299
 * with its ResizeBilinear and normalises them), features come out of {@code pool_3:0}
 * ([N, 1, 1, 2048]). The graph is cut to the ancestors of {@code pool_3} and {@code ExpandDims}
 * becomes the input placeholder (the JPEG decoding before it is not needed), then imported with
 * SameDiff's TensorFlow importer. Grey images are repeated to RGB. The file is read from the path the
 * user gives (local, HDFS or S3); it is never downloaded.
 */
public final class InceptionExtractor implements FeatureExtractor.Spec {
  private static final long serialVersionUID = 1L;
  static final String NAME = "inception";
  static final String INPUT = "ExpandDims";
  static final String OUTPUT = "pool_3";

  private final String graph;
  private final String sha;
  private final int dim;

  private InceptionExtractor(String graph, String sha, int dim) {
    this.graph = graph;
    this.sha = sha;
    this.dim = dim;
  }

  /** Checks the graph file on the driver (present, a GraphDef with the two tensors) and learns its width. */
  public static InceptionExtractor spec(String graphFile, Configuration conf) {
    Path p = Storage.path(graphFile);
    if (!Storage.exists(p, conf)) {
      throw new BadInputException("evaluate.inceptionGraph: " + p + " does not exist (the job never downloads it:"
          + " classify_image_graph_def.pb is in inception-2015-12-05.tgz)");
    }
    String sha;
    try {
      sha = Storage.sha256(p, conf);
    } catch (IOException e) {
      throw Storage.unreachable(p, e);
    }
    InceptionExtractor probe = new InceptionExtractor(p.toString(), sha, -1);
    INDArray f = probe.open(conf).features(Nd4j.zeros(DataType.FLOAT, 1, 3, 8, 8));
    return new InceptionExtractor(p.toString(), sha, (int) f.size(1));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public String id() {
    return NAME + "-" + sha.substring(0, 16);
  }

  @Override
  public String resize() {
    return "bilinear to 299x299 inside the TF graph (ResizeBilinear), grey repeated to RGB, pixels 0..255";
  }

  @Override
  public int dim() {
    return dim;
  }

  @Override
  public FeatureExtractor open(Configuration conf) {
    Path p = new Path(graph);
    GraphDef g;
    try (var in = Storage.fs(p, conf).open(p)) {
      g = GraphDef.parseFrom(in);
    } catch (IOException e) {
      throw new BadInputException(p + " is not a readable TensorFlow GraphDef (.pb): " + e.getMessage(), e);
    }
    GraphDef cut = cut(g, p.toString());
    SameDiff sd = new TensorflowFrameworkImporter().importFromGraph(cut,
        Map.of(INPUT, Nd4j.zeros(DataType.FLOAT, 1, 8, 8, 3)));
    return new FeatureExtractor() {
      @Override
      public int dim() {
        return dim;
      }

      @Override
      public INDArray features(INDArray images) {
        INDArray rgb = images.size(1) == 1 ? Nd4j.concat(1, images, images, images) : images;
        INDArray nhwc = rgb.permute(0, 2, 3, 1).mul(255f).castTo(DataType.FLOAT).dup('c');
        INDArray out = sd.output(Map.of(INPUT, nhwc), OUTPUT).get(OUTPUT);
        return out.reshape(out.size(0), out.length() / out.size(0));
      }
    };
  }

  /** The ancestors of pool_3, with ExpandDims turned into a float placeholder. */
  static GraphDef cut(GraphDef g, String source) {
    Map<String, NodeDef> byName = new HashMap<>();
    for (NodeDef n : g.getNodeList()) {
      byName.put(n.getName(), n);
    }
    for (String required : new String[] {INPUT, OUTPUT}) {
      if (!byName.containsKey(required)) {
        throw new BadInputException(source + ": the graph has no node '" + required + "' (expected the Inception-v3"
            + " graph of inception-2015-12-05, classify_image_graph_def.pb, with tensors ExpandDims:0 and pool_3:0)");
      }
    }
    Set<String> keep = new LinkedHashSet<>();
    Deque<String> todo = new ArrayDeque<>();
    todo.add(OUTPUT);
    while (!todo.isEmpty()) {
      String name = todo.poll();
      if (!keep.add(name) || name.equals(INPUT)) {
        continue;
      }
      for (String in : byName.get(name).getInputList()) {
        String node = in.replaceFirst("^\\^", "").replaceFirst(":\\d+$", "");
        if (!byName.containsKey(node)) {
          throw new BadInputException(source + ": node '" + name + "' reads '" + in + "', which the graph lacks");
        }
        todo.add(node);
      }
    }
    GraphDef.Builder out = GraphDef.newBuilder();
    if (g.hasVersions()) {
      out.setVersions(g.getVersions());
    }
    for (NodeDef n : g.getNodeList()) {
      if (!keep.contains(n.getName())) {
        continue;
      }
      if (n.getName().equals(INPUT)) {
        out.addNode(NodeDef.newBuilder().setName(INPUT).setOp("Placeholder")
            .putAttr("dtype", AttrValue.newBuilder().setType(org.tensorflow.framework.DataType.DT_FLOAT).build()));
      } else {
        out.addNode(n);
      }
    }
    return out.build();
  }
}
