package org.genpipe.jobs.evaluate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.io.BadInputException;
import org.genpipe.jobs.judge.FeatureExtractor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.tensorflow.framework.AttrValue;
import org.tensorflow.framework.DataType;
import org.tensorflow.framework.GraphDef;
import org.tensorflow.framework.NodeDef;
import org.tensorflow.framework.TensorProto;
import org.tensorflow.framework.TensorShapeProto;

/**
 * The Inception import path on a small TF GraphDef with the real graph's names and layout (the 95 MB
 * original cannot be downloaded here): a JPEG-decoder stand-in feeding {@code ExpandDims}, then
 * ResizeBilinear, the (x - 128) / 128 normalisation, a 1x1 convolution, ReLU and an average pool
 * named {@code pool_3}, plus a softmax head past it that the cut must drop.
 */
class InceptionExtractorTest {
  @TempDir Path dir;

  /** 1x1 conv weights [1, 1, 3 in, 2 out]. */
  private static final float[] W = {0.5f, -1f, 1f, 0.25f, -0.5f, 2f};

  private static AttrValue type(DataType t) {
    return AttrValue.newBuilder().setType(t).build();
  }

  private static AttrValue ints(long... v) {
    AttrValue.ListValue.Builder l = AttrValue.ListValue.newBuilder();
    for (long x : v) {
      l.addI(x);
    }
    return AttrValue.newBuilder().setList(l).build();
  }

  private static AttrValue string(String s) {
    return AttrValue.newBuilder().setS(org.nd4j.shade.protobuf.ByteString.copyFromUtf8(s)).build();
  }

  private static NodeDef constant(String name, DataType t, long[] shape, float[] floats, int[] ints) {
    TensorShapeProto.Builder sh = TensorShapeProto.newBuilder();
    for (long s : shape) {
      sh.addDim(TensorShapeProto.Dim.newBuilder().setSize(s));
    }
    TensorProto.Builder tp = TensorProto.newBuilder().setDtype(t).setTensorShape(sh);
    if (floats != null) {
      for (float f : floats) {
        tp.addFloatVal(f);
      }
    } else {
      for (int i : ints) {
        tp.addIntVal(i);
      }
    }
    return NodeDef.newBuilder().setName(name).setOp("Const").putAttr("dtype", type(t))
        .putAttr("value", AttrValue.newBuilder().setTensor(tp).build()).build();
  }

  private static NodeDef op(String name, String op, String... inputs) {
    NodeDef.Builder b = NodeDef.newBuilder().setName(name).setOp(op).putAttr("T", type(DataType.DT_FLOAT));
    for (String in : inputs) {
      b.addInput(in);
    }
    return b.build();
  }

  static GraphDef smallInception() {
    GraphDef.Builder g = GraphDef.newBuilder();
    g.addNode(NodeDef.newBuilder().setName("DecodeJpeg").setOp("Placeholder")
        .putAttr("dtype", type(DataType.DT_FLOAT)));
    g.addNode(constant("ExpandDims/dim", DataType.DT_INT32, new long[0], null, new int[] {0}));
    g.addNode(op("ExpandDims", "ExpandDims", "DecodeJpeg", "ExpandDims/dim").toBuilder()
        .putAttr("Tdim", type(DataType.DT_INT32)).build());
    g.addNode(constant("ResizeBilinear/size", DataType.DT_INT32, new long[] {2}, null, new int[] {6, 6}));
    g.addNode(op("ResizeBilinear", "ResizeBilinear", "ExpandDims", "ResizeBilinear/size").toBuilder()
        .putAttr("align_corners", AttrValue.newBuilder().setB(false).build()).build());
    g.addNode(constant("Sub/y", DataType.DT_FLOAT, new long[0], new float[] {128f}, null));
    g.addNode(op("Sub", "Sub", "ResizeBilinear", "Sub/y"));
    g.addNode(constant("Mul/y", DataType.DT_FLOAT, new long[0], new float[] {1f / 128f}, null));
    g.addNode(op("Mul", "Mul", "Sub", "Mul/y"));
    g.addNode(constant("conv/W", DataType.DT_FLOAT, new long[] {1, 1, 3, 2}, W, null));
    g.addNode(op("conv", "Conv2D", "Mul", "conv/W").toBuilder().putAttr("strides", ints(1, 1, 1, 1))
        .putAttr("padding", string("VALID")).putAttr("data_format", string("NHWC")).build());
    g.addNode(op("relu", "Relu", "conv"));
    g.addNode(op("pool_3", "AvgPool", "relu").toBuilder().putAttr("ksize", ints(1, 6, 6, 1))
        .putAttr("strides", ints(1, 1, 1, 1)).putAttr("padding", string("VALID"))
        .putAttr("data_format", string("NHWC")).build());
    g.addNode(op("softmax", "Softmax", "pool_3"));
    return g.build();
  }

  @Test
  void importsTheGraphCutAtExpandDimsAndPool3() throws Exception {
    Path pb = dir.resolve("classify_image_graph_def.pb");
    Files.write(pb, smallInception().toByteArray());
    InceptionExtractor spec = InceptionExtractor.spec(pb.toString(), new Configuration());
    assertThat(spec.dim()).isEqualTo(2);
    assertThat(spec.id()).startsWith("inception-");
    FeatureExtractor f = spec.open(new Configuration());
    // constant colour images (any size: the graph resizes; a constant image stays constant), one grey
    float[][] colours = {{0.2f, 0.6f, 1.0f}, {1.0f, 0.0f, 0.5f}};
    INDArray rgb = Nd4j.create(org.nd4j.linalg.api.buffer.DataType.FLOAT, 2, 3, 5, 7);
    for (int i = 0; i < 2; i++) {
      for (int c = 0; c < 3; c++) {
        rgb.get(org.nd4j.linalg.indexing.NDArrayIndex.point(i), org.nd4j.linalg.indexing.NDArrayIndex.point(c))
            .assign(colours[i][c]);
      }
    }
    INDArray out = f.features(rgb);
    assertThat(out.shape()).containsExactly(2, 2);
    for (int i = 0; i < 2; i++) {
      for (int k = 0; k < 2; k++) {
        double pre = 0;
        for (int c = 0; c < 3; c++) {
          pre += (colours[i][c] * 255 - 128) / 128.0 * W[c * 2 + k];
        }
        assertThat(out.getDouble(i, k)).as("image %d feature %d", i, k).isCloseTo(Math.max(0, pre), within(1e-4));
      }
    }
    INDArray grey = Nd4j.valueArrayOf(new long[] {1, 1, 4, 4}, 0.75f, org.nd4j.linalg.api.buffer.DataType.FLOAT);
    INDArray g = f.features(grey);
    double pre = 0;
    for (int c = 0; c < 3; c++) {
      pre += (0.75 * 255 - 128) / 128.0 * W[c * 2];
    }
    assertThat(g.getDouble(0, 0)).isCloseTo(Math.max(0, pre), within(1e-4));
  }

  @Test
  void aMissingFileOrAGraphWithoutTheTensorsIsNamed() throws Exception {
    assertThatThrownBy(() -> InceptionExtractor.spec(dir.resolve("none.pb").toString(), new Configuration()))
        .isInstanceOf(BadInputException.class).hasMessageContaining("none.pb does not exist");
    Path other = dir.resolve("other.pb");
    GraphDef g = smallInception();
    GraphDef renamed = g.toBuilder().setNode(12, g.getNode(12).toBuilder().setName("pool")).build();
    Files.write(other, renamed.toByteArray());
    assertThatThrownBy(() -> InceptionExtractor.spec(other.toString(), new Configuration()))
        .isInstanceOf(BadInputException.class).hasMessageContaining("other.pb: the graph has no node 'pool_3'");
    Path junk = dir.resolve("junk.pb");
    Files.writeString(junk, "not a graph");
    assertThatThrownBy(() -> InceptionExtractor.spec(junk.toString(), new Configuration()))
        .isInstanceOf(BadInputException.class).hasMessageContaining("junk.pb");
  }
}
