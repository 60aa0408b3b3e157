"""What a run shows beyond its metrics: pictures that explain predictions (prediction grids,
confusion matrices, saliency, token attributions), optimizer diagnostics and throughput. Each is a
Lightning callback, switched on or off from the `callbacks` config group."""
