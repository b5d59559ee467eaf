package org.genpipe.common.image;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** A scatter plot of 2-D points coloured by group (e.g. a latent space coloured by class). */
public final class ScatterPlot {
  private ScatterPlot() {}

  /** @param xy points as [n][2]; @param groups one group name per point (legend entries) */
  public static BufferedImage render(
      String title, String xLabel, String yLabel, double[][] xy, List<String> groups) {
    XYChart chart = new XYChartBuilder().width(900).height(700).title(title).xAxisTitle(xLabel).yAxisTitle(yLabel).build();
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    chart.getStyler().setMarkerSize(5);
    chart.getStyler().setChartBackgroundColor(Color.WHITE);
    Map<String, List<double[]>> byGroup = new TreeMap<>();
    for (int i = 0; i < xy.length; i++) {
      byGroup.computeIfAbsent(groups.get(i), k -> new ArrayList<>()).add(xy[i]);
    }
    Map<String, List<double[]>> ordered = new LinkedHashMap<>(byGroup);
    for (Map.Entry<String, List<double[]>> e : ordered.entrySet()) {
      double[] x = e.getValue().stream().mapToDouble(p -> p[0]).toArray();
      double[] y = e.getValue().stream().mapToDouble(p -> p[1]).toArray();
      chart.addSeries(e.getKey(), x, y).setMarker(SeriesMarkers.CIRCLE);
    }
    return BitmapEncoder.getBufferedImage(chart);
  }
}
